package alerting

import (
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/server/positions"
)

func TestConditions(t *testing.T) {
	today, _ := positions.ParseDate("2027-03-01")
	s := positions.Snapshot{
		Licenses: []positions.License{
			{ID: "SW-1", Kind: positions.KindSoftware, Name: "soon", Duration: positions.Subscription, Expiry: today.AddDays(5)},
			{ID: "SW-2", Kind: positions.KindSoftware, Name: "later", Duration: positions.Subscription, Expiry: today.AddDays(20)},
			{ID: "SW-3", Kind: positions.KindSoftware, Name: "past", Duration: positions.Subscription, Expiry: today.AddDays(-1), Extra: 1, Consumed: 3},
		},
	}
	got := map[string]Condition{}
	for _, c := range Conditions(s, today, DefaultWindows) {
		if _, dup := got[c.Key]; dup {
			t.Fatalf("condition %s twice", c.Key)
		}
		got[c.Key] = c
	}
	want := []string{
		"expiring-7d|SW-1|0|license expiry|2027-03-06",
		"expiring-30d|SW-2|0|license expiry|2027-03-21",
		"overdue|SW-3|0|license expiry|2027-02-28",
		"shortfall|SW-3",
	}
	if len(got) != len(want) {
		t.Fatalf("conditions %v, want %v", got, want)
	}
	for _, k := range want {
		c, ok := got[k]
		if !ok || c.Message == "" || c.Action == "" {
			t.Errorf("condition %s: %+v", k, c)
		}
	}
	if !strings.Contains(got["shortfall|SW-3"].Message, "short of 2") {
		t.Errorf("shortfall message: %s", got["shortfall|SW-3"].Message)
	}
}

func TestSignAndBackoff(t *testing.T) {
	body := []byte(`{"key":"k"}`)
	sig := Sign("secret-secret-secret", body)
	if !strings.HasPrefix(sig, "sha256=") || !Verify("secret-secret-secret", body, sig) || Verify("other-secret-secret", body, sig) || Verify("secret-secret-secret", []byte(`{}`), sig) {
		t.Fatal("signature")
	}
	for n, want := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 3: 40 * time.Second, 20: time.Hour} {
		if got := Backoff(10*time.Second, n); got != want {
			t.Errorf("Backoff(10s, %d) = %v, want %v", n, got, want)
		}
	}
}
