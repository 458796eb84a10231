package license

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	_ "time/tzdata" // a server or issuer without the system's zone database still knows every zone a license file may name

	"github.com/tallyhq/tally/server/dates"
)

// Expiry states, as the API reports them in expiry_state.
const (
	StateValid    = "valid"
	StateExpiring = "expiring" // ends within the warning window
	StateExpired  = "expired"
)

// DefaultExpiryWarning is how long before an end date admins are warned:
// seed 004's most used "expiring within the next" period.
const DefaultExpiryWarning = 30 * 24 * time.Hour

// Expiry tells how near an end date is, counted in calendar days of the
// zone admins think in (the server's time zone), as seed 004's "days to
// expire" column does.
type Expiry struct {
	State string // StateValid, StateExpiring or StateExpired
	// DaysLeft is the number of calendar days from today to the end date:
	// 0 on its last day, negative once past. Meaningless without an end.
	DaysLeft int
	// Phrase is what an admin reads: "valid", "expires in 14 days",
	// "expires today", "expired 3 days ago".
	Phrase string
}

// ExpiryState says whether something ending at end (zero: never) is valid,
// expiring within window, or expired at now. Days are calendar days in
// now's location, so pass now in the server's time zone.
func ExpiryState(end, now time.Time, window time.Duration) Expiry {
	return state(end, now, window, "valid", "expires", "expired")
}

// UpgradeState is ExpiryState for the end of upgrade protection.
func UpgradeState(end, now time.Time, window time.Duration) Expiry {
	return state(end, now, window, "upgrades covered", "upgrade protection ends", "upgrade protection ended")
}

func state(end, now time.Time, window time.Duration, valid, ends, ended string) Expiry {
	if end.IsZero() {
		return Expiry{State: StateValid, Phrase: valid}
	}
	days := DaysBetween(now, end)
	switch {
	case !now.Before(end):
		return Expiry{State: StateExpired, DaysLeft: days, Phrase: ended + " " + daysAgo(-days)}
	case days <= windowDays(window):
		return Expiry{State: StateExpiring, DaysLeft: days, Phrase: ends + " " + inDays(days)}
	}
	return Expiry{State: StateValid, DaysLeft: days, Phrase: valid}
}

// windowDays is the warning window in whole days, rounded up: the last
// day itself is always within it.
func windowDays(w time.Duration) int {
	if w <= 0 {
		return 0
	}
	return int((w + 24*time.Hour - 1) / (24 * time.Hour))
}

// DaysBetween counts the calendar days from now's date to end's date, both
// taken in now's location (negative when end is on an earlier day).
func DaysBetween(now, end time.Time) int {
	loc := now.Location()
	y1, m1, d1 := now.Date()
	y2, m2, d2 := end.In(loc).Date()
	a := time.Date(y1, m1, d1, 0, 0, 0, 0, time.UTC)
	b := time.Date(y2, m2, d2, 0, 0, 0, 0, time.UTC)
	return int(b.Sub(a).Round(24*time.Hour) / (24 * time.Hour))
}

func inDays(n int) string {
	switch {
	case n <= 0:
		return "today"
	case n == 1:
		return "in 1 day"
	}
	return fmt.Sprintf("in %d days", n)
}

func daysAgo(n int) string {
	switch {
	case n <= 0:
		return "today"
	case n == 1:
		return "1 day ago"
	}
	return fmt.Sprintf("%d days ago", n)
}

// ParseEndDate reads an end date an admin typed: a day (2027-06-30) means
// the end of that day in loc; an RFC 3339 time means that instant.
func ParseEndDate(s string, loc *time.Location) (time.Time, error) {
	if d, err := time.Parse("2006-01-02", s); err == nil {
		return dates.EndOfDay(d.Year(), d.Month(), d.Day(), loc), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date like 2027-06-30 (the end of that day) or an RFC 3339 time like 2027-06-30T18:00:00+02:00", s)
}

// ErrUnknownZone says a time zone name is not in the zone database.
var ErrUnknownZone = errors.New("unknown time zone")

// LoadZone returns the named IANA time zone (Europe/Paris, UTC), or the
// host's local zone for "" (TZ honoured), named where the host says its
// name so that output can state it.
func LoadZone(name string, getenv func(string) string) (*time.Location, error) {
	if name == "" {
		return localZone(getenv), nil
	}
	if strings.EqualFold(name, "local") {
		return localZone(getenv), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%w %q: use an IANA zone name such as Europe/Paris, America/Los_Angeles or UTC", ErrUnknownZone, name)
	}
	return loc, nil
}

// localZone is time.Local under its IANA name when the host tells it (TZ,
// or the /etc/localtime link), so that "dates are in Europe/Paris" can be
// said instead of "Local".
func localZone(getenv func(string) string) *time.Location {
	if getenv == nil {
		getenv = os.Getenv
	}
	if tz := strings.TrimPrefix(getenv("TZ"), ":"); tz != "" {
		if loc, err := time.LoadLocation(tz); err == nil {
			return loc
		}
		return time.Local
	}
	if target, err := os.Readlink("/etc/localtime"); err == nil {
		if _, name, ok := strings.Cut(target, "zoneinfo/"); ok {
			if loc, err := time.LoadLocation(name); err == nil {
				return loc
			}
		}
	}
	return time.Local
}

// CheckDates applies the issuer's rules for the dates of a license about
// to be issued at now: an expiry already past is refused, as the server
// would refuse to import the file; an expiry within a day, or upgrade
// protection already over, is allowed with a warning.
func CheckDates(p *Payload, now time.Time) (warnings []string, err error) {
	loc := now.Location()
	if e := p.ExpiresAt(); !e.IsZero() {
		switch {
		case !now.Before(e):
			return nil, fmt.Errorf("--expires %s is in the past (now is %s in %s): a server would refuse the license; give a later date, or no --expires for a perpetual license",
				dates.Text(e, loc), now.Format("2006-01-02 15:04"), loc)
		case e.Sub(now) < 24*time.Hour:
			warnings = append(warnings, fmt.Sprintf("the license expires within a day, at %s %s (issued anyway)", e.In(loc).Format("2006-01-02 15:04:05"), loc))
		}
	}
	if u := p.UpgradeUntilAt(); !u.IsZero() && !now.Before(u) {
		warnings = append(warnings, fmt.Sprintf("upgrade protection ended on %s: plug-in builds released after it are not covered (issued anyway)", dates.Text(u, loc)))
	}
	return warnings, nil
}
