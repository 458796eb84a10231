package loadgen

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/catalog"
)

// pluginVersions are tried in order to find a plug-in build that belongs
// to the raced product's generation.
var pluginVersions = []string{"7.2.1", "6.1.3", "6.1.1", "6.0.5", "3.1.0", "1.0.0", "8.0.0", "10.0.0"}

// race makes sure the product has licenses, then has every agent make its
// first qualifying post at the same moment, and checks that exactly the
// free seats were taken, by the agents told so.
func (r *runner) race(ctx context.Context) {
	p, err := r.admin.Product(ctx, r.cfg.Product)
	if err != nil {
		r.rep.check("race: product known", false, err.Error())
		return
	}
	if !slices.Contains(p.Qualifying, string(catalog.TriggerPluginPresence)) && !slices.Contains(p.Qualifying, string(catalog.TriggerSoftwareInventory)) {
		r.rep.check("race: product consumed by an inventory post", false,
			fmt.Sprintf("%s is consumed by %v; race drives inventory posts only", p.Name, p.Qualifying))
		return
	}
	cons, err := catalog.ParseConstraint(p.PluginVersions)
	if err != nil {
		r.rep.check("race: product known", false, err.Error())
		return
	}
	plugin := protocol.Plugin{Name: p.Plugin, BuildDate: "2026-03-02"}
	for _, v := range pluginVersions {
		if cons.Allows(v) {
			plugin.Version = v
			break
		}
	}
	if plugin.Version == "" {
		r.rep.check("race: plug-in version found", false, fmt.Sprintf("no version of %s matches %q", p.Plugin, p.PluginVersions))
		return
	}
	withSoftware := p.Plugin == catalog.SoftwarePlugin
	for _, a := range r.agents {
		a.basic.Plugins = []protocol.Plugin{plugin}
	}
	if r.cfg.Seats > 0 || r.cfg.LicenseFile != "" {
		before, err := usage(ctx, r.admin, p.Name)
		if err != nil {
			r.rep.check("race: usage readable", false, err.Error())
			return
		}
		msg, err := provideSeats(ctx, &r.cfg.Target, r.admin, p.Name, before.Granted-before.Consumed-before.Reserved+r.cfg.Seats, r.cfg.LicenseFile)
		if err != nil {
			r.rep.check("race: licenses provided", false, err.Error())
			return
		}
		r.rep.note("licenses: " + msg)
	}
	before, err := usage(ctx, r.admin, p.Name)
	if err != nil {
		r.rep.check("race: usage readable", false, err.Error())
		return
	}
	free := max(0, before.Granted-before.Consumed-before.Reserved)
	want := min(len(r.agents), free)
	r.rep.note(fmt.Sprintf("race: %d agents for %d free seats of %s (granted %d, consumed %d, reserved %d) with plug-in %s %s",
		len(r.agents), free, p.Name, before.Granted, before.Consumed, before.Reserved, plugin.Name, plugin.Version))

	r.measure(ctx, "race", func(ctx context.Context, ph *phase) {
		r.forEach(ctx, r.cfg.Concurrency, func(ctx context.Context, a *agent) { _ = r.postRace(ctx, ph, a, withSoftware) })
	})

	after, err := usage(ctx, r.admin, p.Name)
	if err != nil {
		r.rep.check("race: usage readable", false, err.Error())
		return
	}
	won, lost, other, unacked := 0, 0, 0, 0
	winners := map[int64]bool{}
	for _, a := range r.agents {
		if a.acked == 0 {
			unacked++
			continue
		}
		switch a.lastVerdict[p.Name] {
		case protocol.VerdictLicensed:
			won++
			winners[a.computerID] = true
		case protocol.VerdictDiscardedNoSeat, protocol.VerdictDeniedNoSeat:
			lost++
		default:
			other++
		}
	}
	r.rep.check("race: every post acknowledged", unacked == 0, fmt.Sprintf("%d of %d acknowledged", len(r.agents)-unacked, len(r.agents)))
	r.rep.check("race: licensed verdicts = free seats", won == want, fmt.Sprintf("%d agents told licensed, %d free seats before", won, want))
	r.rep.check("race: the others told no-seat", lost == len(r.agents)-unacked-won && other == 0,
		fmt.Sprintf("%d told no-seat, %d another verdict", lost, other))
	r.rep.check("race: seats held = seats granted (consumed grew by the winners)", after.Consumed-before.Consumed == won && after.Consumed <= after.Granted,
		fmt.Sprintf("consumed %d → %d of %d granted; %d winners", before.Consumed, after.Consumed, after.Granted, won))
	holders, strangers := 0, 0
	for _, h := range after.Holders {
		if winners[h.ComputerID] {
			holders++
		}
	}
	ours := map[int64]bool{}
	for _, a := range r.agents {
		ours[a.computerID] = true
	}
	for _, h := range after.Holders {
		if ours[h.ComputerID] && !winners[h.ComputerID] {
			strangers++
		}
	}
	r.rep.check("race: the holders are the winners", holders == won && strangers == 0,
		fmt.Sprintf("%d of %d winners hold a seat; %d agents hold one though told otherwise", holders, won, strangers))
	if withSoftware {
		r.checkSoftware(ctx, func(a *agent) (int, bool) {
			if winners[a.computerID] {
				return len(a.sw.pkgs), true
			}
			return 0, a.acked > 0
		})
	}
}

// postRace is the race's single post: the agent's first qualifying post.
func (r *runner) postRace(ctx context.Context, ph *phase, a *agent, withSoftware bool) error {
	if withSoftware {
		return r.post(ctx, ph, a, time.Time{})
	}
	req := a.inventoryRequest(true)
	resp, err := r.send(ctx, ph, a, kindBasic, protocol.KindInventory, time.Time{}, func() (any, error) { return &req, nil })
	if err != nil {
		return err
	}
	var out protocol.InventoryResponse
	if err := protocol.Unmarshal(resp.Body, &out); err != nil {
		ph.anomaly("inventory: malformed answer")
		return err
	}
	ph.addVerdicts(out.Verdicts)
	a.lastVerdict = map[string]protocol.Verdict{}
	for _, v := range out.Verdicts {
		a.lastVerdict[v.Product] = v.Verdict
	}
	return nil
}
