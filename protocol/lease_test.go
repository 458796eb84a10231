package protocol

import (
	"math"
	"strings"
	"testing"
	"time"
)

// A lease's TTL goes on the wire as whole seconds within the limits, or is
// refused: it is never truncated or wrapped into another TTL.
func TestLeaseTTLSeconds(t *testing.T) {
	for _, c := range []struct {
		ttl  time.Duration
		want uint32
		ok   bool
	}{
		{0, 0, true},
		{time.Second, 1, true},
		{3 * time.Second, 3, true},
		{10 * time.Minute, 600, true},
		{MaxLeaseTTL, 604800, true},
		{MaxLeaseTTL + time.Second, 0, false},
		{500 * time.Millisecond, 0, false},     // was sent as 0: the server's default
		{1500 * time.Millisecond, 0, false},    // was truncated to 1s
		{-5 * time.Minute, 0, false},           // was wrapped to about 136 years
		{(1<<32 + 60) * time.Second, 0, false}, // was wrapped to a minute
		{math.MaxInt64, 0, false},
		{math.MinInt64, 0, false},
	} {
		got, err := LeaseTTLSeconds(c.ttl)
		if got != c.want || (err == nil) != c.ok {
			t.Errorf("%v: %d %v, want %d ok=%v", c.ttl, got, err, c.want, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "1s to 168h") {
			t.Errorf("%v: the refusal does not give the limits: %v", c.ttl, err)
		}
	}
}

// Whatever duration is asked for, an accepted one is carried exactly and
// within the limits the server validates.
func FuzzLeaseTTLSeconds(f *testing.F) {
	for _, d := range []int64{0, 1, int64(time.Second), int64(MaxLeaseTTL), int64(MaxLeaseTTL) + 1, -1, math.MaxInt64, math.MinInt64, (1<<32 + 60) * int64(time.Second)} {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, d int64) {
		ttl := time.Duration(d)
		secs, err := LeaseTTLSeconds(ttl)
		if err != nil {
			return
		}
		if time.Duration(secs)*time.Second != ttl {
			t.Fatalf("%v sent as %ds", ttl, secs)
		}
		if err := (&LeaseCheckoutRequest{Product: "cad", TTL: secs}).Validate(); err != nil {
			t.Fatalf("%v (%ds) accepted here, refused by the server: %v", ttl, secs, err)
		}
	})
}

// The server refuses a TTL longer than a week with a sentence.
func TestLeaseCheckoutValidateTTL(t *testing.T) {
	if err := (&LeaseCheckoutRequest{Product: "cad", TTL: 604800}).Validate(); err != nil {
		t.Errorf("a week refused: %v", err)
	}
	err := (&LeaseCheckoutRequest{Product: "cad", TTL: math.MaxUint32}).Validate()
	if err == nil || !strings.Contains(err.Error(), "at most 168h") {
		t.Errorf("TTL beyond a week: %v", err)
	}
}
