package collect

import (
	"context"
	"strings"

	"github.com/tallyhq/tally/common/machineid"
	"github.com/tallyhq/tally/protocol"
)

// Hints collects only the machine identity hints (the MACs of primary
// interfaces included), for what needs the machine's fingerprint without a
// whole inventory.
func Hints(ctx context.Context, o Options) protocol.Hints {
	h := protocol.Hints{InstanceID: o.InstanceID}
	if o.MachineID != "" {
		h.MachineID = o.MachineID
		c := machineid.Clean(h)
		c.MachineID = strings.TrimSpace(o.MachineID)
		return c
	}
	h = hardwareHints(ctx, h)
	if _, macs, err := nics(ctx); err == nil {
		h.MACs = macs
	}
	return machineid.Clean(h)
}
