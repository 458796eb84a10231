//go:build !linux

package collect

import (
	"context"

	"github.com/shirou/gopsutil/v3/host"

	"github.com/tallyhq/tally/protocol"
)

// hardwareHints uses the OS's machine identifier (the registry's
// MachineGuid on Windows, IOPlatformUUID on macOS) through gopsutil.
func hardwareHints(ctx context.Context, h protocol.Hints) protocol.Hints {
	if id, err := host.HostIDWithContext(ctx); err == nil {
		h.MachineID = id
	}
	return h
}
