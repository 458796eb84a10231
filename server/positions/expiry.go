package positions

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Expiry reasons, the "Expiry reason" column of seed 004.
const (
	ReasonLicense      = "license expiry"
	ReasonSubscription = "subscription expiry"
	ReasonMaintenance  = "maintenance expiry"
)

// Window is the period of the expiry listing: the next Days days from
// today (today and the day Days later included), or, when Overdue, what
// has already expired.
type Window struct {
	Days    int
	Overdue bool
}

// MaxWindowDays bounds a window: ten years ahead is every date anyone
// records.
const MaxWindowDays = 3660

// ParseWindow reads "30d", "30" or "overdue".
func ParseWindow(s string) (Window, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "overdue" {
		return Window{Overdue: true}, nil
	}
	n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
	if err != nil || n < 0 || n > MaxWindowDays {
		return Window{}, fmt.Errorf("window %q: want a number of days from 0 to %d (7d, 30d, 90d) or overdue", s, MaxWindowDays)
	}
	return Window{Days: n}, nil
}

// String is "30d" or "overdue".
func (w Window) String() string {
	if w.Overdue {
		return "overdue"
	}
	return fmt.Sprintf("%dd", w.Days)
}

// contains reports whether an expiry date belongs to the window: future
// windows exclude what has already expired; overdue holds only that.
func (w Window) contains(expiry, today Date) bool {
	if w.Overdue {
		return expiry < today
	}
	return today <= expiry && expiry <= today.AddDays(w.Days)
}

// ExpiryRow is one row of the License and Maintenance Expiry listing:
// a license expiring by its own date (no purchase columns), or a license
// and one of its expiring subscription or maintenance purchases.
type ExpiryRow struct {
	License   string `json:"license"`
	Name      string `json:"license_name"`
	Kind      string `json:"license_kind"`
	Product   string `json:"product"`
	Publisher string `json:"publisher"`
	Duration  string `json:"duration"`
	Reason    string `json:"expiry_reason"`
	Expiry    Date   `json:"expiry_date"`
	// DaysToExpire is from today to the expiry date: negative when overdue.
	DaysToExpire int `json:"days_to_expire"`
	// Purchase columns, empty on a row of the license's own expiry.
	Purchase int64  `json:"purchase,omitempty"`
	PO       string `json:"purchase_order,omitempty"`
	Item     string `json:"item,omitempty"`
	Vendor   string `json:"vendor,omitempty"`
	// Current: the purchase has some effect on the license today.
	Current bool `json:"current"`
	// Quantity is the link's quantity on a purchase row, the license's
	// entitlements today on a row of its own expiry.
	Quantity          int   `json:"quantity"`
	PlannedNonRenewal bool  `json:"planned_non_renewal"`
	HasMaintenance    bool  `json:"has_maintenance"`
	Maintenance       int   `json:"maintenance"`
	EstimatedRenewal  Money `json:"estimated_renewal"`
}

// Expiry lists what expires in the window, as seed 004 describes it:
//   - one row per license whose own (non-perpetual) expiry date falls in
//     the window, with no purchase details;
//   - one row per license and linked subscription or maintenance purchase
//     expiring in the window: a purchase split over three licenses gives
//     three rows, a license with two expiring purchases two rows, and a
//     license expiring by its own date and by a purchase two rows;
//   - a purchase whose expiry no longer lowers the license's coverage (a
//     renewal was linked) gives no row;
//   - a license planned for non-renewal drops out of the future windows,
//     not out of the overdue one.
func Expiry(s Snapshot, today Date, w Window) []ExpiryRow {
	links := s.byLicense()
	var rows []ExpiryRow
	for _, l := range s.Licenses {
		if l.PlannedNonRenewal && !w.Overdue {
			continue
		}
		ls := links[l.ID]
		e := entitlements(l, ls, today)
		price := unitPrice(l, ls)
		base := ExpiryRow{License: l.ID, Name: l.Name, Kind: l.Kind, Product: l.Product, Publisher: l.Publisher, Duration: l.Duration,
			PlannedNonRenewal: l.PlannedNonRenewal, HasMaintenance: e.HasMaintenance, Maintenance: e.Maintenance}
		if l.Duration != Perpetual && !l.Expiry.IsZero() && w.contains(l.Expiry, today) {
			r := base
			r.Reason, r.Expiry, r.DaysToExpire = ReasonLicense, l.Expiry, int(l.Expiry-today)
			r.Quantity = e.Purchased
			r.Current = today <= l.Expiry
			r.EstimatedRenewal = price.Times(e.Purchased)
			rows = append(rows, r)
		}
		for _, k := range ls {
			p := k.purchase
			if p.Type == PurchaseLicense || p.Expiry.IsZero() || !w.contains(p.Expiry, today) {
				continue
			}
			if !lowersCoverage(ls, p, today) {
				continue
			}
			r := base
			r.Reason = ReasonMaintenance
			if p.Type == PurchaseSubscription {
				r.Reason = ReasonSubscription
			}
			r.Expiry, r.DaysToExpire = p.Expiry, int(p.Expiry-today)
			r.Purchase, r.PO, r.Item, r.Vendor = p.ID, p.PO, p.Item, p.Vendor
			r.Current = p.covers(today)
			r.Quantity = k.link.Quantity
			pp := p.UnitPrice
			if pp == 0 && p.Type == PurchaseSubscription {
				pp = price
			}
			r.EstimatedRenewal = pp.Times(k.link.Quantity)
			rows = append(rows, r)
		}
	}
	slices.SortStableFunc(rows, func(a, b ExpiryRow) int {
		return cmp.Or(cmp.Compare(a.Expiry, b.Expiry), cmp.Compare(a.License, b.License), cmp.Compare(a.Purchase, b.Purchase))
	})
	return rows
}

// lowersCoverage reports whether the license's coverage of p's type
// (subscription entitlements, or maintenance) is lower after p expires
// than on its last day. The day after is p's expiry + 1, or today when
// that has passed, so that a renewal linked late removes an overdue row.
func lowersCoverage(ls []linked, p *Purchase, today Date) bool {
	last := p.Expiry
	after := max(p.Expiry.AddDays(1), today)
	return coverage(ls, p.Type, after) < coverage(ls, p.Type, last)
}

func coverage(ls []linked, typ string, day Date) int {
	n := 0
	for _, k := range ls {
		if k.purchase.Type == typ && k.purchase.covers(day) {
			n += k.link.Quantity
		}
	}
	return n
}
