package integration

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/agent/runner"
	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

// An Activation ID that expires while a machine holds it gives its seat
// back at once, whoever notices first: a read (activation show, usage), the
// expiry sweep or maintenance. Each return is audited, and the machine's
// record is removed at its next contact.
func TestExpiredActivationReturnsItsSeats(t *testing.T) {
	clk := clock.NewManual(time.Now().UTC())
	srv := servertest.New(t, servertest.WithClock(clk))
	iss := srv.TrustNewIssuer(t)
	perpetual := srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 2, Kind: license.KindNodeLocked})
	expiring := srv.ImportLicense(t, iss, license.Payload{Product: "patch", Seats: 1, Kind: license.KindNodeLocked,
		Expires: clk.Now().Add(3 * time.Hour).Unix()})
	create := func(product string, expires time.Duration) string {
		t.Helper()
		req := adminapi.CreateActivationRequest{Product: product, Quantity: 1}
		if expires > 0 {
			req.Expires = clk.Now().Add(expires).Format(time.RFC3339)
		}
		a, err := srv.Admin.CreateActivation(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	byRead, bySweep, byMaintenance := create("monitor", time.Hour), create("patch", 0), create("monitor", 5*time.Hour)
	f := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	g := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	activateOK(t, f, byRead)
	activateOK(t, f, bySweep)
	activateOK(t, g, byMaintenance)
	held := func(id string) int {
		t.Helper()
		ls, err := srv.Admin.Licenses(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if l.ID == id {
				return l.Held
			}
		}
		t.Fatalf("no license %s", id)
		return 0
	}

	// Noticed by a read.
	clk.Advance(2 * time.Hour)
	a, err := srv.Admin.Activation(context.Background(), byRead)
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != "expired" || a.InUse != 0 || len(a.Holders) != 0 {
		t.Fatalf("an expired ID still holds its seat: %+v", a)
	}
	if h := held(perpetual.ID); h != 1 {
		t.Fatalf("license %s counts %d seats held, want 1 (the unexpired ID's)", perpetual.ID, h)
	}
	removed, err := f.SyncActivations(actCtx(t, 30*time.Second))
	if err != nil || len(removed) != 1 || removed[0].ActivationID != byRead || !strings.Contains(removed[0].Reason, "expired") {
		t.Fatalf("sync after the expiry: %+v %v", removed, err)
	}
	if _, err := f.Check(context.Background(), "monitor"); !errors.Is(err, runner.ErrNotLicensed) {
		t.Fatalf("check after the expiry: %v", err)
	}
	if r, err := g.Activate(actCtx(t, 30*time.Second), byRead); err != nil || r.Result != protocol.ActivationExpired {
		t.Fatalf("activating an expired ID: %+v %v", r, err)
	}

	// Noticed by the expiry sweep (the license expired).
	clk.Advance(2 * time.Hour)
	ch, err := srv.Store().ExpireLicenses(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Seats) != 1 || ch.Seats[0].ComputerID != f.Enrollment().ComputerID || ch.Seats[0].Product != "patch" {
		t.Fatalf("the sweep returned %+v", ch.Seats)
	}
	if h := held(expiring.ID); h != 0 {
		t.Fatalf("the expired license counts %d seats held", h)
	}

	// Noticed by maintenance.
	clk.Advance(2 * time.Hour)
	rep, err := srv.Admin.Maintenance(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Expired) != 1 || rep.Expired[0].ComputerID != g.Enrollment().ComputerID || rep.Expired[0].Product != "monitor" {
		t.Fatalf("maintenance returned %+v", rep.Expired)
	}
	if h := held(perpetual.ID); h != 0 {
		t.Fatalf("license %s counts %d seats held after every ID expired", perpetual.ID, h)
	}
	if _, _, err := g.Once(actCtx(t, 60*time.Second)); err != nil {
		t.Fatal(err)
	}
	if holdsRecord(t, g, byMaintenance) {
		t.Fatal("the expired record is still on the machine after its next contact")
	}

	// One audit record per returned seat, none twice.
	ev, err := srv.Admin.Events(context.Background(), url.Values{"kind": {store.EventActRevoked}})
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, e := range ev {
		per[strings.SplitN(e.Reason, ":", 2)[0]]++
	}
	if per[byRead] != 1 || per[bySweep] != 1 || per[byMaintenance] != 1 {
		t.Fatalf("audit of the returns: %v", per)
	}
	noDrift(t, srv)
}
