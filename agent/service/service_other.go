//go:build !windows

package service

import (
	"context"
	"io"
)

// Main runs program in the foreground: only Windows has a service manager
// that needs answering.
func Main(ctx context.Context, stderr io.Writer, program Program) int {
	return program(ctx, stderr)
}
