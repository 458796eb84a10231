package engine

import (
	"testing"
	"time"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/catalog"
)

// The answer to an activation, in the order of the README's exit codes: a
// computer that is not Active is told so whatever the ID's state (14), an
// unknown ID first of all (13).
func TestActivateResults(t *testing.T) {
	e := newEngine(t)
	lic := &License{ID: "L-1", Seats: 5}
	id := func(mod func(a *ActivationID)) *ActivationID {
		a := &ActivationID{ID: "ACT-1", Product: "cad", License: lic, Quantity: 1, Active: true}
		if mod != nil {
			mod(a)
		}
		return a
	}
	full := func(a *ActivationID) { a.Live = 1 }
	for _, c := range []struct {
		name   string
		a      *ActivationID
		holds  bool
		status string
		want   protocol.ActivationResult
	}{
		{"free seat", id(nil), false, catalog.StatusActive, protocol.ActivationOK},
		{"held here", id(full), true, "Retired", protocol.ActivationAlready},
		{"unknown", nil, false, "Retired", protocol.ActivationUnknown},
		{"retired, no free seat", id(full), false, "Retired", protocol.ActivationRefused},
		{"retired, inactive ID", id(func(a *ActivationID) { a.Active = false }), false, "Retired", protocol.ActivationRefused},
		{"inactive", id(func(a *ActivationID) { a.Active = false }), false, catalog.StatusActive, protocol.ActivationInactive},
		{"expired", id(func(a *ActivationID) { a.Expires = now.Add(-time.Second) }), false, catalog.StatusActive, protocol.ActivationExpired},
		{"no free seat", id(full), false, catalog.StatusActive, protocol.ActivationNoSeat},
	} {
		if got, msg := e.Activate(c.a, c.holds, c.status, now); got != c.want || msg == "" {
			t.Errorf("%s: %s (%q), want %s", c.name, got, msg, c.want)
		}
	}
}

// A checkout is refused for a computer that is not Active (14), as expired
// when every license has expired (12), and as no free seat otherwise (10),
// with when one is expected back.
func TestDecideCheckout(t *testing.T) {
	e := newEngine(t)
	valid := func(held int) *License { return &License{ID: "L-v", Product: "cad", Seats: 1, Held: held} }
	expired := &License{ID: "L-x", Product: "cad", Seats: 1, Expires: now.Add(-time.Hour)}
	back := now.Add(time.Minute)
	for _, c := range []struct {
		name     string
		status   string
		lics     []*License
		expiring []time.Time
		want     protocol.ActivationResult
	}{
		{"free", catalog.StatusActive, []*License{valid(0)}, nil, protocol.ActivationOK},
		{"retired with a free seat", "Retired", []*License{valid(0)}, nil, protocol.ActivationRefused},
		{"taken", catalog.StatusActive, []*License{valid(1)}, []time.Time{back}, protocol.ActivationNoSeat},
		{"none imported", catalog.StatusActive, nil, nil, protocol.ActivationNoSeat},
		{"all expired", catalog.StatusActive, []*License{expired}, nil, protocol.ActivationExpired},
	} {
		d := e.DecideCheckout("cad", c.status, c.lics, c.expiring, now)
		if d.Result != c.want || (d.License == nil) != (c.want != protocol.ActivationOK) || (d.License == nil && d.Message == "") {
			t.Errorf("%s: %+v, want %s", c.name, d, c.want)
		}
		if c.name == "taken" && !d.ExpectedBack.Equal(back) {
			t.Errorf("taken: expected back %v, want %v", d.ExpectedBack, back)
		}
	}
}
