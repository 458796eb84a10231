//go:build !darwin

package macos

import (
	"context"
	"io/fs"

	"github.com/tallyhq/tally/protocol"
)

// Collect finds nothing off macOS: a root with /Applications is not looked
// at from another system (Scan can be called directly for that).
func Collect(context.Context, fs.FS) ([]protocol.Package, []string, error) {
	return nil, nil, nil
}
