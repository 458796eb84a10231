package integration

import (
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
)

// A machine refused an activation for want of a free seat waits in the
// node-locked pool, as a refused lease does in the concurrent pool: the
// pool is not compliant until it holds a seat.
func TestRefusedActivationWaitsInTheNodeLockedPool(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 1, Kind: license.KindNodeLocked})
	id := newActivationID(t, srv, "monitor", 1)
	f := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	g := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	activate := func(a *agenttest.Agent) protocol.ActivationResult {
		t.Helper()
		r, err := a.Activate(actCtx(t, 30*time.Second), id)
		if err != nil {
			t.Fatal(err)
		}
		return r.Result
	}

	if r := activate(f); r != protocol.ActivationOK {
		t.Fatalf("first machine: %s", r)
	}
	if r := activate(g); r != protocol.ActivationNoSeat {
		t.Fatalf("second machine: %s", r)
	}
	activate(g) // refused again: one machine waiting, not two
	nl := usagePools(t, srv, "monitor")["node-locked"]
	if nl.Consumed != 1 || nl.Waiting != 1 || nl.Available != -1 || nl.Compliant || nl.Discards["denied:no-seat"] != 2 {
		t.Fatalf("node-locked pool with a machine refused: %+v", nl)
	}

	if _, err := f.Deactivate(actCtx(t, 30*time.Second), id); err != nil {
		t.Fatal(err)
	}
	if r := activate(g); r != protocol.ActivationOK {
		t.Fatalf("second machine after the first deactivated: %s", r)
	}
	nl = usagePools(t, srv, "monitor")["node-locked"]
	if nl.Consumed != 1 || nl.Waiting != 0 || nl.Available != 0 || !nl.Compliant {
		t.Fatalf("node-locked pool once the refused machine holds the seat: %+v", nl)
	}
	// The first machine, which gave its seat back, is not waiting either.
	if _, err := f.Deactivate(actCtx(t, 30*time.Second), id); err != nil {
		t.Fatal(err)
	}
	if nl = usagePools(t, srv, "monitor")["node-locked"]; nl.Waiting != 0 {
		t.Fatalf("a machine that deactivated counts as waiting: %+v", nl)
	}
}
