package integration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/server/alerting"
	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/recognize"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

// receiver is a webhook receiver that checks signatures, fails the first
// attempts of each delivery, or every attempt while down.
type receiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	failN  int
	down   bool
	tries  map[string][]time.Time // by delivery ID
	got    map[string]int         // successful receipts by condition key
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if !alerting.Verify(rc.secret, body, r.Header.Get(alerting.SignatureHeader)) {
		rc.t.Errorf("bad signature %q on %s", r.Header.Get(alerting.SignatureHeader), body)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var c store.AlertCondition
	if err := json.Unmarshal(body, &c); err != nil || c.Key == "" || c.Message == "" || c.Action == "" {
		rc.t.Errorf("alert body %s: %v", body, err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	id := r.Header.Get("Tally-Delivery")
	rc.tries[id] = append(rc.tries[id], time.Now())
	if rc.down || len(rc.tries[id]) <= rc.failN {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	rc.got[c.Key]++
}

func (rc *receiver) received() map[string]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string]int{}
	for k, v := range rc.got {
		out[k] = v
	}
	return out
}

// Must hold: a test HTTP server on loopback receives each alert once and
// verifies its signature; a failing receiver gets retries with back-off
// and a delivery-log entry; no alert is lost across a server restart.
func TestWebhookAlertsOnceRetriedAndKeptAcrossRestart(t *testing.T) {
	const backoff = 100 * time.Millisecond
	fast := func(c *daemon.Config) {
		c.TimeZone = "UTC"
		c.Alerts = alerting.Config{Every: 50 * time.Millisecond, Poll: 20 * time.Millisecond, Backoff: backoff, MaxAttempts: 8}
	}
	srv := servertest.New(t, fast)
	ctx := context.Background()
	rc := &receiver{t: t, secret: "a-secret-of-twenty-chars", failN: 2, tries: map[string][]time.Time{}, got: map[string]int{}}
	hs := httptest.NewServer(rc)
	defer hs.Close()
	if _, err := srv.Admin.AddWebhook(ctx, hs.URL+"/hook", rc.secret); err != nil {
		t.Fatal(err)
	}
	today := positions.DateOf(time.Now().UTC())
	if _, err := srv.Admin.AddApplications(ctx, []store.Application{{Name: "App", Rules: []recognize.Rule{{Package: "app"}}}}); err != nil {
		t.Fatal(err)
	}
	addLicense := func(adm interface {
		AddSoftwareLicense(context.Context, store.SoftwareLicense) (store.SoftwareLicense, error)
	}, name string, expiresIn int) {
		t.Helper()
		l := store.SoftwareLicense{License: positions.License{Name: name, Duration: positions.Perpetual}, Applications: []string{"App"}}
		if expiresIn > 0 {
			l.Duration, l.Expiry = positions.Subscription, today.AddDays(expiresIn)
		}
		if _, err := adm.AddSoftwareLicense(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	// C1: a subscription license ending in 5 days; C2: maintenance of
	// another license ending in 20 days.
	addLicense(srv.Admin, "Sub", 5)
	addLicense(srv.Admin, "Maintained", 0)
	if _, err := srv.Admin.AddPurchases(ctx, []store.NewPurchase{
		{Purchase: positions.Purchase{PO: "PO-1", Item: "seats", Quantity: 5, Type: positions.PurchaseLicense}, Links: []positions.Link{{License: "SW-2", Quantity: 5}}},
		{Purchase: positions.Purchase{PO: "PO-2", Item: "maintenance", Quantity: 5, Type: positions.PurchaseMaintenance, Effective: today.AddDays(-345), Expiry: today.AddDays(20)},
			Links: []positions.Link{{License: "SW-2", Quantity: 5}}},
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "two alerts delivered", func() bool { return len(rc.received()) == 2 })
	// Each failed twice, then got through: three attempts, waiting the
	// back-off, then twice the back-off.
	rc.mu.Lock()
	for id, ts := range rc.tries {
		if len(ts) != 3 {
			t.Errorf("delivery %s: %d attempts, want 3", id, len(ts))
			continue
		}
		// The store keeps milliseconds: a retry may come up to one early.
		const slack = 2 * time.Millisecond
		if g1, g2 := ts[1].Sub(ts[0]), ts[2].Sub(ts[1]); g1 < backoff-slack || g2 < 2*backoff-slack {
			t.Errorf("delivery %s: retried after %v then %v, want at least %v then %v", id, g1, g2, backoff, 2*backoff)
		}
	}
	rc.failN = 0
	rc.mu.Unlock()
	var log []store.AlertDelivery
	waitFor(t, 30*time.Second, "both deliveries recorded", func() bool {
		var err error
		log, err = srv.Admin.Deliveries(ctx)
		return err == nil && len(log) == 2 && log[0].State == "delivered" && log[1].State == "delivered"
	})
	for _, d := range log {
		if d.State != "delivered" || d.Attempts != 3 || d.LastStatus != 0 && d.LastStatus != 200 {
			t.Errorf("delivery log entry %+v", d)
		}
	}

	// The receiver goes down; a third condition is raised and tried, and
	// the server stops before it got through.
	rc.mu.Lock()
	rc.down = true
	rc.mu.Unlock()
	addLicense(srv.Admin, "Sub3", 3)
	waitFor(t, 30*time.Second, "the third alert tried", func() bool {
		log, err := srv.Admin.Deliveries(ctx)
		return err == nil && len(log) == 3 && log[0].Attempts >= 1 && log[0].State == "pending" && log[0].LastError != ""
	})
	dir := srv.Config.DataDir
	srv.Stop()
	rc.mu.Lock()
	rc.down = false
	rc.mu.Unlock()
	srv2 := servertest.New(t, fast, servertest.WithDataDir(dir))
	waitFor(t, 30*time.Second, "the third alert after the restart", func() bool { return len(rc.received()) == 3 })
	// A fourth condition after the restart proves conditions were
	// evaluated again since: none of the first three came twice.
	addLicense(srv2.Admin, "Sub4", 6)
	waitFor(t, 30*time.Second, "the fourth alert", func() bool { return len(rc.received()) == 4 })
	for k, n := range rc.received() {
		if n != 1 {
			t.Errorf("alert %s received %d times", k, n)
		}
	}
	if log, err := srv2.Admin.Deliveries(ctx); err != nil || len(log) != 4 {
		t.Fatalf("delivery log after the restart: %d entries, %v", len(log), err)
	}
}
