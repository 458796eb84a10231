// Package dates writes the dates and times that admins read in the
// server's time zone. It is the one owner of that wording, and imports only
// the standard library's time so that the pure license engine can use it.
package dates

import "time"

// Text shows an end date in loc: the day alone when it ends with the day
// (the usual case: "until 2027-06-30" means through that day there), else
// the day and the time.
func Text(t time.Time, loc *time.Location) string {
	t = t.In(zone(loc))
	if h, m, s := t.Clock(); h == 23 && m == 59 && s == 59 {
		return t.Format("2006-01-02")
	}
	return t.Format("2006-01-02 15:04")
}

// Instant shows a moment in loc with the zone's name, so a sentence stored
// in the audit log still reads right if the server's zone changes later.
func Instant(t time.Time, loc *time.Location) string {
	return t.In(zone(loc)).Format("2006-01-02 15:04:05 MST")
}

// StartOfDay is the first instant of the calendar day y-m-d in loc: "since
// 2026-11-25" starts at midnight there.
func StartOfDay(y int, m time.Month, d int, loc *time.Location) time.Time {
	return time.Date(y, m, d, 0, 0, 0, 0, zone(loc))
}

// EndOfDay is the last instant of the calendar day y-m-d in loc: a license
// that "expires 2027-06-30" is valid through that whole day there.
func EndOfDay(y int, m time.Month, d int, loc *time.Location) time.Time {
	return time.Date(y, m, d+1, 0, 0, 0, 0, zone(loc)).Add(-time.Nanosecond)
}

func zone(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}
