package integration

import (
	"net/url"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

// Discards are aggregated into one audit event per hour, stamped with the
// time of the latest discard (not the hour's start, 03:00:00), so that
// 'tally-server events' lists them in order with the events around them.
func TestDiscardEventsCarryTheirRealTime(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2027, 3, 4, h, m, 0, 0, time.UTC) }
	clk := clock.NewManual(at(3, 5))
	srv := servertest.New(t, servertest.WithClock(clk))
	n := newNode(t, srv, srv.Secret)
	inv := []protocol.Plugin{plug("inventory", "7.2")}

	clk.Set(at(3, 10))
	if v := verdictOf(n.post(inv, nil).Verdicts, "inventory"); v != protocol.VerdictDiscardedNoSeat {
		t.Fatalf("no license: %s", v)
	}
	clk.Set(at(3, 20))
	if _, err := srv.Admin.CreateSecret(ctx(t), adminapiSecret("site-b")); err != nil {
		t.Fatal(err)
	}
	clk.Set(at(3, 40))
	n.post(inv, nil)

	ev, err := srv.Admin.Events(ctx(t), url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	var discard, secret int = -1, -1
	for i, e := range ev {
		if i > 0 && e.At.Before(ev[i-1].At) {
			t.Errorf("events out of order: %s at %s after %s at %s", e.Kind, e.At, ev[i-1].Kind, ev[i-1].At)
		}
		switch e.Kind {
		case store.EventDiscarded:
			discard = i
			if !e.At.Equal(at(3, 40)) || e.Count != 2 {
				t.Errorf("discard event at %s ×%d, want 03:40 (the latest discard) ×2", e.At.UTC(), e.Count)
			}
		case store.EventSecretCreated:
			secret = i
		}
	}
	if discard < 0 || secret < 0 || discard < secret {
		t.Fatalf("the discards (last at 03:40) are listed before the secret created at 03:20: %+v", ev)
	}
	// --since finds the hour's discards by their real time.
	ev, err = srv.Admin.Events(ctx(t), url.Values{"since": {at(3, 30).Format(time.RFC3339)}, "kind": {store.EventDiscarded}})
	if err != nil || len(ev) != 1 {
		t.Fatalf("events since 03:30: %v %v", ev, err)
	}
}
