//go:build linux

package logins

import (
	"context"

	"github.com/tallyhq/tally/protocol"
)

func system(context.Context) (*protocol.User, []protocol.User, error) { return FromFiles("/") }
