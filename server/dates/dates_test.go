package dates

import (
	"testing"
	"time"
)

// An end of day shows as the day in the zone it is read in; any other end
// shows its time too; an instant carries its zone's name.
func TestText(t *testing.T) {
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	end := EndOfDay(2027, 6, 30, la).UTC() // as a store reads it back
	for _, c := range []struct {
		got, want string
	}{
		{Text(end, la), "2027-06-30"},
		{Text(end, time.UTC), "2027-07-01 06:59"},
		{Text(end.Truncate(time.Millisecond), la), "2027-06-30"},
		{Text(time.Date(2027, 6, 30, 18, 0, 0, 0, la), la), "2027-06-30 18:00"},
		{Text(end, nil), "2027-07-01 06:59"},
		{Instant(end, la), "2027-06-30 23:59:59 PDT"},
		{Instant(time.Date(2027, 1, 5, 8, 0, 0, 0, time.UTC), la), "2027-01-05 00:00:00 PST"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if s := StartOfDay(2027, 3, 14, la); !s.Equal(time.Date(2027, 3, 14, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("start of 2027-03-14 in Los Angeles: %v", s.UTC())
	}
}
