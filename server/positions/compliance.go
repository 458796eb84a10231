package positions

import (
	"cmp"
	"fmt"
	"slices"
)

// Compliance statuses.
const (
	Compliant     = "compliant"
	AtRisk        = "at-risk"        // every entitlement is consumed: the next installation is one too many
	UnderLicensed = "under-licensed" // more consumed than purchased
)

// DefaultOverLicensedPercent: a license with more than this share of its
// entitlements unused is over-licensed.
const DefaultOverLicensedPercent = 5

// ComplianceRow is one license's position today.
type ComplianceRow struct {
	License string `json:"license"`
	Name    string `json:"license_name"`
	Kind    string `json:"license_kind"`
	// Type says what consumed counts: computers (device) or users (user).
	Type      string `json:"license_type"`
	Product   string `json:"product"`
	Publisher string `json:"publisher"`
	// Purchased is entitlements from purchases plus extra entitlements
	// (for a product license, its signed grant plus extra).
	Purchased int `json:"purchased"`
	Extra     int `json:"extra_entitlements"`
	// Consumed counts the computers where the license is installed, and
	// those allocated it where it is not yet (Reserved); for type user,
	// their distinct primary users (PerUser).
	Consumed int `json:"consumed"`
	Reserved int `json:"reserved"`
	Raw      int `json:"raw_consumption"`
	// Available is purchased − consumed: negative is a shortfall.
	Available      int  `json:"shortfall_availability"`
	HasMaintenance bool `json:"has_maintenance"`
	Maintenance    int  `json:"maintenance"`
	// MaintenanceMatches is false when maintenance purchases are linked
	// and today's coverage differs from the entitlements; Alert says so.
	MaintenanceMatches bool   `json:"maintenance_matches"`
	Alert              string `json:"alert,omitempty"`
	Status             string `json:"compliance_status"`
	TrueUp             bool   `json:"subject_to_true_up"`
	UnitPrice          Money  `json:"unit_price"`
	ShortfallCost      Money  `json:"shortfall_cost"`
	Unused             int    `json:"unused"`
	UnusedCost         Money  `json:"unused_cost"`
	OverLicensed       bool   `json:"over_licensed"`
}

// ComplianceTotals sums the rows.
type ComplianceTotals struct {
	Licenses      int   `json:"licenses"`
	Purchased     int   `json:"purchased"`
	Consumed      int   `json:"consumed"`
	Shortfall     int   `json:"shortfall"`
	ShortfallCost Money `json:"shortfall_cost"`
	Unused        int   `json:"unused"`
	UnusedCost    Money `json:"unused_cost"`
	UnderLicensed int   `json:"under_licensed"`
	AtRisk        int   `json:"at_risk"`
	OverLicensed  int   `json:"over_licensed"`
	Mismatches    int   `json:"maintenance_mismatches"`
}

// ComplianceReport is the compliance report with its totals.
type ComplianceReport struct {
	Today               Date             `json:"today"`
	OverLicensedPercent int              `json:"over_licensed_percent"`
	Rows                []ComplianceRow  `json:"licenses"`
	Totals              ComplianceTotals `json:"totals"`
}

// Compliance computes each license's position today. A license subject
// to true-up is never at-risk (it is trued up at the end of its period);
// overPercent is the unused share past which a license is over-licensed.
func Compliance(s Snapshot, today Date, overPercent int) ComplianceReport {
	links := s.byLicense()
	rep := ComplianceReport{Today: today, OverLicensedPercent: overPercent, Rows: make([]ComplianceRow, 0, len(s.Licenses))}
	for _, l := range s.Licenses {
		ls := links[l.ID]
		e := entitlements(l, ls, today)
		r := ComplianceRow{License: l.ID, Name: l.Name, Kind: l.Kind, Type: l.Type, Product: l.Product, Publisher: l.Publisher,
			Purchased: e.Purchased, Extra: l.Extra, Consumed: l.Consumed + l.Reserved, Reserved: l.Reserved, Raw: l.Raw, Available: e.Purchased - l.Consumed - l.Reserved,
			HasMaintenance: e.HasMaintenance, Maintenance: e.Maintenance, MaintenanceMatches: true, TrueUp: l.TrueUp,
			UnitPrice: unitPrice(l, ls)}
		if e.HadMaintenance && e.Maintenance != e.Purchased {
			r.MaintenanceMatches = false
			r.Alert = fmt.Sprintf("maintenance covers %d of %d entitlements: link a maintenance purchase for the rest, or split the license", e.Maintenance, e.Purchased)
			if e.Maintenance > e.Purchased {
				r.Alert = fmt.Sprintf("maintenance covers %d but the license has %d entitlements: move the extra maintenance to another license", e.Maintenance, e.Purchased)
			}
		}
		switch {
		case r.Available < 0:
			r.Status = UnderLicensed
			r.ShortfallCost = r.UnitPrice.Times(-r.Available)
		case r.Available == 0 && r.Consumed > 0 && !l.TrueUp:
			r.Status = AtRisk
		default:
			r.Status = Compliant
		}
		if r.Available > 0 {
			r.Unused = r.Available
			r.UnusedCost = r.UnitPrice.Times(r.Unused)
			r.OverLicensed = r.Unused*100 > overPercent*r.Purchased
		}
		rep.Rows = append(rep.Rows, r)
		t := &rep.Totals
		t.Licenses++
		t.Purchased += r.Purchased
		t.Consumed += r.Consumed
		t.ShortfallCost += r.ShortfallCost
		t.Unused += r.Unused
		t.UnusedCost += r.UnusedCost
		if r.Available < 0 {
			t.Shortfall += -r.Available
			t.UnderLicensed++
		}
		if r.Status == AtRisk {
			t.AtRisk++
		}
		if r.OverLicensed {
			t.OverLicensed++
		}
		if !r.MaintenanceMatches {
			t.Mismatches++
		}
	}
	slices.SortStableFunc(rep.Rows, func(a, b ComplianceRow) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name), cmp.Compare(a.License, b.License))
	})
	return rep
}
