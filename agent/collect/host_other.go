//go:build !linux

package collect

import (
	"context"

	"github.com/shirou/gopsutil/v3/host"

	"github.com/tallyhq/tally/protocol"
)

// hostInfo fills the host fields through gopsutil.
func hostInfo(ctx context.Context, b *protocol.BasicInventory) error {
	hi, err := host.InfoWithContext(ctx)
	if hi != nil {
		b.Hostname, b.OS, b.Platform, b.PlatformFamily = hi.Hostname, hi.OS, hi.Platform, hi.PlatformFamily
		b.PlatformVersion, b.KernelVersion, b.Arch = hi.PlatformVersion, hi.KernelVersion, hi.KernelArch
		if hi.VirtualizationRole == "guest" {
			b.Virtualization = hi.VirtualizationSystem
		}
		b.BootTime = int64(hi.BootTime)
	}
	return err
}
