package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/dates"
)

func losAngeles(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// Upgrade protection "until 2027-06-30" typed in Los Angeles ends at
// 06:59:59 UTC on July 1: the why sentence names June 30, not the UTC day,
// and a build of July 1 is past it there.
func TestUpgradeProtectionInTheServersZone(t *testing.T) {
	la := losAngeles(t)
	e := newEngine(t).InZone(la)
	p, _ := e.cat.Product("inventory")
	until := dates.EndOfDay(2027, 6, 30, la).UTC() // as the store reads it back
	at := time.Date(2027, 7, 1, 9, 0, 0, 0, la)
	pool := func() Pool {
		return Pool{"inventory": {{ID: "aup", Product: "inventory", Seats: 5, Held: 1, UpgradeUntil: until}}}
	}
	post := func(build string) Decision {
		pl := protocol.Plugin{Name: "inventory", Version: "7.3", BuildDate: build}
		c := active(p, pl)
		c.Seats = map[string]string{"inventory": "aup"}
		return e.DecidePost(c, pool(), Post{Kind: PostInventory, Plugins: []protocol.Plugin{pl}}, at)
	}
	d := post("2027-07-02")
	if d.Verdict("inventory") != protocol.VerdictDiscardedUpgradeProtection || len(d.Effects) == 0 ||
		!strings.Contains(d.Effects[0].Reason, "(until 2027-06-30)") {
		t.Errorf("why sentence does not name the day in the server's zone: %+v", d.Effects)
	}
	if d := post("2027-07-01"); d.Verdict("inventory") != protocol.VerdictDiscardedUpgradeProtection {
		t.Errorf("a build of July 1 is covered by protection until June 30 in Los Angeles: %+v", d)
	}
	if d := post("2027-06-30"); d.Verdict("inventory") != protocol.VerdictLicensed {
		t.Errorf("a build of the last day of protection is refused: %+v", d)
	}
}

// The time a seat is expected back is written in the server's zone.
func TestExpectedBackInTheServersZone(t *testing.T) {
	la := losAngeles(t)
	e := newEngine(t).InZone(la)
	back := time.Date(2027, 7, 1, 3, 30, 0, 0, time.UTC) // June 30, 20:30 in Los Angeles
	taken := &License{ID: "L-c", Product: "cad", Seats: 1, Held: 1}
	d := e.DecideCheckout("cad", catalog.StatusActive, []*License{taken}, []time.Time{back}, back.Add(-time.Hour))
	if !strings.Contains(d.Message, "expected back by 2027-06-30 20:30:00 PDT") {
		t.Errorf("message: %q", d.Message)
	}
}
