package integration

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/activation"
	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/common/machineid"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
)

func (n *node) machine() string {
	b, _ := n.CollectBasic(context.Background())
	return machineid.Fingerprint(b.Hints)
}

func (n *node) activate(t testing.TB, id string) protocol.ActivateResponse {
	t.Helper()
	var resp protocol.ActivateResponse
	if err := n.call(protocol.KindActivate, &protocol.ActivateRequest{ActivationID: id, Machine: n.machine()}, &resp); err != nil {
		t.Fatalf("activate: %v", err)
	}
	return resp
}

func newActivationID(t *testing.T, srv *servertest.Server, product string, quantity int) string {
	t.Helper()
	a, err := srv.Admin.CreateActivation(context.Background(), adminapi.CreateActivationRequest{Product: product, Quantity: quantity})
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}

// Quantity 3: three machines activate, the fourth gets "no free seat";
// one deactivates; the fourth then activates. Records verify on their own
// machine only.
func TestActivationQuantity(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 5, Kind: license.KindNodeLocked})
	id := newActivationID(t, srv, "monitor", 3)
	nodes := newNodes(t, srv, 4)
	for _, n := range nodes[:3] {
		resp := n.activate(t, id)
		if resp.Result != protocol.ActivationOK || len(resp.Record) == 0 {
			t.Fatalf("activate: %+v", resp)
		}
		rec, err := activation.Verify(resp.Record, activation.Expect{Fingerprint: srv.Fingerprint(), Node: n.Enrollment().NodeID, Machine: n.machine(), Now: time.Now()})
		if err != nil || rec.Product != "monitor" {
			t.Fatalf("record: %+v %v", rec, err)
		}
		// The same record on another machine does not verify.
		if _, err := activation.Verify(resp.Record, activation.Expect{Fingerprint: srv.Fingerprint(), Node: n.Enrollment().NodeID, Machine: nodes[3].machine(), Now: time.Now()}); err == nil {
			t.Fatal("a record verified on another machine")
		}
	}
	if r := nodes[3].activate(t, id); r.Result != protocol.ActivationNoSeat {
		t.Fatalf("fourth: %+v", r)
	}
	var dr protocol.DeactivateResponse
	if err := nodes[1].call(protocol.KindDeactivate, &protocol.DeactivateRequest{ActivationID: id}, &dr); err != nil || dr.Result != protocol.ActivationReturned {
		t.Fatalf("deactivate: %+v %v", dr, err)
	}
	if r := nodes[3].activate(t, id); r.Result != protocol.ActivationOK {
		t.Fatalf("fourth after a deactivation: %+v", r)
	}
	a, _ := srv.Admin.Activation(context.Background(), id)
	if a.InUse != 3 || len(a.Holders) != 3 {
		t.Fatalf("activation %+v", a)
	}
	// Unknown and inactive IDs are distinct answers.
	if r := nodes[1].activate(t, "ACT-NOPE-NOPE"); r.Result != protocol.ActivationUnknown {
		t.Fatalf("unknown: %+v", r)
	}
	if _, err := srv.Admin.DeactivateActivation(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if r := nodes[1].activate(t, id); r.Result != protocol.ActivationInactive {
		t.Fatalf("inactive: %+v", r)
	}
	var st protocol.ActivationStatusResponse
	if err := nodes[0].call(protocol.KindActivationStatus, &protocol.ActivationStatusRequest{ActivationIDs: []string{id}}, &st); err != nil || st.States[0].Valid {
		t.Fatalf("status after deactivation: %+v %v", st, err)
	}
	noDrift(t, srv)
}

// The same machine activating the same ID twice at once, and 50 machines
// racing for 10 seats over real QUIC: exactly 10 bindings, no duplicate,
// every loser told "no free seat".
func TestActivationRace(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 10, Kind: license.KindNodeLocked})
	id := newActivationID(t, srv, "monitor", 10)
	nodes := newNodes(t, srv, 50)
	results := make([][2]protocol.ActivationResult, len(nodes))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, n := range nodes {
		for j := 0; j < 2; j++ { // each machine twice at once
			wg.Add(1)
			go func(i, j int, n *node) {
				defer wg.Done()
				<-start
				var resp protocol.ActivateResponse
				if err := n.call(protocol.KindActivate, &protocol.ActivateRequest{ActivationID: id, Machine: n.machine()}, &resp); err != nil {
					t.Errorf("activate: %v", err)
					return
				}
				results[i][j] = resp.Result
			}(i, j, n)
		}
	}
	close(start)
	wg.Wait()
	won := 0
	for i, r := range results {
		ok := 0
		for _, x := range r {
			switch x {
			case protocol.ActivationOK:
				ok++
			case protocol.ActivationAlready, protocol.ActivationNoSeat:
			default:
				t.Fatalf("machine %d got %s", i, x)
			}
		}
		if ok > 1 {
			t.Fatalf("machine %d was bound twice", i)
		}
		if ok == 1 {
			won++
			if r[0] != protocol.ActivationAlready && r[1] != protocol.ActivationAlready {
				t.Fatalf("machine %d: the second request was not told it already holds a seat: %v", i, r)
			}
		} else if r[0] != protocol.ActivationNoSeat || r[1] != protocol.ActivationNoSeat {
			t.Fatalf("loser %d was not told no free seat: %v", i, r)
		}
	}
	a, _ := srv.Admin.Activation(context.Background(), id)
	if won != 10 || a.InUse != 10 || len(a.Holders) != 10 {
		t.Fatalf("won %d, in use %d, holders %d; want 10", won, a.InUse, len(a.Holders))
	}
	seen := map[int64]bool{}
	for _, h := range a.Holders {
		if seen[h.ComputerID] {
			t.Fatalf("computer %d bound twice", h.ComputerID)
		}
		seen[h.ComputerID] = true
	}
	noDrift(t, srv)
}

