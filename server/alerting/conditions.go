// Package alerting tells administrators through signed webhooks when a
// license, subscription or maintenance is about to expire or has expired,
// when a license falls short of its consumption, and when its maintenance
// stops matching its entitlements. Each condition is alerted once, while
// it lasts: the store records the conditions raised and queues their
// deliveries in one transaction, so none is lost or repeated across a
// restart, and a Notifier delivers them, retrying with back-off.
package alerting

import (
	"fmt"
	"slices"

	"github.com/tallyhq/tally/server/positions"
)

// Condition kinds.
const (
	KindExpiring    = "expiring"
	KindOverdue     = "overdue"
	KindShortfall   = "shortfall"
	KindMaintenance = "maintenance-mismatch"
)

// DefaultWindows are the expiry windows alerted, in days.
var DefaultWindows = []int{30, 7}

// Condition is one thing an administrator should hear about once.
type Condition struct {
	// Key names the condition: while a condition with the same key
	// lasts, it is not alerted again.
	Key      string `json:"key"`
	Kind     string `json:"kind"`
	License  string `json:"license"`
	Name     string `json:"license_name"`
	Purchase int64  `json:"purchase,omitempty"`
	Message  string `json:"message"`
	// Action says what to do.
	Action string `json:"action"`
}

// Conditions lists what holds today: the rows of the expiry listing for
// each window (the smallest window a row falls in) and overdue, the
// licenses under-licensed, and the maintenance mismatches.
func Conditions(s positions.Snapshot, today positions.Date, windows []int) []Condition {
	var out []Condition
	seen := map[string]bool{}
	ws := slices.Clone(windows)
	slices.Sort(ws)
	for _, w := range ws {
		for _, r := range positions.Expiry(s, today, positions.Window{Days: w}) {
			id := rowID(r)
			if seen[id] {
				continue
			}
			seen[id] = true
			c := Condition{Key: fmt.Sprintf("%s-%dd|%s", KindExpiring, w, id), Kind: KindExpiring, License: r.License, Name: r.Name, Purchase: r.Purchase,
				Message: fmt.Sprintf("%s of license %s (%s) on %s, in %d days", r.Reason, r.License, r.Name, r.Expiry, r.DaysToExpire)}
			c.Action = "renew it: link a renewal purchase (tally-server purchase add … --link " + r.License + ":N), or mark the license planned non-renewal (tally-server swlicense set " + r.License + " --planned-non-renewal)"
			if r.Purchase != 0 {
				c.Message += fmt.Sprintf(" (purchase %d, %s)", r.Purchase, r.PO)
			}
			out = append(out, c)
		}
	}
	for _, r := range positions.Expiry(s, today, positions.Window{Overdue: true}) {
		c := Condition{Key: KindOverdue + "|" + rowID(r), Kind: KindOverdue, License: r.License, Name: r.Name, Purchase: r.Purchase,
			Message: fmt.Sprintf("%s of license %s (%s) was %s, %d days ago", r.Reason, r.License, r.Name, r.Expiry, -r.DaysToExpire),
			Action:  "renew it (link a renewal purchase), or uninstall the application from the computers that have it (tally-server applications show APP)"}
		out = append(out, c)
	}
	rep := positions.Compliance(s, today, positions.DefaultOverLicensedPercent)
	for _, r := range rep.Rows {
		if r.Status == positions.UnderLicensed {
			out = append(out, Condition{Key: KindShortfall + "|" + r.License, Kind: KindShortfall, License: r.License, Name: r.Name,
				Message: fmt.Sprintf("license %s (%s) is under-licensed: %d consumed, %d purchased, short of %d (%s)", r.License, r.Name, r.Consumed, r.Purchased, -r.Available, r.ShortfallCost),
				Action:  "buy and link entitlements (tally-server purchase add … --link " + r.License + ":N), or uninstall the application where it is not needed"})
		}
		if !r.MaintenanceMatches {
			out = append(out, Condition{Key: fmt.Sprintf("%s|%s|%d|%d", KindMaintenance, r.License, r.Maintenance, r.Purchased), Kind: KindMaintenance,
				License: r.License, Name: r.Name, Message: fmt.Sprintf("license %s (%s): %s", r.License, r.Name, r.Alert), Action: r.Alert})
		}
	}
	return out
}

// rowID names an expiry row: the license, the purchase (if any), the
// reason and the date, so that a renewal that moves the date is a new
// condition.
func rowID(r positions.ExpiryRow) string {
	return fmt.Sprintf("%s|%d|%s|%s", r.License, r.Purchase, r.Reason, r.Expiry)
}
