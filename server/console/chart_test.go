package console

import (
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
