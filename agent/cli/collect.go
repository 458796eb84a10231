package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/tallyhq/tally/agent/collect"
	"github.com/tallyhq/tally/agent/runner"
	"github.com/tallyhq/tally/agent/runner/delta"
	"github.com/tallyhq/tally/agent/software"
	"github.com/tallyhq/tally/agent/state"
	"github.com/tallyhq/tally/common/buildinfo"
	"github.com/tallyhq/tally/protocol"
)

// collectOnly gathers inventory without an enrollment or a network.
type collectOnly struct {
	instance, machineID string
	dir                 state.Dir
}

// post is the whole inventory post, the software of the system at root
// included, as the agent spools it (software whole, normalized).
func (c collectOnly) post(ctx context.Context, root string) (protocol.InventoryRequest, []string, error) {
	b, problems := runner.BasicOf(ctx, c.dir, collect.Options{InstanceID: c.instance, MachineID: c.machineID, AgentVersion: buildinfo.Version()})
	res, err := software.Collect(ctx, root)
	if err != nil {
		return protocol.InventoryRequest{}, nil, err
	}
	sw := &protocol.SoftwareInventory{Full: true, Packages: res.Packages}
	delta.Normalize(sw)
	for _, p := range res.Problems {
		problems = append(problems, "software: "+p)
	}
	return protocol.InventoryRequest{Basic: b, Software: sw}, problems, nil
}

// softwareSummary counts packages per source: "712 packages (dpkg 709, snap 3)".
func softwareSummary(sw *protocol.SoftwareInventory) string {
	if sw == nil || len(sw.Packages) == 0 {
		return "none found"
	}
	per := map[string]int{}
	for _, p := range sw.Packages {
		per[p.Source]++
	}
	var parts []string
	for s, n := range per {
		parts = append(parts, fmt.Sprintf("%s %d", s, n))
	}
	sort.Strings(parts)
	return fmt.Sprintf("%d packages (%s)", len(sw.Packages), strings.Join(parts, ", "))
}
