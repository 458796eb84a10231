package integration

import (
	"context"
	"database/sql"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/alerting"
	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

// Must hold: discards starting for a product and drift found by
// maintenance are each alerted once, signed, to a loopback receiver,
// and the drift condition raised after a restart is not lost.
func TestDiscardsAndDriftAlertedOnce(t *testing.T) {
	fast := func(c *daemon.Config) {
		c.TimeZone = "UTC"
		c.Alerts = alerting.Config{Every: 50 * time.Millisecond, Poll: 20 * time.Millisecond, Backoff: 100 * time.Millisecond, MaxAttempts: 8}
	}
	srv := servertest.New(t, fast)
	ctx := context.Background()
	rc := &receiver{t: t, secret: "a-secret-of-twenty-chars", tries: map[string][]time.Time{}, got: map[string]int{}}
	hs := httptest.NewServer(rc)
	defer hs.Close()
	if _, err := srv.Admin.AddWebhook(ctx, hs.URL+"/hook", rc.secret); err != nil {
		t.Fatal(err)
	}
	l := srv.ImportLicense(t, srv.TrustNewIssuer(t), license.Payload{Product: "monitor", Seats: 1})
	a, b := newNode(t, srv, srv.Secret), newNode(t, srv, srv.Secret)
	mon := []protocol.Plugin{plug("monitor", "1.0")}
	if v := verdictOf(a.post(mon, nil).Verdicts, "monitor"); v != protocol.VerdictLicensed {
		t.Fatalf("a: %s", v)
	}
	if v := verdictOf(b.post(mon, nil).Verdicts, "monitor"); v != protocol.VerdictDiscardedNoSeat {
		t.Fatalf("b: %s", v)
	}
	waitFor(t, 30*time.Second, "the discards alert", func() bool { return rc.received()["discards|monitor"] == 1 })

	// Discards go on; a later condition proves the conditions were
	// evaluated again since, and the discards were not alerted again.
	if v := verdictOf(b.post(mon, nil).Verdicts, "monitor"); v != protocol.VerdictDiscardedNoSeat {
		t.Fatalf("b again: %s", v)
	}
	if _, err := srv.Admin.AddSoftwareLicense(ctx, store.SoftwareLicense{License: positions.License{Name: "Sub", Duration: positions.Subscription,
		Expiry: positions.DateOf(time.Now().UTC()).AddDays(5)}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the later alert", func() bool { return len(rc.received()) == 2 })

	// The seat counter is edited while the server is down: the next
	// maintenance run finds and repairs the drift, and alerts it once.
	dir := srv.Config.DataDir
	srv.Stop()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, datadir.DatabaseFile)+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE licenses SET held = 0 WHERE id = ?`, l.ID); err != nil {
		t.Fatal(err)
	}
	db.Close()
	srv = servertest.New(t, fast, servertest.WithDataDir(dir))
	rep, err := srv.Admin.Maintenance(ctx)
	if err != nil || len(rep.Drift) == 0 {
		t.Fatalf("maintenance found no drift: %+v %v", rep, err)
	}
	var driftKey string
	waitFor(t, 30*time.Second, "the drift alert", func() bool {
		for k := range rc.received() {
			if strings.HasPrefix(k, alerting.KindDrift+"|") {
				driftKey = k
				return true
			}
		}
		return false
	})
	// A second run finds none: the condition ends, and nothing new comes.
	if rep, err := srv.Admin.Maintenance(ctx); err != nil || len(rep.Drift) > 0 {
		t.Fatalf("second maintenance run: %v %v", rep.Drift, err)
	}
	waitFor(t, 30*time.Second, "the drift condition to end", func() bool {
		f, err := srv.Store().AlertFacts(ctx, time.Now().Add(-time.Hour))
		return err == nil && f.Drift == nil
	})
	if _, err := srv.Admin.AddSoftwareLicense(ctx, store.SoftwareLicense{License: positions.License{Name: "Sub2", Duration: positions.Subscription,
		Expiry: positions.DateOf(time.Now().UTC()).AddDays(6)}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the last alert", func() bool { return len(rc.received()) == 4 })
	got := rc.received()
	for k, n := range got {
		if n != 1 {
			t.Errorf("alert %s received %d times", k, n)
		}
	}
	if got[driftKey] != 1 || got["discards|monitor"] != 1 {
		t.Errorf("received %v", got)
	}
	// The notifier records a delivery after the receiver answered: wait
	// for the log to catch up with what the receiver has seen.
	var log []store.AlertDelivery
	waitFor(t, 30*time.Second, "four deliveries recorded as delivered", func() bool {
		l, err := srv.Admin.Deliveries(ctx)
		if err != nil || len(l) != 4 {
			return false
		}
		log = l
		for _, d := range l {
			if d.State != "delivered" {
				return false
			}
		}
		return true
	})
	if len(log) != 4 {
		t.Fatalf("delivery log: %+v", log)
	}
}

// A removed webhook gets no more alerts, its pending deliveries are given
// up and its delivery log stays; the other webhooks go on.
func TestRemovedWebhookGetsNoMoreAlerts(t *testing.T) {
	srv := servertest.New(t, func(c *daemon.Config) {
		c.TimeZone = "UTC"
		c.Alerts = alerting.Config{Every: 50 * time.Millisecond, Poll: 20 * time.Millisecond, Backoff: 100 * time.Millisecond, MaxAttempts: 50}
	})
	ctx := context.Background()
	gone := &receiver{t: t, secret: "a-secret-of-twenty-chars", down: true, tries: map[string][]time.Time{}, got: map[string]int{}}
	kept := &receiver{t: t, secret: "another-secret-of-twenty", tries: map[string][]time.Time{}, got: map[string]int{}}
	hg, hk := httptest.NewServer(gone), httptest.NewServer(kept)
	defer hg.Close()
	defer hk.Close()
	wg, err := srv.Admin.AddWebhook(ctx, hg.URL+"/hook", gone.secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Admin.AddWebhook(ctx, hk.URL+"/hook", kept.secret); err != nil {
		t.Fatal(err)
	}
	today := positions.DateOf(time.Now().UTC())
	sub := func(name string, days int) {
		t.Helper()
		if _, err := srv.Admin.AddSoftwareLicense(ctx, store.SoftwareLicense{License: positions.License{Name: name, Duration: positions.Subscription, Expiry: today.AddDays(days)}}); err != nil {
			t.Fatal(err)
		}
	}
	sub("First", 5)
	waitFor(t, 30*time.Second, "the first alert to the kept webhook, and the other tried", func() bool {
		gone.mu.Lock()
		tried := len(gone.tries) > 0
		gone.mu.Unlock()
		return tried && len(kept.received()) == 1
	})
	if _, err := srv.Admin.RemoveWebhook(ctx, wg.ID); err != nil {
		t.Fatal(err)
	}
	if hs, err := srv.Admin.Webhooks(ctx); err != nil || len(hs) != 1 || hs[0].ID == wg.ID {
		t.Fatalf("webhooks after the removal: %+v %v", hs, err)
	}
	if _, err := srv.Admin.RemoveWebhook(ctx, wg.ID); err == nil || !strings.Contains(err.Error(), "no webhook") {
		t.Fatalf("removed twice: %v", err)
	}
	sub("Second", 6)
	waitFor(t, 30*time.Second, "the second alert to the kept webhook", func() bool { return len(kept.received()) == 2 })
	// The notifier records a delivery after the receiver answered: wait
	// for the log to catch up with what the kept receiver has seen.
	var log []store.AlertDelivery
	waitFor(t, 30*time.Second, "the kept webhook's deliveries recorded", func() bool {
		l, err := srv.Admin.Deliveries(ctx)
		if err != nil || len(l) != 3 {
			return false
		}
		log = l
		for _, d := range l {
			if d.Webhook != wg.ID && d.State != "delivered" {
				return false
			}
		}
		return true
	})
	for _, d := range log {
		switch {
		case d.Webhook == wg.ID && (d.State != "failed" || d.LastError != "webhook removed"):
			t.Errorf("the removed webhook's delivery %+v", d)
		case d.Webhook != wg.ID && d.State != "delivered":
			t.Errorf("the kept webhook's delivery %+v", d)
		}
	}
	if n := len(gone.received()); n != 0 {
		t.Errorf("the removed webhook received %d alerts", n)
	}
}
