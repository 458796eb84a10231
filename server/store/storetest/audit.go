package storetest

import (
	"testing"
	"time"

	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
)

// Every change writes an audit event naming its actor, computer and
// product: a node's for what its requests do, the administrator's for
// theirs; the log reads back by computer, product, kind and time.
func testAudit(t *testing.T, e *env) {
	e.importLicense(t, license.Payload{ID: "L-mon", Product: "monitor", Seats: 5})
	a, b := e.enroll(t), e.enroll(t)
	e.inventory(t, a, monitor)
	e.inventory(t, b, monitor)
	e.clk.Advance(time.Hour)
	later := e.clk.Now()
	e.setStatus(t, a, "Retired")
	if _, err := e.s.AddStatus(e.ctx, "Loaned", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.DeleteComputer(e.ctx, b.computer, false, "admin:bob"); err != nil {
		t.Fatal(err)
	}

	want := []struct {
		kind, actor, product string
		computer             *node
	}{
		{store.EventLicenseImport, "admin:importer", "monitor", nil},
		{store.EventEnrolled, store.NodeActor(a.id), "", a},
		{store.EventSeatConsumed, store.NodeActor(a.id), "monitor", a},
		{store.EventSeatConsumed, store.NodeActor(b.id), "monitor", b},
		{store.EventStatus, "admin:alice", "", a},
		{store.EventSeatFreed, "admin:alice", "monitor", a},
		{store.EventDeleted, "admin:bob", "", b},
		{store.EventSeatFreed, "admin:bob", "monitor", b},
	}
	for _, w := range want {
		f := store.EventFilter{Kind: w.kind, Product: w.product}
		if w.computer != nil {
			f.ComputerID = w.computer.computer
		}
		ev := e.events(t, f)
		if len(ev) != 1 {
			t.Errorf("%s events of %+v: %+v, want one", w.kind, f, ev)
			continue
		}
		if ev[0].Actor != w.actor || ev[0].At.IsZero() {
			t.Errorf("%s: actor %q at %v, want %q", w.kind, ev[0].Actor, ev[0].At, w.actor)
		}
	}
	all := e.auditLog(t)
	for _, x := range all {
		if x.Actor == "" || x.Kind == "" || x.ID == 0 {
			t.Errorf("event without actor, kind or ID: %+v", x)
		}
	}
	for _, x := range e.events(t, store.EventFilter{ComputerID: a.computer}) {
		if x.ComputerID != a.computer {
			t.Errorf("filter by computer %d returned %+v", a.computer, x)
		}
	}
	since := e.events(t, store.EventFilter{Since: later})
	if len(since) == 0 || len(since) >= len(all) {
		t.Fatalf("%d events since %v of %d", len(since), later, len(all))
	}
	for _, x := range since {
		if x.At.Before(later) {
			t.Errorf("event %+v before %v", x, later)
		}
	}
	if last := e.events(t, store.EventFilter{Limit: 2}); len(last) != 2 || last[1].ID != all[len(all)-1].ID {
		t.Errorf("the newest 2 events: %+v, want the log's last two", last)
	}
}
