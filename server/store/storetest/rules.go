package storetest

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
)

// The rules of seeds 000 and 001 as the built-in catalog writes them, each
// seen through the store: what takes a seat, what happens over the count,
// and what frees a seat, at once.

// licenseEach imports a node license of seats for each product.
func (e *env) licenseEach(t tb, seats uint32, products ...string) {
	t.Helper()
	for _, p := range products {
		e.importLicense(t, license.Payload{ID: "L-" + p, Product: p, Seats: seats})
	}
}

// ok fails the test given to what it returns if err is not nil, and
// returns v: ok(e.checkIn(n, pl))(t).
func ok[T any](v T, err error) func(tb) T {
	return func(t tb) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// wantSeats fails unless n's computer holds node seats of exactly products.
func (e *env) wantSeats(t tb, n *node, products ...string) {
	t.Helper()
	var got []string
	for _, s := range e.computer(t, n).Seats {
		if s.Kind == store.SeatNode {
			got = append(got, s.Product)
		}
	}
	slices.Sort(got)
	want := slices.Clone(products)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s holds node seats of %v, want %v", n.hostname, got, want)
	}
}

// Each product's qualifying post takes its seat, and nothing else does
// (seed 001): plug-in presence (monitor), the first software inventory
// (inventory 6), a task request (software delivery 6), plug-in data or a
// package request (patch 6), a check-in (deployment 6), and a check-in
// with the plug-in installed (deployment 7).
func testQualifyingPosts(t *testing.T, e *env) {
	e.licenseEach(t, 5, "monitor", "inventory-6", "software-delivery-6", "patch-6", "deployment-6", "deployment")

	plain := e.enroll(t)
	e.inventory(t, plain)
	e.wantSeats(t, plain)

	mon := e.enroll(t)
	wantVerdict(t, e.inventory(t, mon, monitor).Verdicts, "monitor", protocol.VerdictLicensed)
	e.wantSeats(t, mon, "monitor")
	why, err := e.s.Why(e.ctx, mon.computer, "monitor")
	if err != nil || !why.Holds || why.Seat == nil || why.Seat.License != "L-monitor" || why.Answer == "" {
		t.Fatalf("why does %s hold monitor: %+v, %v", mon.hostname, why, err)
	}

	inv := e.enroll(t)
	e.inventory(t, inv, inventory6)
	e.wantSeats(t, inv) // the plug-in's presence is not enough
	pk := []protocol.Package{{Name: "bash", Version: "5.2", Source: "dpkg"}}
	resp := ok(e.postInventory(inv, protocol.InventoryRequest{Basic: inv.basic(inventory6), Software: fullSet(pk...)}))(t)
	wantVerdict(t, resp.Verdicts, "inventory-6", protocol.VerdictLicensed)
	e.wantSeats(t, inv, "inventory-6")

	sd := e.enroll(t)
	e.inventory(t, sd, swm6)
	e.wantSeats(t, sd)
	wantVerdict(t, ok(e.taskRequest(sd, swm6))(t).Verdicts, "software-delivery-6", protocol.VerdictLicensed)
	e.wantSeats(t, sd, "software-delivery-6")

	scan := e.enroll(t)
	e.inventory(t, scan, patch6)
	e.wantSeats(t, scan)
	wantVerdict(t, ok(e.pluginData(scan, patch6))(t).Verdicts, "patch-6", protocol.VerdictLicensed)
	e.wantSeats(t, scan, "patch-6")
	pkgReq := e.enroll(t)
	wantVerdict(t, ok(e.packageRequest(pkgReq, patch6, "openssl"))(t).Verdicts, "patch-6", protocol.VerdictLicensed)
	e.wantSeats(t, pkgReq, "patch-6")

	dep6 := e.enroll(t)
	wantVerdict(t, ok(e.checkIn(dep6, deploy6))(t).Verdicts, "deployment-6", protocol.VerdictLicensed)
	e.wantSeats(t, dep6, "deployment-6")

	dep7 := e.enroll(t)
	e.inventory(t, dep7, deploy7)
	e.wantSeats(t, dep7) // presence alone does not qualify
	wantVerdict(t, ok(e.checkIn(dep7, deploy7))(t).Verdicts, "deployment", protocol.VerdictLicensed)
	e.wantSeats(t, dep7, "deployment")

	for _, p := range []string{"monitor", "inventory-6", "software-delivery-6", "deployment-6", "deployment"} {
		if u := e.usage(t, p, store.SeatNode); u.Granted != 5 || u.Consumed != 1 {
			t.Errorf("%s: granted %d consumed %d, want 5 and 1", p, u.Granted, u.Consumed)
		}
	}
	if u := e.usage(t, "patch-6", store.SeatNode); u.Consumed != 2 {
		t.Errorf("patch-6: consumed %d, want 2", u.Consumed)
	}
}

