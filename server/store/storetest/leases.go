package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
)

// Concurrent licenses: a checkout grants a lease for its time to live,
// heartbeats extend it, a check-in or the end of its time returns the
// seat; a crashed client never holds it longer than the time to live.
func testLeases(t *testing.T, e *env) {
	e.importLicense(t, license.Payload{ID: "L-cc", Product: "monitor", Seats: 1, Kind: license.KindConcurrent})
	a, b := e.enroll(t), e.enroll(t)
	ttl := time.Minute
	got := ok(e.lease(a, "monitor", ttl))(t)
	if !got.Granted || got.TTL != 60 || got.Expires != start.Add(ttl).Unix() {
		t.Fatalf("checkout: %+v", got)
	}
	denied := ok(e.lease(b, "monitor", ttl))(t)
	if denied.Granted || denied.Result != protocol.ActivationNoSeat || denied.ExpectedBack != start.Add(ttl).Unix() {
		t.Fatalf("checkout with no seat free: %+v", denied)
	}
	e.clk.Advance(40 * time.Second)
	beat := ok(e.lease(a, "monitor", heartbeat))(t)
	if !beat.Granted || beat.Expires != e.clk.Now().Add(ttl).Unix() {
		t.Fatalf("heartbeat: %+v", beat)
	}
	e.clk.Advance(40 * time.Second) // past the first expiry, within the renewed one
	if r := ok(e.lease(b, "monitor", ttl))(t); r.Granted {
		t.Fatalf("checkout while the renewed lease runs: %+v", r)
	}
	// a crashes: no heartbeat; after its time to live the seat is free.
	e.clk.Advance(time.Minute)
	if r := ok(e.lease(b, "monitor", ttl))(t); !r.Granted {
		t.Fatalf("checkout after the lease ran out: %+v", r)
	}
	ls := ok(e.s.Leases(e.ctx))(t)
	if len(ls) != 1 || ls[0].ComputerID != b.computer || ls[0].License != "L-cc" {
		t.Fatalf("leases: %+v, want b's alone", ls)
	}
	if r := ok(e.lease(a, "monitor", heartbeat))(t); r.Granted || r.Result != protocol.ActivationNotHeld {
		t.Fatalf("heartbeat of an expired lease: %+v", r)
	}
	// The scheduler settles expiries (ExpireLicenses): the lease's end is
	// audited at the time it ran out.
	if _, err := e.s.ExpireLicenses(e.ctx); err != nil {
		t.Fatal(err)
	}
	if ev := e.events(t, store.EventFilter{Kind: store.EventLeaseExpired, ComputerID: a.computer}); len(ev) != 1 || !ev[0].At.Equal(start.Add(40*time.Second+ttl)) {
		t.Fatalf("lease expiry events: %+v, want one at %v", ev, start.Add(40*time.Second+ttl))
	}
	if u := e.usage(t, "monitor", store.SeatConcurrent); u.Consumed != 1 || u.Granted != 1 {
		t.Fatalf("concurrent usage: consumed %d granted %d", u.Consumed, u.Granted)
	}
	if r := ok(e.lease(b, "monitor", checkin))(t); r.Result != protocol.ActivationReturned {
		t.Fatalf("check-in: %+v", r)
	}
	if ls := ok(e.s.Leases(e.ctx))(t); len(ls) != 0 {
		t.Fatalf("leases after the check-in: %+v", ls)
	}
	if r := ok(e.lease(b, "monitor", checkin))(t); r.Result != protocol.ActivationNotHeld {
		t.Fatalf("check-in again: %+v", r)
	}

	if r := ok(e.lease(a, "no-such-product", ttl))(t); r.Granted || r.Result != protocol.ActivationUnknown {
		t.Fatalf("lease of an unknown product: %+v", r)
	}
	if _, err := e.lease(a, "monitor", protocol.MaxLeaseTTL+time.Second); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a time to live above the maximum: %v, want ErrInvalid", err)
	}
	e.setStatus(t, a, "Retired")
	if r := ok(e.lease(a, "monitor", ttl))(t); r.Granted || r.Result != protocol.ActivationRefused {
		t.Fatalf("lease of a retired computer: %+v", r)
	}
	if ls := ok(e.s.Leases(e.ctx))(t); len(ls) != 0 {
		t.Fatalf("leases: %+v", ls)
	}
}
