package integration

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

// inZone runs a test server in the named time zone (serve --timezone).
func inZone(name string) servertest.Option {
	return func(cfg *daemon.Config) { cfg.TimeZone = name }
}

// A server set to Los Angeles writes the dates of the sentences admins
// read there: why a computer holds a seat, a lease's end, and the day an
// Activation ID expired, which typed as today's date ends at midnight in
// Los Angeles, not in UTC.
func TestSentencesInTheServersZone(t *testing.T) {
	ctx := context.Background()
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewManual(time.Now().UTC())
	srv := servertest.New(t, servertest.WithClock(clk), inZone("America/Los_Angeles"))
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "inventory", Seats: 1})
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 1, Kind: license.KindNodeLocked})
	srv.ImportLicense(t, iss, license.Payload{Product: "deployment", Seats: 1, Kind: license.KindConcurrent})
	zoneName := func(t time.Time) string { return t.In(la).Format("MST") }

	f := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	f.Install(t, "inventory", "")
	f.Cycle(t)
	w, err := srv.Admin.Why(ctx, f.Enrollment().ComputerID, "inventory")
	if err != nil {
		t.Fatal(err)
	}
	if !w.Holds || !strings.Contains(w.Answer, " since "+w.Seat.Since.In(la).Format("2006-01-02 15:04:05 MST")+":") {
		t.Errorf("why does not date the seat in Los Angeles: %q", w.Answer)
	}

	lr, err := f.LeaseCheckout(actCtx(t, 30*time.Second), "deployment", time.Hour)
	if err != nil || !lr.Granted {
		t.Fatalf("lease checkout: %+v %v", lr, err)
	}
	us, err := srv.Admin.Usage(ctx, "deployment")
	if err != nil {
		t.Fatal(err)
	}
	var leaseWhy string
	for _, u := range us {
		for _, h := range u.Holders {
			leaseWhy = h.Reason
		}
	}
	if !strings.HasPrefix(leaseWhy, "lease until ") || !strings.HasSuffix(leaseWhy, " "+zoneName(clk.Now())) {
		t.Errorf("lease holder's reason is not in Los Angeles time: %q", leaseWhy)
	}

	today := clk.Now().In(la).Format("2006-01-02")
	act, err := srv.Admin.CreateActivation(ctx, adminapi.CreateActivationRequest{Product: "monitor", Quantity: 1, Expires: today})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := f.Activate(actCtx(t, 30*time.Second), act.ID); err != nil || r.Result != protocol.ActivationOK {
		t.Fatalf("activate: %+v %v", r, err)
	}
	clk.Advance(act.ExpiresAt.Sub(clk.Now()) + time.Minute)
	if a, err := srv.Admin.Activation(ctx, act.ID); err != nil || a.InUse != 0 {
		t.Fatalf("the expired ID still holds its seat: %+v %v", a, err)
	}
	evs, err := srv.Admin.Events(ctx, url.Values{"kind": {store.EventActRevoked}})
	if err != nil || len(evs) != 1 {
		t.Fatalf("events: %+v %v", evs, err)
	}
	if want := "the Activation ID expired on " + today + ":"; !strings.Contains(evs[0].Reason, want) {
		t.Errorf("event reason %q does not say %q", evs[0].Reason, want)
	}
}
