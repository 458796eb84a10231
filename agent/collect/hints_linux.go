//go:build linux

package collect

import (
	"context"
	"os"
	"strings"

	"github.com/tallyhq/tally/protocol"
)

// hardwareHints reads SMBIOS (readable by root only) and machine-id.
func hardwareHints(_ context.Context, h protocol.Hints) protocol.Hints {
	h.ProductUUID = readTrim("/sys/class/dmi/id/product_uuid")
	h.Serial = readTrim("/sys/class/dmi/id/product_serial")
	h.MachineID = readTrim("/etc/machine-id")
	if h.MachineID == "" {
		h.MachineID = readTrim("/var/lib/dbus/machine-id")
	}
	return h
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) > 256 {
		return ""
	}
	return strings.TrimSpace(string(b))
}
