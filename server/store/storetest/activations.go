package storetest

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/activation"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
)

// fingerprint is the server fingerprint an agent pins, of the key that
// signs activation records.
func (e *env) fingerprint(t tb) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(e.recordKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

func (e *env) wantInUse(t tb, id string, want int) store.Activation {
	t.Helper()
	a, err := e.s.Activation(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if a.InUse != want || len(a.Holders) != want {
		t.Fatalf("Activation ID %s: %d in use, %d holders; want %d", id, a.InUse, len(a.Holders), want)
	}
	return a
}

// Node-locked Activation IDs (seed 002): an ID draws its quantity from a
// node-locked license; a machine activating gets a signed record bound to
// it, activating again is idempotent, deactivating returns the seat for
// use here or elsewhere; an administrator returns a lost machine's seat
// (its record is then orphaned) or deactivates the whole ID.
func testActivations(t *testing.T, e *env) {
	e.importLicense(t, license.Payload{ID: "L-nl", Product: "monitor", Seats: 3, Kind: license.KindNodeLocked})
	id := ok(e.s.CreateActivation(e.ctx, "monitor", 2, nil, "admin:alice"))(t)
	if id.Quantity != 2 || id.Status != "active" || id.License != "L-nl" || !protocol.ValidActivationID(id.ID) {
		t.Fatalf("created %+v", id)
	}
	if _, err := e.s.CreateActivation(e.ctx, "monitor", 2, nil, "admin:alice"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("an ID above the license's room: %v, want ErrConflict", err)
	}
	if _, err := e.s.CreateActivation(e.ctx, "no-such-product", 1, nil, "admin:alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an ID of an unknown product: %v, want ErrNotFound", err)
	}
	a, b, c := e.enroll(t), e.enroll(t), e.enroll(t)

	on := ok(e.activate(a, id.ID))(t)
	if on.Result != protocol.ActivationOK {
		t.Fatalf("activate: %+v", on)
	}
	rec, err := activation.Verify(on.Record, activation.Expect{Fingerprint: e.fingerprint(t), Node: a.id, Machine: machineOf(a), Now: e.clk.Now()})
	if err != nil || rec.ActivationID != id.ID || rec.Product != "monitor" {
		t.Fatalf("the record does not verify on its machine: %+v, %v", rec, err)
	}
	if _, err := activation.Verify(on.Record, activation.Expect{Fingerprint: e.fingerprint(t), Node: b.id, Machine: machineOf(b), Now: e.clk.Now()}); err == nil {
		t.Fatal("the record verifies on another machine")
	}
	if again := ok(e.activate(a, id.ID))(t); again.Result != protocol.ActivationAlready || len(again.Record) == 0 {
		t.Fatalf("activating again here: %+v, want already activated with the record", again)
	}
	if r := ok(e.activate(b, id.ID))(t); r.Result != protocol.ActivationOK {
		t.Fatalf("second seat: %+v", r)
	}
	if r := ok(e.activate(c, id.ID))(t); r.Result != protocol.ActivationNoSeat {
		t.Fatalf("third activation of a quantity of 2: %+v", r)
	}
	e.wantInUse(t, id.ID, 2)
	if u := e.usage(t, "monitor", store.SeatNodeLocked); u.Consumed != 2 || u.Granted != 3 {
		t.Fatalf("node-locked usage: consumed %d granted %d", u.Consumed, u.Granted)
	}

	if r := ok(e.deactivate(a, id.ID))(t); r.Result != protocol.ActivationReturned {
		t.Fatalf("deactivate: %+v", r)
	}
	if r := ok(e.deactivate(a, id.ID))(t); r.Result != protocol.ActivationNotHeld {
		t.Fatalf("deactivate again: %+v", r)
	}
	if r := ok(e.activate(c, id.ID))(t); r.Result != protocol.ActivationOK {
		t.Fatalf("activation elsewhere after the return: %+v", r)
	}

	// Rehost: the administrator returns b's seat; b's record is orphaned.
	ch, err := e.s.ReturnActivation(e.ctx, id.ID, b.computer, "admin:alice")
	if err != nil || len(ch.Seats) != 1 || ch.Seats[0].Change != "freed" {
		t.Fatalf("return from the server: %+v, %v", ch, err)
	}
	st := ok(e.activationStatus(b, id.ID))(t)
	if len(st.States) != 1 || st.States[0].Valid || st.States[0].Reason == "" {
		t.Fatalf("b's record after the return: %+v, want invalid with a reason", st)
	}
	if st := ok(e.activationStatus(c, id.ID))(t); len(st.States) != 1 || !st.States[0].Valid {
		t.Fatalf("c's record: %+v, want valid", st)
	}
	e.wantInUse(t, id.ID, 1)

	// The whole ID deactivated: every seat back, no new activation.
	if _, err := e.s.DeactivateActivation(e.ctx, id.ID, "admin:alice"); err != nil {
		t.Fatal(err)
	}
	got := e.wantInUse(t, id.ID, 0)
	if got.Status != "inactive" {
		t.Fatalf("status %s after deactivation", got.Status)
	}
	if r := ok(e.activate(a, id.ID))(t); r.Result != protocol.ActivationInactive {
		t.Fatalf("activating an inactive ID: %+v", r)
	}
	if st := ok(e.activationStatus(c, id.ID))(t); len(st.States) != 1 || st.States[0].Valid {
		t.Fatalf("c's record after the ID was deactivated: %+v", st)
	}
	if r := ok(e.activate(a, "ACT-NO-SUCH-ID"))(t); r.Result != protocol.ActivationUnknown {
		t.Fatalf("unknown ID: %+v", r)
	}

	// A computer that is not Active is refused; its seats go with a
	// Retired status (monitor's rule).
	next := ok(e.s.CreateActivation(e.ctx, "monitor", 2, nil, "admin:alice"))(t)
	ok(e.activate(a, next.ID))(t)
	e.setStatus(t, a, "Retired")
	e.wantInUse(t, next.ID, 0)
	if r := ok(e.activate(a, next.ID))(t); r.Result != protocol.ActivationRefused {
		t.Fatalf("activation of a retired computer: %+v", r)
	}
	if ls, _ := e.s.Licenses(e.ctx); len(ls) != 1 || ls[0].Held != 0 {
		t.Fatalf("license after every seat came back: %+v", ls)
	}
	for kind, actor := range map[string]string{store.EventActCreated: "admin:alice", store.EventActivated: store.NodeActor(a.id)} {
		ev := e.events(t, store.EventFilter{Kind: kind})
		if len(ev) == 0 || ev[0].Actor != actor {
			t.Errorf("%s events %+v, want the first by %s", kind, ev, actor)
		}
	}
}

// An Activation ID that expires returns its seats: it grants nothing
// after its end, and its records are no longer valid.
func testActivationExpiry(t *testing.T, e *env) {
	e.importLicense(t, license.Payload{ID: "L-nl", Product: "monitor", Seats: 2, Kind: license.KindNodeLocked})
	ends := start.Add(time.Hour)
	id := ok(e.s.CreateActivation(e.ctx, "monitor", 2, &ends, "admin:alice"))(t)
	a, b := e.enroll(t), e.enroll(t)
	if r := ok(e.activate(a, id.ID))(t); r.Result != protocol.ActivationOK {
		t.Fatalf("activate: %+v", r)
	}
	e.wantInUse(t, id.ID, 1)
	e.clk.Advance(2 * time.Hour)
	if r := ok(e.activate(b, id.ID))(t); r.Result != protocol.ActivationExpired {
		t.Fatalf("activating an expired ID: %+v", r)
	}
	got := e.wantInUse(t, id.ID, 0)
	if got.Status != "expired" {
		t.Fatalf("status %s after the end", got.Status)
	}
	if st := ok(e.activationStatus(a, id.ID))(t); len(st.States) != 1 || st.States[0].Valid {
		t.Fatalf("a's record after the end: %+v", st)
	}
	if u := e.usage(t, "monitor", store.SeatNodeLocked); u.Consumed != 0 {
		t.Fatalf("node-locked seats consumed %d after the ID expired", u.Consumed)
	}
	if ls, _ := e.s.Licenses(e.ctx); len(ls) != 1 || ls[0].Held != 0 {
		t.Fatalf("license after the ID expired: %+v", ls)
	}
}