// Without a license, basic inventory is stored and product data is
// discarded and counted, nothing of it stored (seed 001: "incoming
// inventory data from unlicensed nodes is discarded").
func testNoLicenseDiscards(t *testing.T, e *env) {
	n := e.enroll(t)
	pk := []protocol.Package{{Name: "bash", Version: "5.2", Source: "dpkg"}, {Name: "curl", Version: "8", Source: "dpkg"}}
	resp := ok(e.postInventory(n, protocol.InventoryRequest{Basic: n.basic(inventory7), Software: fullSet(pk...)}))(t)
	wantVerdict(t, resp.Verdicts, "inventory", protocol.VerdictDiscardedNoSeat)
	if resp.Software == nil || resp.Software.Stored {
		t.Fatalf("software answer without a seat: %+v, want not stored", resp.Software)
	}
	if sw, err := e.s.Software(e.ctx, n.computer); err != nil || len(sw) != 0 {
		t.Fatalf("software stored without a seat: %d packages, %v", len(sw), err)
	}
	wantVerdict(t, ok(e.pluginData(n, patch6))(t).Verdicts, "patch-6", protocol.VerdictDiscardedNoSeat)
	c := e.computer(t, n)
	if c.Basic == nil || c.Basic.Hostname != n.hostname || len(c.Seats) != 0 {
		t.Fatalf("computer without a license: basic %+v, seats %+v; want its basic inventory and no seat", c.Basic, c.Seats)
	}
	for _, p := range []string{"inventory", "patch-6"} {
		u := e.usage(t, p, store.SeatNode)
		var discards int64
		for _, v := range u.Discards {
			discards += v
		}
		if discards != 1 || u.Consumed != 0 || u.Compliant && u.Waiting == 0 {
			t.Errorf("%s usage: discards %v, consumed %d, waiting %d, compliant %v", p, u.Discards, u.Consumed, u.Waiting, u.Compliant)
		}
		ev := e.events(t, store.EventFilter{Kind: store.EventDiscarded, ComputerID: n.computer, Product: p})
		if len(ev) != 1 || ev[0].Count != 1 {
			t.Errorf("%s: discard events %+v, want one counting 1", p, ev)
		}
	}

	// Once licensed, the next post is stored.
	e.licenseEach(t, 1, "inventory")
	resp = ok(e.postInventory(n, protocol.InventoryRequest{Basic: n.basic(inventory7), Software: fullSet(pk...)}))(t)
	wantVerdict(t, resp.Verdicts, "inventory", protocol.VerdictLicensed)
	if sw, err := e.s.Software(e.ctx, n.computer); err != nil || len(sw) != 2 {
		t.Fatalf("software after the license: %d packages, %v", len(sw), err)
	}
}

