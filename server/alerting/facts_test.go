package alerting

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/store"
)

// factStore keeps discards (product → last discard) and a drift finding
// in memory, and raises conditions as the store does: a key already
// raised is not raised again while it lasts.
type factStore struct {
	lastDiscard map[string]time.Time
	drift       *store.DriftFound
	raised      map[string]bool
	since       time.Time
}

func (f *factStore) PositionSnapshot(context.Context) (positions.Snapshot, error) {
	return positions.Snapshot{}, nil
}

func (f *factStore) RaiseAlerts(_ context.Context, conds []store.AlertCondition) ([]store.AlertCondition, error) {
	var out []store.AlertCondition
	now := map[string]bool{}
	for _, c := range conds {
		now[c.Key] = true
		if !f.raised[c.Key] {
			out = append(out, c)
		}
	}
	f.raised = now
	return out, nil
}

func (f *factStore) DueDeliveries(context.Context, time.Time, int) ([]store.AlertDelivery, error) {
	return nil, nil
}

func (f *factStore) RecordAttempt(context.Context, int64, store.AlertAttempt) error { return nil }

func (f *factStore) AlertFacts(_ context.Context, since time.Time) (store.AlertFacts, error) {
	f.since = since
	var out store.AlertFacts
	for p, at := range f.lastDiscard {
		if !at.Before(since) {
			out.Discards = append(out.Discards, store.ProductDiscards{Product: p, Computers: 3, Reasons: []string{"discarded:no-seat"}})
		}
	}
	out.Drift = f.drift
	return out, nil
}

// Discards starting for a product are alerted once while they go on,
// end after the window without one (by the injected clock), and are
// alerted again when they start again; each drift finding is alerted
// once.
func TestDiscardsAndDriftAlertedOnce(t *testing.T) {
	t0 := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
	clk := clock.NewManual(t0)
	fs := &factStore{lastDiscard: map[string]time.Time{}}
	n := &Notifier{cfg: Config{Store: fs, Clock: clk, Zone: time.UTC, Windows: DefaultWindows, DiscardWindow: DefaultDiscardWindow}}
	ctx := context.Background()
	eval := func(want ...string) {
		t.Helper()
		raised, err := n.Evaluate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range raised {
			if c.Message == "" || c.Action == "" {
				t.Errorf("condition %s says nothing or no action: %+v", c.Key, c)
			}
			got = append(got, c.Key)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("at %s raised %v, want %v", clk.Now(), got, want)
		}
	}
	eval()
	fs.lastDiscard["monitor"] = t0
	eval("discards|monitor")
	if !fs.since.Equal(t0.Add(-24 * time.Hour)) {
		t.Fatalf("discards read since %s, want a day before %s", fs.since, t0)
	}
	clk.Advance(time.Minute)
	fs.lastDiscard["monitor"] = clk.Now()
	eval() // still discarding: the same condition
	clk.Advance(23 * time.Hour)
	eval() // the last discard 23 h ago: it lasts
	clk.Advance(2 * time.Hour)
	eval() // a day without a discard: it ended
	fs.lastDiscard["monitor"] = clk.Now()
	eval("discards|monitor")

	fs.drift = &store.DriftFound{Event: 41, At: clk.Now(), Drift: "license L-1 holds 5 seats; its signed file grants 3"}
	eval("drift|41")
	eval()
	fs.drift = nil // a later run found none
	eval()
	fs.drift = &store.DriftFound{Event: 57, At: clk.Now(), Drift: "counter"}
	eval("drift|57")
}

func TestFactConditionsSayWhatToDo(t *testing.T) {
	cs := FactConditions(store.AlertFacts{
		Discards: []store.ProductDiscards{
			{Product: "monitor", Computers: 2, Reasons: []string{"discarded:expired", "discarded:no-seat"}},
			{Product: "odd", Computers: 1, Reasons: []string{"discarded:something-new"}},
		},
		Drift: &store.DriftFound{Event: 7, At: time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC), Drift: "license L-1 holds 5 seats; its signed file grants 3"},
	})
	if len(cs) != 3 {
		t.Fatalf("conditions %+v", cs)
	}
	mon, odd, drift := cs[0], cs[1], cs[2]
	if mon.Key != "discards|monitor" || mon.Kind != KindDiscards || mon.Product != "monitor" ||
		!strings.Contains(mon.Message, "2 computers") || !strings.Contains(mon.Message, "discarded:no-seat") ||
		!strings.Contains(mon.Action, "tally-server license import") || !strings.Contains(mon.Action, "renewed license file") {
		t.Errorf("discards condition %+v", mon)
	}
	if odd.Key != "discards|odd" || !strings.Contains(odd.Action, "tally-server usage --product odd") {
		t.Errorf("discards for an unknown reason %+v", odd)
	}
	if drift.Key != "drift|7" || drift.Kind != KindDrift || !strings.Contains(drift.Message, "grants 3") || !strings.Contains(drift.Message, "2027-03-01T09:00:00Z") ||
		!strings.Contains(drift.Action, "check-db") {
		t.Errorf("drift condition %+v", drift)
	}
}
