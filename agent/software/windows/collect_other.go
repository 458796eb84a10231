//go:build !windows

package windows

import (
	"context"

	"github.com/tallyhq/tally/protocol"
)

// Collect finds nothing off Windows.
func Collect(context.Context) ([]protocol.Package, []string, error) {
	return nil, nil, nil
}