// Over the count, first come first served: data discarded (monitor),
// tasks withheld (software management 7), check-ins denied with "license
// count exceeded" (deployment 6), the patch catalog refused (patch 7).
func testOverTheCount(t *testing.T, e *env) {
	e.licenseEach(t, 1, "monitor", "software-management", "deployment-6", "patch")
	in, out := e.enroll(t), e.enroll(t)
	all := []protocol.Plugin{monitor, swm7, patch7}
	wantVerdict(t, e.inventory(t, in, all...).Verdicts, "monitor", protocol.VerdictLicensed)
	over := e.inventory(t, out, all...).Verdicts
	for _, p := range []string{"monitor", "software-management", "patch"} {
		if verdictOf(over, p) == protocol.VerdictLicensed {
			t.Errorf("%s licensed over the count: %+v", p, over)
		}
	}
	wantVerdict(t, over, "monitor", protocol.VerdictDiscardedNoSeat)
	e.wantSeats(t, in, "monitor", "software-management", "patch")
	e.wantSeats(t, out)

	for _, n := range []*node{in, out} {
		if _, err := e.s.AddTask(e.ctx, n.computer, protocol.TaskCollectNow, false); err != nil {
			t.Fatalf("add task: %v", err)
		}
	}
	if tasks := ok(e.taskRequest(in, swm7))(t); len(tasks.Tasks) != 1 {
		t.Errorf("licensed computer's tasks: %+v, want its one task", tasks)
	}
	if tasks := ok(e.taskRequest(out, swm7))(t); len(tasks.Tasks) != 0 || verdictOf(tasks.Verdicts, "software-management") == protocol.VerdictLicensed {
		t.Errorf("unlicensed computer's tasks: %+v, want withheld", tasks)
	}

	wantVerdict(t, ok(e.checkIn(in, deploy6))(t).Verdicts, "deployment-6", protocol.VerdictLicensed)
	denied := ok(e.checkIn(out, deploy6))(t)
	wantVerdict(t, denied.Verdicts, "deployment-6", protocol.VerdictDeniedNoSeat)
	if !strings.Contains(denied.Message, "license count exceeded") {
		t.Errorf("denied check-in says %q, want \"license count exceeded\"", denied.Message)
	}

	if cat := ok(e.catalogRequest(out, patch7))(t); len(cat.Minimums) != 0 || verdictOf(cat.Verdicts, "patch") == protocol.VerdictLicensed {
		t.Errorf("catalog over the count: %+v, want refused", cat)
	}
	if cat := ok(e.catalogRequest(in, patch7))(t); verdictOf(cat.Verdicts, "patch") != protocol.VerdictLicensed {
		t.Errorf("catalog of the licensed computer: %+v", cat)
	}
	for _, p := range []string{"monitor", "deployment-6"} {
		if u := e.usage(t, p, store.SeatNode); u.Consumed != 1 || u.Granted != 1 || u.Waiting != 1 || u.Compliant {
			t.Errorf("%s over the count: consumed %d granted %d waiting %d compliant %v", p, u.Consumed, u.Granted, u.Waiting, u.Compliant)
		}
	}
}

