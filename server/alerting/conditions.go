// Package alerting tells administrators through signed webhooks when a
// license, subscription or maintenance is about to expire or has expired,
// when a license falls short of its consumption, when its maintenance
// stops matching its entitlements, when the server starts discarding a
// product's data and when maintenance finds drift. Each condition is alerted once, while
// it lasts: the store records the conditions raised and queues their
// deliveries in one transaction, so none is lost or repeated across a
// restart, and a Notifier delivers them, retrying with back-off.
package alerting

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/store"
)

// Condition kinds.
const (
	KindExpiring    = "expiring"
	KindOverdue     = "overdue"
	KindShortfall   = "shortfall"
	KindMaintenance = "maintenance-mismatch"
	KindDiscards    = "discards"
	KindDrift       = "drift"
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
	Product  string `json:"product,omitempty"`
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

// DefaultDiscardWindow is how long a product's data discards are one
// condition: after that long without a discard it ends, and discards
// starting again are alerted again.
const DefaultDiscardWindow = 24 * time.Hour

// discardActions says what to do about each reason data is discarded.
var discardActions = map[string]string{
	"discarded:no-seat":            "import a license with more seats (tally-server license import FILE), or free seats of computers that no longer need the product (tally-server computers retire ID); see tally-server usage --product %s --holders",
	"discarded:expired":            "import the renewed license file (tally-server license import FILE); see tally-server usage --product %s",
	"discarded:upgrade-protection": "renew the license's upgrade protection (import its renewed file), or install a plug-in version it covers; see tally-server usage --product %s",
	"discarded:retired":            "set the computers Active if they are in use again (tally-server computers set-status ID Active); see tally-server events --product %s",
}

// FactConditions lists the conditions on the store's facts: each product
// whose data is being discarded, and the drift the latest maintenance run
// found (a new finding is a new condition).
func FactConditions(f store.AlertFacts) []Condition {
	var out []Condition
	for _, d := range f.Discards {
		var actions []string
		for _, r := range d.Reasons {
			if a, ok := discardActions[r]; ok {
				actions = append(actions, fmt.Sprintf(a, d.Product))
			}
		}
		if len(actions) == 0 {
			actions = append(actions, "see why: tally-server usage --product "+d.Product+" and tally-server events --product "+d.Product)
		}
		out = append(out, Condition{Key: KindDiscards + "|" + d.Product, Kind: KindDiscards, Product: d.Product,
			Message: fmt.Sprintf("the server is discarding product %s's data of %d computers (%s): it is not stored", d.Product, d.Computers, strings.Join(d.Reasons, ", ")),
			Action:  strings.Join(actions, "; ")})
	}
	if d := f.Drift; d != nil {
		out = append(out, Condition{Key: fmt.Sprintf("%s|%d", KindDrift, d.Event), Kind: KindDrift,
			Message: fmt.Sprintf("maintenance at %s found the stored seat counters or licenses drifted from the seats and signed files, and repaired them: %s", d.At.UTC().Format(time.RFC3339), d.Drift),
			Action:  "drift means the database was damaged or edited outside Tally: check the server's disk and who can write the data directory, restore from a backup if in doubt (tally-server check-db), and read the audit log around it (tally-server events --kind " + store.EventDriftRepaired + ")"})
	}
	return out
}
