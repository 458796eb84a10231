package macos

import (
	"context"
	"io/fs"

	"github.com/tallyhq/tally/protocol"
)

// Collect inventories the applications and receipts of the macOS system
// whose root is fsys.
func Collect(ctx context.Context, fsys fs.FS) ([]protocol.Package, []string, error) {
	return Scan(ctx, fsys)
}