// A status change frees, in the same call, exactly the seats whose rule
// names it (seed 000): any non-Active status frees inventory 7, only
// Retired frees monitor and patch 7, none frees software delivery 6,
// Retired, Return to Lessor and Disposed free inventory before 6.1 SP2; an
// administrator's own status counts as non-Active.
func testStatuses(t *testing.T, e *env) {
	e.licenseEach(t, 5, "monitor", "inventory", "patch", "software-delivery-6", "inventory-6-early")
	n := e.enroll(t)
	e.inventory(t, n, monitor, inventory7, patch7, swm6)
	ok(e.taskRequest(n, swm6))(t)
	e.wantSeats(t, n, "monitor", "inventory", "patch", "software-delivery-6")

	freed := func(ch store.Change) []string {
		var out []string
		for _, s := range ch.Seats {
			if s.Change == "freed" {
				out = append(out, s.Product)
			}
		}
		slices.Sort(out)
		return out
	}
	if got := freed(e.setStatus(t, n, "Disposed")); !slices.Equal(got, []string{"inventory"}) {
		t.Fatalf("Disposed freed %v, want [inventory]", got)
	}
	e.wantSeats(t, n, "monitor", "patch", "software-delivery-6")
	if got := freed(e.setStatus(t, n, "Retired")); !slices.Equal(got, []string{"monitor", "patch"}) {
		t.Fatalf("Retired freed %v, want [monitor patch]", got)
	}
	e.wantSeats(t, n, "software-delivery-6")

	// Inventory before 6.1 SP2: only Retired, Return to Lessor and
	// Disposed free it (seed 001).
	early := e.enroll(t)
	inventory60 := protocol.Plugin{Name: "inventory", Version: "6.0", BuildDate: "2024-01-01"}
	pk := []protocol.Package{{Name: "bash", Version: "5.2", Source: "dpkg"}}
	ok(e.postInventory(early, protocol.InventoryRequest{Basic: early.basic(inventory60), Software: fullSet(pk...)}))(t)
	e.wantSeats(t, early, "inventory-6-early")
	if got := freed(e.setStatus(t, early, "Missing")); len(got) != 0 {
		t.Fatalf("Missing freed %v of inventory 6.0", got)
	}
	if got := freed(e.setStatus(t, early, "Return to Lessor")); !slices.Equal(got, []string{"inventory-6-early"}) {
		t.Fatalf("Return to Lessor freed %v, want [inventory-6-early]", got)
	}

	if _, err := e.s.AddStatus(e.ctx, "Loaned", "lent to a partner"); err != nil {
		t.Fatal(err)
	}
	m := e.enroll(t)
	e.inventory(t, m, monitor, inventory7)
	if got := freed(e.setStatus(t, m, "Loaned")); !slices.Equal(got, []string{"inventory"}) {
		t.Fatalf("Loaned freed %v, want [inventory]", got)
	}
	e.wantSeats(t, m, "monitor")
	sts, err := e.s.Statuses(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range sts {
		names = append(names, s.Name)
	}
	for _, want := range []string{"Active", "Retired", "Disposed", "Return to Lessor", "Missing", "In Stock", "Loaned"} {
		if !slices.Contains(names, want) {
			t.Errorf("statuses %v lack %s", names, want)
		}
	}

	before := e.auditLog(t)
	if _, err := e.s.SetStatus(e.ctx, m.computer, "No Such Status", "admin:alice"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("unknown status: %v, want ErrInvalid", err)
	}
	if !reflect.DeepEqual(e.auditLog(t), before) || e.computer(t, m).Status != "Loaned" {
		t.Fatal("an unknown status changed something")
	}
	e.wantSeats(t, m, "monitor")
}

// A retired computer that posts again stays retired, consumes nothing and
// is told discarded:retired, until an administrator sets it Active (the
// older product's trap of flipping back by itself, seed 000).
func testRetiredStaysRetired(t *testing.T, e *env) {
	e.licenseEach(t, 2, "monitor")
	n := e.enroll(t)
	e.inventory(t, n, monitor)
	e.setStatus(t, n, "Retired")
	e.wantSeats(t, n)
	wantVerdict(t, e.inventory(t, n, monitor).Verdicts, "monitor", protocol.VerdictDiscardedRetired)
	if c := e.computer(t, n); c.Status != "Retired" || len(c.Seats) != 0 {
		t.Fatalf("retired computer after a post: status %s seats %+v", c.Status, c.Seats)
	}
	e.setStatus(t, n, "Active")
	wantVerdict(t, e.inventory(t, n, monitor).Verdicts, "monitor", protocol.VerdictLicensed)
	e.wantSeats(t, n, "monitor")
}

// Deleting a computer frees every seat it holds at once, whatever the
// product's rule (the failure of seed 000 Tally removes), and revokes its
// key; its agent, enrolling again, is a new computer that starts from
// nothing (seed 001, deployment 6). Deleted with block, it cannot enroll.
func testDelete(t *testing.T, e *env) {
	e.licenseEach(t, 5, "monitor", "software-delivery-6", "deployment-6", "patch-6")
	n := e.enroll(t)
	e.inventory(t, n, monitor, swm6, patch6)
	ok(e.taskRequest(n, swm6))(t)
	ok(e.checkIn(n, deploy6))(t)
	ok(e.pluginData(n, patch6))(t)
	e.wantSeats(t, n, "monitor", "software-delivery-6", "deployment-6", "patch-6")
	ch, err := e.s.DeleteComputer(e.ctx, n.computer, false, "admin:alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Seats) != 4 {
		t.Fatalf("delete freed %+v, want 4 seats", ch.Seats)
	}
	for _, p := range []string{"monitor", "software-delivery-6", "deployment-6", "patch-6"} {
		if u := e.usage(t, p, store.SeatNode); u.Consumed != 0 {
			t.Errorf("%s still consumed %d after the delete", p, u.Consumed)
		}
	}
	if _, err := e.checkIn(n, deploy6); !errors.Is(err, store.ErrRevoked) {
		t.Fatalf("check-in of a deleted computer's key: %v, want ErrRevoked", err)
	}
	again := e.enrollMachine(t, n.hostname, n.hints)
	if again.computer == n.computer {
		t.Fatal("a deleted computer's agent enrolled again into the deleted computer")
	}
	e.wantSeats(t, again)
	wantVerdict(t, ok(e.checkIn(again, deploy6))(t).Verdicts, "deployment-6", protocol.VerdictLicensed)

	if _, err := e.s.DeleteComputer(e.ctx, again.computer, true, "admin:alice"); err != nil {
		t.Fatal(err)
	}
	p, _ := e.enrollParams(t, n.hostname, n.hints)
	if _, err := e.enrollAs(p); !errors.Is(err, store.ErrBlocked) {
		t.Fatalf("enrolling a blocked machine: %v, want ErrBlocked", err)
	}
	if bl, err := e.s.BlockedMachines(e.ctx); err != nil || len(bl) != 1 || bl[0].ComputerID != again.computer {
		t.Fatalf("blocked machines: %+v, %v", bl, err)
	}
}

// A plug-in uninstalled (its goodbye, or an inventory that no longer
// lists it) frees its products whose rule says so (monitor), not the
// others (patch 6).
func testPluginRemoval(t *testing.T, e *env) {
	e.licenseEach(t, 5, "monitor", "patch-6", "inventory")
	n := e.enroll(t)
	e.inventory(t, n, monitor, patch6)
	ok(e.pluginData(n, patch6))(t)
	e.wantSeats(t, n, "monitor", "patch-6")
	bye := ok(e.goodbye(n, "monitor"))(t)
	if !slices.Equal(bye.Freed, []string{"monitor"}) {
		t.Fatalf("goodbye of monitor freed %v", bye.Freed)
	}
	e.wantSeats(t, n, "patch-6")
	if bye := ok(e.goodbye(n, "patch"))(t); len(bye.Freed) != 0 {
		t.Fatalf("goodbye of patch freed %v; patch 6's rule keeps the seat", bye.Freed)
	}
	e.wantSeats(t, n, "patch-6")
	if c := e.computer(t, n); c.NodeID != n.id || slices.Contains(c.Flags, store.FlagAgentUninstalled) {
		t.Fatalf("a plug-in's goodbye ended the agent: %+v", c)
	}

	m := e.enroll(t)
	e.inventory(t, m, monitor, inventory7)
	e.wantSeats(t, m, "monitor", "inventory")
	e.inventory(t, m, inventory7)
	e.wantSeats(t, m, "inventory")
	if len(e.events(t, store.EventFilter{Kind: store.EventSeatFreed, ComputerID: m.computer, Product: "monitor"})) != 1 {
		t.Error("the seat freed by the plug-in's removal is not in the audit log")
	}
}

// The agent's goodbye (uninstalled) frees every seat at once, whatever the
// rule, flags the computer and retires the key; the goodbye repeated, its
// answer lost, is answered again.
func testAgentGoodbye(t *testing.T, e *env) {
	e.licenseEach(t, 5, "monitor", "software-delivery-6", "deployment-6")
	n := e.enroll(t)
	e.inventory(t, n, monitor, swm6)
	ok(e.taskRequest(n, swm6))(t)
	ok(e.checkIn(n, deploy6))(t)
	seq := n.seq.Load() + 1
	bye, err := e.goodbyeAt(n, seq, "")
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Clone(bye.Body.Freed)
	slices.Sort(got)
	if !slices.Equal(got, []string{"deployment-6", "monitor", "software-delivery-6"}) {
		t.Fatalf("the agent's goodbye freed %v", got)
	}
	e.wantSeats(t, n)
	c := e.computer(t, n)
	if !slices.Contains(c.Flags, store.FlagAgentUninstalled) {
		t.Fatalf("computer after the agent's goodbye: flags %v", c.Flags)
	}
	if again, err := e.goodbyeAt(n, seq, ""); err != nil || !again.Repeat || !reflect.DeepEqual(again.Body, bye.Body) {
		t.Fatalf("goodbye repeated: %+v, %v; want the first answer", again, err)
	}
	var rev *store.RevokedError
	if _, err := e.checkIn(n, deploy6); !errors.As(err, &rev) || rev.Reason != store.RevokedUninstall {
		t.Fatalf("request after the goodbye: %v, want the key revoked as uninstalled", err)
	}
	if len(e.events(t, store.EventFilter{Kind: store.EventUninstalled, ComputerID: n.computer})) != 1 {
		t.Error("the uninstall is not in the audit log")
	}
}

// An allocated seat is kept for its computer (seed 004): others are
// refused it, the computer takes it on its first qualifying post.
func testAllocations(t *testing.T, e *env) {
	e.importLicense(t, license.Payload{ID: "L-mon", Product: "monitor", Seats: 2})
	a, b, c, d := e.enroll(t), e.enroll(t), e.enroll(t), e.enroll(t)
	if _, err := e.s.Allocate(e.ctx, "L-mon", c.computer, "admin:alice"); err != nil {
		t.Fatal(err)
	}
	if u := e.usage(t, "monitor", store.SeatNode); u.Reserved != 1 {
		t.Fatalf("reserved %d after an allocation, want 1", u.Reserved)
	}
	wantVerdict(t, e.inventory(t, a, monitor).Verdicts, "monitor", protocol.VerdictLicensed)
	wantVerdict(t, e.inventory(t, b, monitor).Verdicts, "monitor", protocol.VerdictDiscardedNoSeat)
	if _, err := e.s.Allocate(e.ctx, "L-mon", d.computer, "admin:alice"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("allocating a full license: %v, want ErrConflict", err)
	}
	wantVerdict(t, e.inventory(t, c, monitor).Verdicts, "monitor", protocol.VerdictLicensed)
	e.wantHolders(t, "monitor", a, c)
	u := e.usage(t, "monitor", store.SeatNode)
	if u.Reserved != 0 || u.Consumed != 2 {
		t.Fatalf("after the allocated computer posted: reserved %d consumed %d", u.Reserved, u.Consumed)
	}
	allocated := false
	for _, h := range u.Holders {
		allocated = allocated || h.ComputerID == c.computer && h.Allocated
	}
	if !allocated {
		t.Errorf("holders %+v do not show the allocation", u.Holders)
	}
	if _, err := e.s.Deallocate(e.ctx, "L-mon", c.computer, "admin:alice"); err != nil {
		t.Fatal(err)
	}
	e.wantHolders(t, "monitor", a, c)
	for _, k := range []string{store.EventAllocated, store.EventDeallocated} {
		if ev := e.events(t, store.EventFilter{Kind: k, ComputerID: c.computer}); len(ev) != 1 || ev[0].Actor != "admin:alice" {
			t.Errorf("%s events: %+v", k, ev)
		}
	}
}

// After a license expires it grants nothing: its seats move to another
// license of the product with room, new data is discarded:expired where
// no license is left; a plug-in built after the upgrade protection ended
// is discarded:upgrade-protection (seed 001).
func testExpiry(t *testing.T, e *env) {
	ends := start.Add(48 * time.Hour)
	e.importLicense(t, license.Payload{ID: "L-mon-short", Product: "monitor", Seats: 1, Expires: ends.Unix()})
	e.importLicense(t, license.Payload{ID: "L-mon-long", Product: "monitor", Seats: 2})
	e.importLicense(t, license.Payload{ID: "L-inv-trial", Product: "inventory", Seats: 3, Duration: license.TimeLimited, Expires: ends.Unix()})
	e.importLicense(t, license.Payload{ID: "L-patch", Product: "patch", Seats: 3, UpgradeUntil: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).Unix()})
	a, b := e.enroll(t), e.enroll(t)
	e.inventory(t, a, monitor, inventory7)
	if h := e.usage(t, "monitor", store.SeatNode).Holders; len(h) != 1 || h[0].License != "L-mon-short" {
		t.Fatalf("first seat on %+v, want the soonest-expiring license", h)
	}
	next, err := e.s.NextExpiry(e.ctx)
	if err != nil || !next.Truncate(time.Second).Equal(ends) {
		t.Fatalf("next expiry %v, %v; want %v", next, err, ends)
	}

	e.clk.Advance(72 * time.Hour)
	ch, err := e.s.ExpireLicenses(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var moved, freed int
	for _, s := range ch.Seats {
		switch {
		case s.Change == "moved" && s.Product == "monitor" && s.License == "L-mon-long":
			moved++
		case s.Change == "freed" && s.Product == "inventory":
			freed++
		}
	}
	if moved != 1 || freed != 1 {
		t.Fatalf("expiry: %+v; want monitor's seat moved to L-mon-long and inventory's freed", ch.Seats)
	}
	e.wantSeats(t, a, "monitor")
	wantVerdict(t, e.inventory(t, b, inventory7).Verdicts, "inventory", protocol.VerdictDiscardedExpired)
	if u := e.usage(t, "inventory", store.SeatNode); u.Granted != 0 || u.Consumed != 0 {
		t.Fatalf("inventory after its only license expired: granted %d consumed %d", u.Granted, u.Consumed)
	}

	old, newer := e.enroll(t), e.enroll(t)
	wantVerdict(t, e.inventory(t, old, patch7).Verdicts, "patch", protocol.VerdictLicensed)
	late := protocol.Plugin{Name: "patch", Version: "7.2", BuildDate: "2026-09-01"}
	wantVerdict(t, e.inventory(t, newer, late).Verdicts, "patch", protocol.VerdictDiscardedUpgradeProtection)
	e.wantSeats(t, newer)
}

// A removed license's seats move to the product's other licenses with
// room and the rest are freed: never more held than granted.
func testRemoveLicense(t *testing.T, e *env) {
	e.importLicense(t, license.Payload{ID: "L-a", Product: "monitor", Seats: 2})
	e.importLicense(t, license.Payload{ID: "L-b", Product: "monitor", Seats: 2})
	ns := []*node{e.enroll(t), e.enroll(t), e.enroll(t)}
	for _, n := range ns {
		wantVerdict(t, e.inventory(t, n, monitor).Verdicts, "monitor", protocol.VerdictLicensed)
	}
	ch, err := e.s.RemoveLicense(e.ctx, "L-a", "admin:alice")
	if err != nil {
		t.Fatal(err)
	}
	freed := 0
	for _, s := range ch.Seats {
		if s.Change == "freed" {
			freed++
		}
	}
	u := e.usage(t, "monitor", store.SeatNode)
	if u.Granted != 2 || u.Consumed != 2 || len(u.Holders) != 2 || freed != 1 {
		t.Fatalf("after removing a license: granted %d consumed %d holders %d; changes %+v", u.Granted, u.Consumed, len(u.Holders), ch.Seats)
	}
	for _, h := range u.Holders {
		if h.License != "L-b" {
			t.Errorf("holder %+v on a removed license", h)
		}
	}
	ls, err := e.s.Licenses(e.ctx)
	if err != nil || len(ls) != 1 || ls[0].ID != "L-b" || ls[0].Held != 2 {
		t.Fatalf("licenses after the removal: %+v, %v", ls, err)
	}
	if len(e.events(t, store.EventFilter{Kind: store.EventLicenseRemove})) != 1 {
		t.Error("the removal is not in the audit log")
	}
}
