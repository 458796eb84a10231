package cli

import (
	"context"

	"github.com/tallyhq/tally/agent/collect"
	"github.com/tallyhq/tally/agent/spool"
	"github.com/tallyhq/tally/agent/state"
	"github.com/tallyhq/tally/common/buildinfo"
	"github.com/tallyhq/tally/protocol"
)

// collectOnly gathers inventory without an enrollment or a network.
type collectOnly struct {
	instance, machineID string
}

func (c collectOnly) basic(ctx context.Context) (protocol.BasicInventory, []string) {
	return collect.Basic(ctx, collect.Options{InstanceID: c.instance, MachineID: c.machineID, AgentVersion: buildinfo.Version()})
}

func spoolStats(dir state.Dir) (spool.Stats, error) {
	sp, err := spool.Open(dir.File(state.SpoolDir), spool.Options{})
	if err != nil {
		return spool.Stats{}, err
	}
	return sp.Stats()
}
