package ledger

import (
	"fmt"
	"strings"
	"time"

	"github.com/tallyhq/tally/server/license"
)

// Grant is what a license grants. A backend keeps a license's columns as
// a copy of its signed file, which a damaged or edited database may
// contradict: decisions take the grant from the verified file.
type Grant struct {
	Product, Kind    string
	Seats            int
	Expires, Upgrade time.Time // zero: none
	// Problem says how the row disagrees with its file, or that the file
	// does not verify (then the license grants no new seat).
	Problem  string
	Verified bool
}

// CheckGrant compares a license row's columns (row) with its signed file,
// verified by verify, and returns what the license grants.
func CheckGrant(id string, row Grant, file []byte, verify func([]byte) (license.Payload, error)) Grant {
	p, err := verify(file)
	if err != nil {
		row.Problem = fmt.Sprintf("license %s: its signed file does not verify (%v): it grants no new seat until it is imported again", id, err)
		row.Seats = 0
		return row
	}
	if p.ID != id {
		row.Problem = fmt.Sprintf("license %s: its row holds the signed file of license %s: it grants no new seat until it is imported again", id, p.ID)
		row.Seats = 0
		return row
	}
	g := Grant{Product: p.Product, Kind: p.Kind, Seats: int(p.Seats), Expires: p.ExpiresAt(), Upgrade: p.UpgradeUntilAt(), Verified: true}
	var diffs []string
	if row.Product != g.Product {
		diffs = append(diffs, fmt.Sprintf("product %q, the file %q", row.Product, g.Product))
	}
	if row.Kind != g.Kind {
		diffs = append(diffs, fmt.Sprintf("kind %q, the file %q", row.Kind, g.Kind))
	}
	if row.Seats != g.Seats {
		diffs = append(diffs, fmt.Sprintf("%d seats, the file %d", row.Seats, g.Seats))
	}
	if msOrZero(row.Expires) != msOrZero(g.Expires) || msOrZero(row.Upgrade) != msOrZero(g.Upgrade) {
		diffs = append(diffs, "other end dates than the file")
	}
	if len(diffs) > 0 {
		g.Problem = fmt.Sprintf("license %s: the database row says %s: the signed file counts", id, strings.Join(diffs, "; "))
	}
	return g
}

// msOrZero compares dates at the millisecond a backend keeps.
func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
