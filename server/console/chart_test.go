package console

import (
	"context"
	"testing"
	"time"

	"github.com/tallyhq/tally/server/store"
)

// The chart walks back from the seats held now: a day's consumed seats
// were not held the day before, its freed seats were.
func TestSeatChartWalksBackFromNow(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	hours := []store.HourCount{
		{Kind: store.EventSeatConsumed, Hour: now.AddDate(0, 0, -2).Truncate(time.Hour), Count: 3},
		{Kind: store.EventSeatFreed, Hour: now.Add(-time.Hour), Count: 1},
	}
	ch := seatChart(hours, 2, now)
	got := []int{ch.Days[86].Seats, ch.Days[87].Seats, ch.Days[88].Seats, ch.Days[89].Seats}
	if want := []int{0, 3, 3, 2}; got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Fatalf("last four days %v, want %v", got, want)
	}
	if ch.Max != 3 || ch.Last != "2026-12-06" || ch.First != "2026-09-08" {
		t.Fatalf("chart %+v", ch)
	}
}

type hourStore struct {
	store.Store
	data  []store.HourCount
	calls int
}

func (s *hourStore) HourlyCounts(_ context.Context, _ []string, since time.Time) ([]store.HourCount, error) {
	s.calls++
	var out []store.HourCount
	for _, h := range s.data {
		if !h.Hour.Before(since.Truncate(time.Hour)) {
			out = append(out, h)
		}
	}
	return out, nil
}

// The dashboard reads the past hours once per hour and the current hour
// at every view, so a seat consumed a moment ago is on the chart.
func TestSeatHoursKeepsPastHoursUntilTheHourTurns(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 30, 0, 0, time.UTC)
	st := &hourStore{data: []store.HourCount{
		{Kind: store.EventSeatConsumed, Hour: now.Add(-2 * time.Hour).Truncate(time.Hour), Count: 2},
		{Kind: store.EventSeatConsumed, Hour: now.Truncate(time.Hour), Count: 1},
	}}
	c := &Console{cfg: Config{Store: st}}
	total := func(at time.Time) int64 {
		hs, err := c.seatHours(context.Background(), at)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, h := range hs {
			n += h.Count
		}
		return n
	}
	if n := total(now); n != 3 || st.calls != 2 {
		t.Fatalf("first view: %d seats, %d reads", n, st.calls)
	}
	st.data = append(st.data, store.HourCount{Kind: store.EventSeatConsumed, Hour: now.Truncate(time.Hour), Count: 4})
	if n := total(now.Add(10 * time.Minute)); n != 7 || st.calls != 3 {
		t.Fatalf("same hour: %d seats, %d reads (want the past from memory, the hour read again)", n, st.calls)
	}
	if n := total(now.Add(time.Hour)); n != 7 || st.calls != 5 {
		t.Fatalf("next hour: %d seats, %d reads", n, st.calls)
	}
}