// An admin return frees the seat of a machine that is gone; the machine's
// record is then orphaned and the server says so at its next contact.
// Retiring or deleting a computer returns its activations too.
func TestActivationAdminReturnAndRetire(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 2, Kind: license.KindNodeLocked})
	id := newActivationID(t, srv, "monitor", 1)
	lost, fresh := newNode(t, srv, srv.Secret), newNode(t, srv, srv.Secret)
	lost.activate(t, id)
	if r := fresh.activate(t, id); r.Result != protocol.ActivationNoSeat {
		t.Fatalf("fresh: %+v", r)
	}
	ch, err := srv.Admin.ReturnActivation(context.Background(), id, lost.id)
	if err != nil || len(ch.Seats) != 1 {
		t.Fatalf("return: %+v %v", ch, err)
	}
	if r := fresh.activate(t, id); r.Result != protocol.ActivationOK {
		t.Fatalf("fresh after the return: %+v", r)
	}
	var st protocol.ActivationStatusResponse
	if err := lost.call(protocol.KindActivationStatus, &protocol.ActivationStatusRequest{ActivationIDs: []string{id}}, &st); err != nil {
		t.Fatal(err)
	}
	if st.States[0].Valid || st.States[0].Reason == "" {
		t.Fatalf("the lost machine's record is still valid: %+v", st)
	}
	// A deactivation from the machine whose seat was already returned
	// frees nothing twice.
	var dr protocol.DeactivateResponse
	if err := lost.call(protocol.KindDeactivate, &protocol.DeactivateRequest{ActivationID: id}, &dr); err != nil || dr.Result != protocol.ActivationNotHeld {
		t.Fatalf("deactivate after return: %+v %v", dr, err)
	}
	a, _ := srv.Admin.Activation(context.Background(), id)
	if a.InUse != 1 {
		t.Fatalf("in use %d after a double return", a.InUse)
	}
	// Retired: monitor is freed by Retired, so its activation returns.
	ch, err = srv.Admin.SetStatus(context.Background(), fresh.id, "Retired")
	if err != nil || len(ch.Seats) != 1 {
		t.Fatalf("retire: %+v %v", ch, err)
	}
	a, _ = srv.Admin.Activation(context.Background(), id)
	if a.InUse != 0 {
		t.Fatalf("retired computer still holds the activation: %+v", a)
	}
	noDrift(t, srv)
}

// A lease holder that stops sending heartbeats loses its seat after the
// TTL, without any admin action, and another client gets it; a denied
// client is told when a seat is expected back.
func TestLeaseExpiresWithoutHeartbeats(t *testing.T) {
	clk := clock.NewManual(time.Now().UTC())
	srv := servertest.New(t, servertest.WithClock(clk))
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 1, Kind: license.KindConcurrent})
	holder, other := newNode(t, srv, srv.Secret), newNode(t, srv, srv.Secret)
	var lr protocol.LeaseResponse
	if err := holder.call(protocol.KindLeaseCheckout, &protocol.LeaseCheckoutRequest{Product: "monitor", TTL: 60}, &lr); err != nil || !lr.Granted {
		t.Fatalf("checkout: %+v %v", lr, err)
	}
	lr = protocol.LeaseResponse{}
	if err := other.call(protocol.KindLeaseCheckout, &protocol.LeaseCheckoutRequest{Product: "monitor", TTL: 60}, &lr); err != nil || lr.Granted {
		t.Fatalf("second checkout granted: %+v %v", lr, err)
	}
	if lr.ExpectedBack == 0 || time.Unix(lr.ExpectedBack, 0).After(clk.Now().Add(61*time.Second)) {
		t.Fatalf("denied client not told when a seat is expected back: %+v", lr)
	}
	// Heartbeats keep it.
	clk.Advance(40 * time.Second)
	lr = protocol.LeaseResponse{}
	if err := holder.call(protocol.KindLeaseHeartbeat, &protocol.LeaseRequest{Product: "monitor"}, &lr); err != nil || !lr.Granted {
		t.Fatalf("heartbeat: %+v %v", lr, err)
	}
	clk.Advance(40 * time.Second)
	lr = protocol.LeaseResponse{}
	if err := other.call(protocol.KindLeaseCheckout, &protocol.LeaseCheckoutRequest{Product: "monitor", TTL: 60}, &lr); err != nil || lr.Granted {
		t.Fatalf("checkout while a renewed lease stands: %+v %v", lr, err)
	}
	// The holder dies: no more heartbeats; after the TTL the seat is free.
	clk.Advance(61 * time.Second)
	lr = protocol.LeaseResponse{}
	if err := other.call(protocol.KindLeaseCheckout, &protocol.LeaseCheckoutRequest{Product: "monitor", TTL: 60}, &lr); err != nil || !lr.Granted {
		t.Fatalf("checkout after the holder's lease ran out: %+v %v", lr, err)
	}
	lr = protocol.LeaseResponse{}
	if err := holder.call(protocol.KindLeaseHeartbeat, &protocol.LeaseRequest{Product: "monitor"}, &lr); err != nil || lr.Granted {
		t.Fatalf("the dead holder's heartbeat revived its lease: %+v %v", lr, err)
	}
	ls, _ := srv.Admin.Leases(context.Background())
	if len(ls) != 1 || ls[0].ComputerID != other.id {
		t.Fatalf("leases %+v", ls)
	}
	noDrift(t, srv)
}
