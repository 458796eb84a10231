package runner

import (
	"testing"
	"time"
)

// fixed returns a random source that always answers v.
func fixed(v float64) func() float64 { return func() float64 { return v } }

func TestBackoffDoublesUpToTheCap(t *testing.T) {
	b := backoff{max: 10 * time.Second, rnd: fixed(0.999999999)} // the top of the jitter range: the undrawn wait
	var got []time.Duration
	for range 7 {
		got = append(got, b.fail().Round(time.Millisecond))
	}
	want := []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second, 10 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("waits %v, want %v", got, want)
		}
	}
	b.reset()
	if w := b.fail().Round(time.Millisecond); w != time.Second {
		t.Fatalf("after a success the wait starts over at 1s, got %v", w)
	}
}

func TestBackoffJitterStaysWithinEightyToHundredPercentAndTheCap(t *testing.T) {
	for _, r := range []float64{0, 0.25, 0.5, 0.999999} {
		b := backoff{max: 5 * time.Second, rnd: fixed(r)}
		undrawn := time.Second
		for i := range 10 {
			w := b.fail()
			lo := time.Duration(float64(undrawn) * 0.8)
			if w < lo || w > undrawn || w > b.max {
				t.Fatalf("rnd %v, failure %d: wait %v outside [%v, %v] or over the cap", r, i+1, w, lo, undrawn)
			}
			undrawn = min(2*undrawn, b.max)
		}
	}
	// A real source spreads a fleet: not all agents wait the same.
	b1, b2 := backoff{max: time.Hour, rnd: fixed(0)}, backoff{max: time.Hour, rnd: fixed(0.9)}
	if b1.fail() == b2.fail() {
		t.Fatal("jitter has no effect")
	}
}

// A cap near the largest duration must not overflow into a negative wait
// (which would retry in a busy loop).
func TestBackoffNeverOverflows(t *testing.T) {
	b := backoff{max: time.Duration(1<<63 - 1), rnd: fixed(0.5)}
	prev := time.Duration(0)
	for i := range 200 {
		w := b.fail()
		if w <= 0 || w < prev/2 {
			t.Fatalf("failure %d: wait %v after %v", i+1, w, prev)
		}
		prev = w
	}
	small := backoff{max: 100 * time.Millisecond, rnd: fixed(0.999999)}
	if w := small.fail(); w > 100*time.Millisecond || w < 80*time.Millisecond {
		t.Fatalf("a cap below the first wait: %v", w)
	}
}

func TestJittered(t *testing.T) {
	cases := []struct {
		interval time.Duration
		jitter   float64
		rnd      float64
		want     time.Duration
	}{
		{time.Hour, 0.1, 0, time.Hour},
		{time.Hour, 0.1, 0.5, time.Hour + 3*time.Minute},
		{time.Hour, 0, 0.9, time.Hour},
		{time.Hour, -1, 0.9, time.Hour},                 // clamped to 0
		{time.Hour, 5, 0.5, time.Hour + 30*time.Minute}, // clamped to 1
	}
	for _, c := range cases {
		if got := jittered(c.interval, c.jitter, fixed(c.rnd)); got != c.want {
			t.Errorf("jittered(%v, %v) with rnd %v = %v, want %v", c.interval, c.jitter, c.rnd, got, c.want)
		}
	}
}

func TestReachedByEitherClock(t *testing.T) {
	now := time.Now()
	if reached(now, now.Add(time.Minute)) {
		t.Error("a deadline a minute ahead is reached")
	}
	if !reached(now, now) || !reached(now.Add(time.Nanosecond), now) {
		t.Error("a deadline at or before now is not reached")
	}
	// The machine slept for an hour: the monotonic reading of now is just
	// past the start, its wall reading an hour later.
	start := time.Now()
	deadline := start.Add(30 * time.Minute)
	woke := start.Add(time.Second)                               // monotonic: a second later
	woke = time.Unix(0, woke.Add(time.Hour).UnixNano()).Round(0) // wall clock only
	if !reached(woke, deadline) {
		t.Error("a deadline passed while the machine slept is not reached")
	}
}
