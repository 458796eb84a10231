package positions

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Date is a calendar day, counted in days from 1970-01-01. Purchases and
// license expiries are days, not instants: an expiry date is the last day
// covered, inclusive. The zero Date means "no date" (1970-01-01 itself
// cannot be recorded, which no purchase needs).
type Date int32

// NoDate is the zero Date: no date recorded.
const NoDate Date = 0

// DateOf returns the day of t in t's location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// ParseDate reads YYYY-MM-DD; the empty string is NoDate.
func ParseDate(s string) (Date, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return NoDate, nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return NoDate, fmt.Errorf("date %q: want YYYY-MM-DD (e.g. 2027-06-30)", s)
	}
	d := DateOf(t)
	if d <= 0 {
		return NoDate, fmt.Errorf("date %q: dates before 1970-01-02 are not accepted", s)
	}
	return d, nil
}

// IsZero reports whether no date is recorded.
func (d Date) IsZero() bool { return d == NoDate }

// Time is the start of the day in UTC.
func (d Date) Time() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// String is YYYY-MM-DD, or "" for NoDate.
func (d Date) String() string {
	if d == NoDate {
		return ""
	}
	return d.Time().Format("2006-01-02")
}

// AddDays returns the day n days later (earlier when n < 0).
func (d Date) AddDays(n int) Date { return d + Date(n) }

// MarshalJSON writes "YYYY-MM-DD", or null for NoDate.
func (d Date) MarshalJSON() ([]byte, error) {
	if d == NoDate {
		return []byte("null"), nil
	}
	return json.Marshal(d.String())
}

// UnmarshalJSON reads "YYYY-MM-DD" or null.
func (d *Date) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*d = NoDate
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a date is a string YYYY-MM-DD: %w", err)
	}
	v, err := ParseDate(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Money is an amount in cents of the one currency an administrator keeps
// accounts in: integer cents add up exactly where floats would not.
type Money int64

// MaxMoney bounds a price so that quantity × price cannot overflow.
const MaxMoney Money = 1e13 // 100 billion in cents

// ParseMoney reads an amount such as 120, 120.5 or 120.50; negative
// amounts and more than two decimals are refused.
func ParseMoney(s string) (Money, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" || (hasFrac && (frac == "" || len(frac) > 2)) {
		return 0, fmt.Errorf("amount %q: want a number with at most two decimals (e.g. 120.50)", s)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w < 0 || strings.HasPrefix(whole, "+") {
		return 0, fmt.Errorf("amount %q: want a number, not negative, with at most two decimals (e.g. 120.50)", s)
	}
	var f int64
	if hasFrac {
		if len(frac) == 1 {
			frac += "0"
		}
		f, err = strconv.ParseInt(frac, 10, 64)
		if err != nil || f < 0 || strings.HasPrefix(frac, "+") || strings.HasPrefix(frac, "-") {
			return 0, fmt.Errorf("amount %q: want a number with at most two decimals (e.g. 120.50)", s)
		}
	}
	if w > int64(MaxMoney)/100 {
		return 0, fmt.Errorf("amount %q is too large (at most %s)", s, MaxMoney)
	}
	return Money(w*100 + f), nil
}

// String is the amount with two decimals.
func (m Money) String() string {
	sign := ""
	if m < 0 {
		sign, m = "-", -m
	}
	return fmt.Sprintf("%s%d.%02d", sign, m/100, m%100)
}

// Times multiplies by a count.
func (m Money) Times(n int) Money { return m * Money(n) }
