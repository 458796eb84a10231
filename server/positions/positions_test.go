package positions

import (
	"fmt"
	"go/build"
	"slices"
	"strings"
	"testing"
)

func day(t *testing.T, s string) Date {
	t.Helper()
	d, err := ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// seed004 is the fixed data set of the report tests, "today" 2027-03-01.
// Each license stands for one sentence of seed 004 (the comment quotes it).
func seed004(t *testing.T) Snapshot {
	t.Helper()
	sw := func(id string, dur, expiry string) License {
		l := License{ID: id, Kind: KindSoftware, Name: "License " + id, Product: "App " + id, Publisher: "Pub", Type: TypeDevice,
			Duration: dur, Status: "active", UnitPrice: 10000}
		if expiry != "" {
			l.Expiry = day(t, expiry)
		}
		return l
	}
	var s Snapshot
	var nextID int64
	buy := func(typ string, qty int, eff, exp string, split map[string]int) int64 {
		nextID++
		p := Purchase{ID: nextID, PO: fmt.Sprintf("PO-%d", nextID), Item: "item", Vendor: "Vendor", Date: day(t, "2026-01-01"),
			Quantity: qty, UnitPrice: 5000, Type: typ}
		if eff != "" {
			p.Effective = day(t, eff)
		}
		if exp != "" {
			p.Expiry = day(t, exp)
		}
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
		s.Purchases = append(s.Purchases, p)
		var links []Link
		for lic, q := range split {
			links = append(links, Link{Purchase: p.ID, License: lic, Quantity: q})
		}
		if err := CheckSplit(p, links); err != nil {
			t.Fatal(err)
		}
		s.Links = append(s.Links, links...)
		return p.ID
	}
	// "Maintenance coverage of a license is expiring in the same period."
	s.Licenses = append(s.Licenses, sw("L01", Perpetual, ""))
	buy(PurchaseLicense, 10, "", "", map[string]int{"L01": 10})
	buy(PurchaseMaintenance, 10, "2026-03-21", "2027-03-20", map[string]int{"L01": 10}) // 2
	// "If a purchase has been split across multiple licenses ... a separate
	// line for each of the affected licenses."
	for _, id := range []string{"L02", "L03", "L04"} {
		s.Licenses = append(s.Licenses, sw(id, Perpetual, ""))
	}
	buy(PurchaseLicense, 30, "", "", map[string]int{"L02": 10, "L03": 10, "L04": 10})
	buy(PurchaseMaintenance, 30, "2026-03-16", "2027-03-15", map[string]int{"L02": 10, "L03": 10, "L04": 10}) // 4
	// "If a license has been linked to multiple purchases, and several of
	// those are expiring in the same time-frame, ... a separate line for
	// each of the expiring purchases."
	s.Licenses = append(s.Licenses, sw("L05", Subscription, "2028-01-01"))
	buy(PurchaseSubscription, 5, "2026-03-11", "2027-03-10", map[string]int{"L05": 5}) // 5
	buy(PurchaseSubscription, 5, "2026-03-26", "2027-03-25", map[string]int{"L05": 5}) // 6
	// "if ... the expiry dates in both places fall within the same period,
	// there will be two rows displayed in this listing: one with purchase
	// details, and one without."
	s.Licenses = append(s.Licenses, sw("L06", Subscription, "2027-03-12"))
	buy(PurchaseSubscription, 4, "2026-03-13", "2027-03-12", map[string]int{"L06": 4}) // 7
	// "Planned non-renewal ... The license/purchase pair disappears from
	// this License and Maintenance Expiry listing immediately"
	l := sw("L07", Perpetual, "")
	l.PlannedNonRenewal = true
	s.Licenses = append(s.Licenses, l)
	buy(PurchaseMaintenance, 3, "2026-03-06", "2027-03-05", map[string]int{"L07": 3}) // 8
	// ... but it stays under Overdue once expired.
	l = sw("L08", Perpetual, "")
	l.PlannedNonRenewal = true
	s.Licenses = append(s.Licenses, l)
	buy(PurchaseMaintenance, 3, "2026-02-21", "2027-02-20", map[string]int{"L08": 3}) // 9
	// "The Overdue choice shows cases that have already expired."
	s.Licenses = append(s.Licenses, sw("L09", Perpetual, ""))
	buy(PurchaseMaintenance, 2, "2026-02-28", "2027-02-27", map[string]int{"L09": 2}) // 10
	// "Has maintenance ... today falls between the Effective date and the
	// Expiry date (inclusive)": starting today, ending today, starting
	// tomorrow, ended yesterday.
	for _, c := range []struct{ id, eff, exp string }{
		{"L10", "2027-03-01", "2027-06-01"}, {"L11", "2026-03-02", "2027-03-01"},
		{"L12", "2027-03-02", "2028-03-01"}, {"L13", "2026-03-01", "2027-02-28"},
	} {
		s.Licenses = append(s.Licenses, sw(c.id, Perpetual, ""))
		buy(PurchaseLicense, 1, "", "", map[string]int{c.id: 1})
		buy(PurchaseMaintenance, 1, c.eff, c.exp, map[string]int{c.id: 1})
	}
	// "If the license entitlements are being drawn from purchases of
	// purchase type Software subscription, and the Expiry date on the
	// purchase(s) has passed, then the entitlements from those purchases
	// fall to zero."
	l = sw("L14", Subscription, "2030-01-01")
	l.Consumed, l.Raw = 3, 4
	s.Licenses = append(s.Licenses, l)
	buy(PurchaseSubscription, 5, "2026-03-01", "2027-02-28", map[string]int{"L14": 5})
	// "Subject to true-up: ... cannot be displayed as at risk".
	for _, id := range []string{"L15", "L16"} {
		l = sw(id, Perpetual, "")
		l.Consumed, l.TrueUp = 5, id == "L16"
		s.Licenses = append(s.Licenses, l)
		buy(PurchaseLicense, 5, "", "", map[string]int{id: 5})
	}
	return s
}

type rowKey struct {
	license  string
	purchase int64
	reason   string
	days     int
}

func keys(rows []ExpiryRow) []rowKey {
	var out []rowKey
	for _, r := range rows {
		out = append(out, rowKey{r.License, r.Purchase, r.Reason, r.DaysToExpire})
	}
	return out
}

func TestExpiryWithin30Days(t *testing.T) {
	s := seed004(t)
	today := day(t, "2027-03-01")
	got := keys(Expiry(s, today, Window{Days: 30}))
	want := []rowKey{
		{"L11", 14, ReasonMaintenance, 0},  // the last day covered is today: still within the window
		{"L02", 4, ReasonMaintenance, 14},  // one split purchase ...
		{"L03", 4, ReasonMaintenance, 14},  // ... a row for each ...
		{"L04", 4, ReasonMaintenance, 14},  // ... of its three licenses
		{"L05", 5, ReasonSubscription, 9},  // two expiring purchases of one license ...
		{"L06", 0, ReasonLicense, 11},      // the license's own expiry: no purchase ...
		{"L06", 7, ReasonSubscription, 11}, // ... and its purchase: two rows
		{"L01", 2, ReasonMaintenance, 19},  //
		{"L05", 6, ReasonSubscription, 24}, // ... two rows
	}
	slicesSortKeys(want)
	slicesSortKeys(got)
	if !slices.Equal(got, want) {
		t.Fatalf("30-day listing:\n got %v\nwant %v", got, want)
	}
	// No row of the license's own expiry carries purchase details.
	for _, r := range Expiry(s, today, Window{Days: 30}) {
		if r.Reason == ReasonLicense && (r.Purchase != 0 || r.PO != "" || r.Vendor != "") {
			t.Errorf("license-expiry row has purchase details: %+v", r)
		}
		if r.Reason != ReasonLicense && (r.PO == "" || r.Vendor != "Vendor") {
			t.Errorf("purchase row without purchase order and vendor: %+v", r)
		}
	}
}

func slicesSortKeys(k []rowKey) {
	slices.SortFunc(k, func(a, b rowKey) int {
		if c := strings.Compare(a.license, b.license); c != 0 {
			return c
		}
		return int(a.purchase - b.purchase)
	})
}

func TestExpiryWindowsAndOverdue(t *testing.T) {
	s := seed004(t)
	today := day(t, "2027-03-01")
	// "Most time periods are measured forward from today (things that
	// have already expired are not included in these cases)."
	w7 := keys(Expiry(s, today, Window{Days: 7}))
	want7 := []rowKey{{"L11", 14, ReasonMaintenance, 0}}
	if !slices.Equal(w7, want7) {
		t.Fatalf("7-day listing: got %v, want %v (L07 is planned non-renewal)", w7, want7)
	}
	// Overdue: negative days; the planned non-renewal license L08 stays.
	od := keys(Expiry(s, today, Window{Overdue: true}))
	wantOD := []rowKey{
		{"L08", 9, ReasonMaintenance, -9},
		{"L09", 10, ReasonMaintenance, -2},
		{"L13", 18, ReasonMaintenance, -1},
		{"L14", 19, ReasonSubscription, -1},
	}
	slicesSortKeys(od)
	if !slices.Equal(od, wantOD) {
		t.Fatalf("overdue listing:\n got %v\nwant %v", od, wantOD)
	}
	for _, r := range Expiry(s, today, Window{Overdue: true}) {
		if r.Current {
			t.Errorf("overdue row shown current: %+v", r)
		}
	}
	// Planned non-renewal drops L07 from the future windows at once; once
	// unset, its row is back.
	for i := range s.Licenses {
		if s.Licenses[i].ID == "L07" {
			s.Licenses[i].PlannedNonRenewal = false
		}
	}
	if got := keys(Expiry(s, today, Window{Days: 7})); !slices.Contains(got, rowKey{"L07", 8, ReasonMaintenance, 4}) {
		t.Fatalf("L07 without planned non-renewal: got %v", got)
	}
}

func TestExpiryRenewalRemovesRow(t *testing.T) {
	s := seed004(t)
	today := day(t, "2027-03-01")
	has := func(lic string, p int64, w Window) bool {
		for _, r := range Expiry(s, today, w) {
			if r.License == lic && r.Purchase == p {
				return true
			}
		}
		return false
	}
	if !has("L01", 2, Window{Days: 30}) || !has("L09", 10, Window{Overdue: true}) {
		t.Fatal("rows to renew are missing")
	}
	// "To renew the maintenance. Simply create the purchase record for the
	// renewal, and link to the license. The license/purchase pair
	// disappears."
	s.Purchases = append(s.Purchases,
		Purchase{ID: 100, PO: "PO-R1", Item: "renewal", Quantity: 10, Type: PurchaseMaintenance, Effective: day(t, "2027-03-21"), Expiry: day(t, "2028-03-20")},
		// Late: L09's maintenance ended two days ago.
		Purchase{ID: 101, PO: "PO-R2", Item: "renewal", Quantity: 2, Type: PurchaseMaintenance, Effective: day(t, "2027-03-01"), Expiry: day(t, "2028-02-27")})
	s.Links = append(s.Links, Link{Purchase: 100, License: "L01", Quantity: 10}, Link{Purchase: 101, License: "L09", Quantity: 2})
	if has("L01", 2, Window{Days: 30}) {
		t.Error("L01's renewed maintenance is still listed")
	}
	if has("L09", 10, Window{Overdue: true}) {
		t.Error("L09's maintenance renewed late is still overdue")
	}
	// Renewing part of a split maintenance (10 of L02's, none of L03's)
	// leaves the rows whose coverage still falls.
	s.Purchases = append(s.Purchases, Purchase{ID: 102, PO: "PO-R3", Item: "renewal", Quantity: 10, Type: PurchaseMaintenance, Effective: day(t, "2027-03-16"), Expiry: day(t, "2028-03-15")})
	s.Links = append(s.Links, Link{Purchase: 102, License: "L02", Quantity: 10})
	if has("L02", 4, Window{Days: 30}) || !has("L03", 4, Window{Days: 30}) || !has("L04", 4, Window{Days: 30}) {
		t.Error("renewing L02 only should drop L02's row and keep L03's and L04's")
	}
}

func TestHasMaintenanceInclusiveDates(t *testing.T) {
	s := seed004(t)
	rep := Compliance(s, day(t, "2027-03-01"), DefaultOverLicensedPercent)
	want := map[string]bool{"L10": true, "L11": true, "L12": false, "L13": false}
	for _, r := range rep.Rows {
		if w, ok := want[r.License]; ok {
			if r.HasMaintenance != w {
				t.Errorf("%s has maintenance = %v, want %v", r.License, r.HasMaintenance, w)
			}
			if w && (r.Maintenance != 1 || !r.MaintenanceMatches) {
				t.Errorf("%s: maintenance %d matches %v, want 1 and true", r.License, r.Maintenance, r.MaintenanceMatches)
			}
			if !w && (r.MaintenanceMatches || r.Alert == "") {
				t.Errorf("%s: no maintenance today for 1 entitlement, want a mismatch alert: %+v", r.License, r)
			}
		}
	}
}

func TestSplitMaintenanceCountedPerLink(t *testing.T) {
	s := seed004(t)
	rep := Compliance(s, day(t, "2027-03-01"), DefaultOverLicensedPercent)
	for _, r := range rep.Rows {
		switch r.License {
		case "L02", "L03", "L04":
			if r.Maintenance != 10 || r.Purchased != 10 || !r.MaintenanceMatches {
				t.Errorf("%s: maintenance %d of %d entitlements, want 10 of 10 (the link's share of 30)", r.License, r.Maintenance, r.Purchased)
			}
		}
	}
	// One license's share going away leaves the others' counts alone.
	s.Links = slices.DeleteFunc(s.Links, func(l Link) bool { return l.Purchase == 4 && l.License == "L03" })
	rep = Compliance(s, day(t, "2027-03-01"), DefaultOverLicensedPercent)
	for _, r := range rep.Rows {
		if r.License == "L03" && (r.Maintenance != 0 || r.HasMaintenance) {
			t.Errorf("L03 without its link: maintenance %d, has maintenance %v", r.Maintenance, r.HasMaintenance)
		}
		if r.License == "L04" && r.Maintenance != 10 {
			t.Errorf("L04: maintenance %d, want 10", r.Maintenance)
		}
	}
}

func TestSubscriptionFallsToZeroAfterExpiry(t *testing.T) {
	s := seed004(t)
	row := func(today string) ComplianceRow {
		for _, r := range Compliance(s, day(t, today), DefaultOverLicensedPercent).Rows {
			if r.License == "L14" {
				return r
			}
		}
		t.Fatal("no L14")
		return ComplianceRow{}
	}
	// On its expiry date (inclusive) the subscription still grants 5.
	if r := row("2027-02-28"); r.Purchased != 5 || r.Available != 2 || r.Status != Compliant {
		t.Fatalf("on the last day: %+v", r)
	}
	// The day after, its entitlements fall to zero: 3 consumed, none
	// purchased, under-licensed by 3 at 100.00 each.
	r := row("2027-03-01")
	if r.Purchased != 0 || r.Available != -3 || r.Status != UnderLicensed || r.ShortfallCost != 30000 || r.Raw != 4 {
		t.Fatalf("after expiry: %+v", r)
	}
}

func TestComplianceStatusesAndTotals(t *testing.T) {
	s := seed004(t)
	rep := Compliance(s, day(t, "2027-03-01"), DefaultOverLicensedPercent)
	by := map[string]ComplianceRow{}
	for _, r := range rep.Rows {
		by[r.License] = r
	}
	if by["L15"].Status != AtRisk {
		t.Errorf("L15 (5 of 5 consumed): %s, want at-risk", by["L15"].Status)
	}
	if by["L16"].Status != Compliant {
		t.Errorf("L16 (5 of 5 consumed, true-up): %s, want compliant", by["L16"].Status)
	}
	// L01: 10 purchased, none consumed: over-licensed, 10 × 100.00 unused.
	if r := by["L01"]; !r.OverLicensed || r.Unused != 10 || r.UnusedCost != 100000 {
		t.Errorf("L01: %+v", r)
	}
	if rep.Totals.Licenses != len(s.Licenses) || rep.Totals.UnderLicensed != 1 || rep.Totals.Shortfall != 3 || rep.Totals.ShortfallCost != 30000 || rep.Totals.AtRisk != 1 {
		t.Errorf("totals: %+v", rep.Totals)
	}
	// Over-licensed is a share: 1 unused of 20 is 5 %, not more than 5 %.
	s2 := Snapshot{Licenses: []License{{ID: "X", Kind: KindSoftware, Extra: 20, Consumed: 19}}}
	if r := Compliance(s2, day(t, "2027-03-01"), 5).Rows[0]; r.OverLicensed {
		t.Errorf("1 of 20 unused is not over 5 %%: %+v", r)
	}
	if r := Compliance(s2, day(t, "2027-03-01"), 4).Rows[0]; !r.OverLicensed {
		t.Errorf("1 of 20 unused is over 4 %%: %+v", r)
	}
}

func TestProductLicenses(t *testing.T) {
	// Tally's own licenses: the signed grant counts; purchases add
	// maintenance, not entitlements.
	s := Snapshot{
		Licenses:  []License{{ID: "LIC-1", Kind: KindProduct, Name: "inventory", Duration: TimeLimited, Expiry: day(t, "2027-03-10"), Granted: 10, Consumed: 4}},
		Purchases: []Purchase{{ID: 1, PO: "PO", Item: "x", Quantity: 10, Type: PurchaseLicense}, {ID: 2, PO: "PO", Item: "m", Quantity: 10, Type: PurchaseMaintenance, Effective: day(t, "2026-03-10"), Expiry: day(t, "2027-03-09")}},
		Links:     []Link{{1, "LIC-1", 10}, {2, "LIC-1", 10}},
	}
	r := Compliance(s, day(t, "2027-03-01"), 5).Rows[0]
	if r.Purchased != 10 || r.Maintenance != 10 || r.Available != 6 {
		t.Fatalf("product license: %+v", r)
	}
	got := keys(Expiry(s, day(t, "2027-03-01"), Window{Days: 30}))
	want := []rowKey{{"LIC-1", 2, ReasonMaintenance, 8}, {"LIC-1", 0, ReasonLicense, 9}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestBadInput(t *testing.T) {
	ok := Purchase{PO: "PO-1", Item: "x", Quantity: 5, Type: PurchaseMaintenance, Effective: 20000, Expiry: 20100}
	for name, mut := range map[string]func(*Purchase){
		"negative quantity":       func(p *Purchase) { p.Quantity = -5 },
		"zero quantity":           func(p *Purchase) { p.Quantity = 0 },
		"expiry before effective": func(p *Purchase) { p.Expiry = p.Effective - 1 },
		"unknown type":            func(p *Purchase) { p.Type = "hardware" },
		"no PO":                   func(p *Purchase) { p.PO = " " },
		"negative price":          func(p *Purchase) { p.UnitPrice = -1 },
		"subscription no expiry":  func(p *Purchase) { p.Type = PurchaseSubscription; p.Expiry = 0 },
	} {
		p := ok
		mut(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := CheckSplit(ok, []Link{{0, "A", 3}, {0, "B", 3}}); err == nil || !strings.Contains(err.Error(), "would take 6") {
		t.Errorf("split of 6 from 5: %v", err)
	}
	if err := CheckSplit(ok, []Link{{0, "A", 3}, {0, "B", 2}}); err != nil {
		t.Errorf("split of 5 from 5: %v", err)
	}
	for _, s := range []string{"-1", "1.234", "abc", "1e3", "+5", "1.-5", "."} {
		if _, err := ParseMoney(s); err == nil {
			t.Errorf("money %q accepted", s)
		}
	}
	if m, err := ParseMoney("120.5"); err != nil || m != 12050 || m.String() != "120.50" {
		t.Errorf("120.5: %v %v", m, err)
	}
	for _, s := range []string{"2027-13-01", "27-01-01", "1969-12-31", "tomorrow"} {
		if _, err := ParseDate(s); err == nil {
			t.Errorf("date %q accepted", s)
		}
	}
	for _, s := range []string{"-1d", "x", "99999d"} {
		if _, err := ParseWindow(s); err == nil {
			t.Errorf("window %q accepted", s)
		}
	}
}

// The package is pure: no database, network or file system.
func TestPure(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		switch imp {
		case "os", "database/sql", "net", "net/http", "io/fs", "os/exec", "syscall":
			t.Errorf("positions imports %s", imp)
		}
	}
}

// An allocation reserves an entitlement: an allocated computer consumes
// the license before its application is recognised there, a computer
// both allocated and installed counts once, and a computer that
// consumes nothing (retired) consumes nothing by its allocation.
func TestAllocationsConsume(t *testing.T) {
	installed := map[int64]bool{1: true, 2: true, 3: true}
	retired := map[int64]bool{9: true}
	reserved := Reserved([]int64{2, 3, 7, 8, 9},
		func(c int64) bool { return !retired[c] },
		func(c int64) bool { return installed[c] })
	if reserved != 2 {
		t.Fatalf("reserved %d, want 2 (7 and 8: 2 and 3 are installed, 9 retired)", reserved)
	}
	// L14's subscription of 5 ends 2027-02-28: with 3 installed and 2
	// reserved it is at risk on its last day and under-licensed by 5 the
	// day after.
	s := seed004(t)
	for i := range s.Licenses {
		if s.Licenses[i].ID == "L14" {
			s.Licenses[i].Reserved = reserved
		}
	}
	row := func(today string) ComplianceRow {
		for _, r := range Compliance(s, day(t, today), DefaultOverLicensedPercent).Rows {
			if r.License == "L14" {
				return r
			}
		}
		t.Fatal("no L14")
		return ComplianceRow{}
	}
	if r := row("2027-02-28"); r.Consumed != 5 || r.Reserved != 2 || r.Raw != 4 || r.Available != 0 || r.Status != AtRisk {
		t.Fatalf("on the last day: %+v", r)
	}
	if r := row("2027-03-01"); r.Consumed != 5 || r.Available != -5 || r.Status != UnderLicensed || r.ShortfallCost != 50000 {
		t.Fatalf("after expiry: %+v", r)
	}
	if rep := Compliance(s, day(t, "2027-03-01"), DefaultOverLicensedPercent); rep.Totals.Shortfall != 5 {
		t.Fatalf("totals count the reserved: %+v", rep.Totals)
	}
}

// A per-user license takes one entitlement per distinct primary user of
// the computers that consume it: a user with several computers takes
// one, a computer with no known primary user counts as a user of its
// own, a retired computer counts nothing, and an allocated computer
// brings its user in only when that user is not already counted.
func TestPerUserConsumption(t *testing.T) {
	users := map[int64]int64{1: 100, 2: 100, 3: 200, 5: 300, 6: 100, 7: 400, 8: 500}
	primary := func(c int64) (int64, bool) { u, ok := users[c]; return u, ok }
	retired := map[int64]bool{}
	consuming := func(c int64) bool { return !retired[c] }
	count := func(installed, allocated []int64) (int, int) {
		return PerUser(installed, allocated, consuming, primary)
	}

	if c, r := count([]int64{1, 2, 3}, nil); c != 2 || r != 0 {
		t.Fatalf("user 100 on computers 1 and 2, user 200 on 3: %d (%d), want 2 users", c, r)
	}
	retired[1] = true
	if c, _ := count([]int64{1, 2, 3}, nil); c != 2 {
		t.Fatalf("one of user 100's two computers retired: %d, want 2", c)
	}
	retired[2] = true
	if c, _ := count([]int64{1, 2, 3}, nil); c != 1 {
		t.Fatalf("both of user 100's computers retired: %d, want 1", c)
	}
	// Computers 4 and 9 have no known primary user: one user each,
	// never merged with each other nor with a user of the same number.
	if c, _ := count([]int64{1, 2, 3, 4, 9}, nil); c != 3 {
		t.Fatalf("two computers with no primary user added: %d, want 3", c)
	}
	if c, _ := PerUser([]int64{100}, nil, consuming, primary); c != 1 {
		t.Fatalf("computer 100 with no primary user: %d, want 1", c)
	}
	if c, _ := PerUser([]int64{100, 1}, nil, func(int64) bool { return true }, primary); c != 2 {
		t.Fatalf("computer 100 (no user) and user 100's computer 1 are two users: %d", c)
	}
	// Allocations: computer 5 is allocated and installed (counted once),
	// 6 belongs to user 100 who is counted through 1, and 7 and 8 bring
	// users 400 and 500 (8 allocated twice counts once).
	clear(retired)
	c, r := count([]int64{1, 5}, []int64{5, 6, 7, 8, 8})
	if c != 2 || r != 2 {
		t.Fatalf("installed on 1 (user 100) and 5 (300), allocated 5, 6 (100), 7 (400), 8 (500): %d (%d), want 2 consumed and 2 reserved (400, 500)", c, r)
	}
	retired[7] = true
	if c, r := count([]int64{1, 5}, []int64{5, 6, 7, 8}); c != 2 || r != 1 {
		t.Fatalf("allocated computer 7 retired: %d (%d), want 2 and 1", c, r)
	}
	if c, r := count(nil, nil); c != 0 || r != 0 {
		t.Fatalf("nothing installed: %d (%d)", c, r)
	}
}

// The license type is device or user; anything else (a typo) is refused
// with a sentence that names both.
func TestLicenseTypes(t *testing.T) {
	ok := License{Name: "CAD", Type: TypeDevice, Duration: Perpetual, Status: "active"}
	for _, typ := range []string{TypeDevice, TypeUser} {
		l := ok
		l.Type = typ
		if err := l.Validate(); err != nil {
			t.Errorf("type %s: %v", typ, err)
		}
	}
	for _, typ := range []string{"usr", "users", "User", "", "device "} {
		l := ok
		l.Type = typ
		if err := l.Validate(); err == nil || !strings.Contains(err.Error(), "want device (per computer) or user (per primary user)") {
			t.Errorf("type %q: %v", typ, err)
		}
	}
}
