//go:build !linux && !windows && !darwin

package logins

import (
	"context"

	"github.com/tallyhq/tally/protocol"
)

// system reports no users where the agent cannot ask the system (the
// BSDs): the machine is then nobody's device.
func system(context.Context) (*protocol.User, []protocol.User, error) { return nil, nil, nil }
