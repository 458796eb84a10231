package license

import (
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/server/dates"
)

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := LoadZone(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// Every state an admin is told about, counted in calendar days of the
// server's zone: a license that ends in 14 days is not just "valid".
func TestExpiryStates(t *testing.T) {
	paris := zone(t, "Europe/Paris")
	now := time.Date(2027, 6, 16, 10, 0, 0, 0, paris)
	end := func(y int, m time.Month, d int) time.Time { return dates.EndOfDay(y, m, d, paris) }
	for _, c := range []struct {
		name  string
		end   time.Time
		state string
		days  int
		words string
	}{
		{"perpetual", time.Time{}, StateValid, 0, "valid"},
		{"far away", end(2027, 12, 31), StateValid, 198, "valid"},
		{"window edge", end(2027, 7, 16), StateExpiring, 30, "expires in 30 days"},
		{"just past the window", end(2027, 7, 17), StateValid, 31, "valid"},
		{"in 14 days", end(2027, 6, 30), StateExpiring, 14, "expires in 14 days"},
		{"tomorrow", end(2027, 6, 17), StateExpiring, 1, "expires in 1 day"},
		{"today", end(2027, 6, 16), StateExpiring, 0, "expires today"},
		{"earlier today", time.Date(2027, 6, 16, 9, 0, 0, 0, paris), StateExpired, 0, "expired today"},
		{"yesterday", end(2027, 6, 15), StateExpired, -1, "expired 1 day ago"},
		{"3 days ago", end(2027, 6, 13), StateExpired, -3, "expired 3 days ago"},
	} {
		e := ExpiryState(c.end, now, DefaultExpiryWarning)
		if e.State != c.state || e.DaysLeft != c.days || e.Phrase != c.words {
			t.Errorf("%s: %+v, want %s, %d days, %q", c.name, e, c.state, c.days, c.words)
		}
	}
	if e := UpgradeState(end(2027, 6, 26), now, DefaultExpiryWarning); e.Phrase != "upgrade protection ends in 10 days" || e.State != StateExpiring {
		t.Errorf("upgrade: %+v", e)
	}
	// The window is the admin's: 7 days ahead, 14 days away is still valid.
	if e := ExpiryState(end(2027, 6, 30), now, 7*24*time.Hour); e.State != StateValid {
		t.Errorf("7-day window: %+v", e)
	}
}

// "2027-06-30" is the end of that day where the dates are read, not
// midnight UTC: valid through the whole day in Los Angeles and in Tokyo.
func TestEndOfDayInTheServersZone(t *testing.T) {
	for _, c := range []struct {
		zone string
		want time.Time // the last instant, in UTC
	}{
		{"America/Los_Angeles", time.Date(2027, 7, 1, 6, 59, 59, 999999999, time.UTC)}, // PDT, UTC-7
		{"Asia/Tokyo", time.Date(2027, 6, 30, 14, 59, 59, 999999999, time.UTC)},        // JST, UTC+9
		{"UTC", time.Date(2027, 6, 30, 23, 59, 59, 999999999, time.UTC)},
	} {
		loc := zone(t, c.zone)
		got, err := ParseEndDate("2027-06-30", loc)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("%s: %v %v, want %v", c.zone, got.UTC(), err, c.want)
		}
		// Valid during the last minute of the day there, expired a
		// moment after it.
		lastMinute := time.Date(2027, 6, 30, 23, 59, 30, 0, loc)
		if e := ExpiryState(got, lastMinute, DefaultExpiryWarning); e.Phrase != "expires today" {
			t.Errorf("%s: at 23:59:30: %+v", c.zone, e)
		}
		if e := ExpiryState(got, lastMinute.Add(time.Minute), DefaultExpiryWarning); e.Phrase != "expired 1 day ago" {
			t.Errorf("%s: at 00:00:30 the next day: %+v", c.zone, e)
		}
		// A license file carries whole seconds: its end is still the end of the day.
		p := Payload{Expires: got.Unix()}
		if !p.ExpiresAt().Equal(c.want) {
			t.Errorf("%s: payload expiry %v, want %v", c.zone, p.ExpiresAt(), c.want)
		}
	}
	if _, err := ParseEndDate("30/06/2027", time.UTC); err == nil || !strings.Contains(err.Error(), "2027-06-30") {
		t.Errorf("a bad date: %v", err)
	}
	if _, err := LoadZone("Mars/Olympus_Mons", nil); err == nil || !strings.Contains(err.Error(), "Europe/Paris") {
		t.Errorf("unknown zone: %v", err)
	}
	if loc := zone(t, ""); loc == nil {
		t.Error("no local zone")
	}
	if loc, err := LoadZone("", func(k string) string { return map[string]string{"TZ": "Asia/Tokyo"}[k] }); err != nil || loc.String() != "Asia/Tokyo" {
		t.Errorf("TZ not honoured: %v %v", loc, err)
	}
}

// A license issued in a zone shows its dates there, and says which zone.
func TestIssuedFileStatesItsZone(t *testing.T) {
	key, trusted := issuer(t)
	la := zone(t, "America/Los_Angeles")
	exp, _ := ParseEndDate("2027-06-30", la)
	p := sample()
	p.Expires, p.UpgradeUntil, p.Zone = exp.Unix(), 0, la.String()
	file, err := Issue(key, p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(file), "expires 2027-06-30, upgrades covered without limit (dates in America/Los_Angeles)") {
		t.Fatalf("file does not show the day in its zone:\n%s", file)
	}
	f, err := Parse(file, trusted)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.CheckImport(time.Date(2027, 6, 30, 23, 0, 0, 0, la)); err != nil {
		t.Fatalf("refused during its last day: %v", err)
	}
	if err := f.CheckImport(time.Date(2027, 7, 1, 0, 0, 1, 0, la)); err == nil {
		t.Fatal("imported after its last day")
	}
}

// Issuing refuses an expiry already past and warns about one within a day.
func TestCheckDates(t *testing.T) {
	tokyo := zone(t, "Asia/Tokyo")
	now := time.Date(2027, 6, 30, 12, 0, 0, 0, tokyo)
	at := func(s string) *Payload {
		e, err := ParseEndDate(s, tokyo)
		if err != nil {
			t.Fatal(err)
		}
		return &Payload{Expires: e.Unix()}
	}
	if _, err := CheckDates(at("2027-06-29"), now); err == nil || !strings.Contains(err.Error(), "in the past") {
		t.Errorf("past expiry: %v", err)
	}
	if w, err := CheckDates(at("2027-06-30"), now); err != nil || len(w) != 1 || !strings.Contains(w[0], "within a day") {
		t.Errorf("expiry today: %v %v", w, err)
	}
	if w, err := CheckDates(at("2027-07-31"), now); err != nil || len(w) != 0 {
		t.Errorf("expiry next month: %v %v", w, err)
	}
}
