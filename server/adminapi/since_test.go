package adminapi_test

import (
	"context"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

func losAngeles(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// A day means its start in the server's zone; durations count back from
// now; a count of days too large for a date is refused, not wrapped.
func TestParseSince(t *testing.T) {
	la := losAngeles(t)
	now := time.Date(2027, 3, 15, 10, 0, 0, 0, la) // PDT since March 14
	for _, c := range []struct {
		in   string
		want time.Time
	}{
		{"2027-03-01", time.Date(2027, 3, 1, 0, 0, 0, 0, la)},
		{"2027-03-01T00:00:00Z", time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"90m", now.Add(-90 * time.Minute)},
		{"24h", now.Add(-24 * time.Hour)},
		{"2d", time.Date(2027, 3, 13, 10, 0, 0, 0, la)}, // calendar days: 10:00 PST, 49 hours back
		{"0d", now},
		{"36500d", time.Date(2027, 3, 15-36500, 10, 0, 0, 0, la)},
	} {
		got, err := adminapi.ParseSince(c.in, now)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("%s: %v %v, want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"yesterday", "-1d", "36501d", "9223372036854775807d", "106752d", "-5m", "2027-02-30", "99999999999h"} {
		if got, err := adminapi.ParseSince(bad, now); err == nil {
			t.Errorf("%s: accepted as %v", bad, got)
		} else if !strings.Contains(err.Error(), "2026-11-25") {
			t.Errorf("%s: the error does not say what to give: %v", bad, err)
		}
	}
}

// GET /api/v1/events?since= counts back from the server's clock, not the
// host's, and reads a day in the server's zone.
func TestEventsSinceUsesTheServersClockAndZone(t *testing.T) {
	la := losAngeles(t)
	// 2020-01-01 05:00 UTC is still December 31 in Los Angeles.
	clk := clock.NewManual(time.Date(2020, 1, 1, 5, 0, 0, 0, time.UTC))
	db, err := sqlstore.Open(filepath.Join(t.TempDir(), "a.db"), sqlstore.Options{NoSync: true, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cat, _ := catalog.Builtin()
	srv := httptest.NewServer(adminapi.New(adminapi.Config{Store: db, Token: "tok", Catalog: cat,
		Dates: adminapi.Dates{Zone: la, Clock: clk}}))
	t.Cleanup(srv.Close)
	c, err := adminapi.NewClient(srv.URL, "tok")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := db.AddStatus(ctx, "Loaned", ""); err != nil {
		t.Fatal(err)
	}
	clk.Advance(30 * time.Minute)
	for since, want := range map[string]int{"1h": 1, "10m": 0, "1d": 1, "2019-12-31": 1, "2020-01-01": 0} {
		evs, err := c.Events(ctx, url.Values{"since": {since}})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != want {
			t.Errorf("since %s: %d events, want %d", since, len(evs), want)
		}
	}
}
