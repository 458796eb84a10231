package positions

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// PurchaseCSVColumns are the columns of a purchase import, in any order
// (a header row names them); po, item, quantity and type are required.
// links is "LICENSE:QUANTITY" pairs separated by ";".
var PurchaseCSVColumns = []string{"po", "item", "vendor", "date", "quantity", "unit_price", "type", "effective", "expiry", "cost_centre", "description", "links"}

// MaxCSVRows bounds an import.
const MaxCSVRows = 20_000

// ParsePurchasesCSV reads a purchase import. Any bad row is an error
// naming its line and column, so that an import is all or nothing.
func ParsePurchasesCSV(r io.Reader) ([]Purchase, [][]Link, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = false
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, errors.New("the CSV file is empty: its first line names the columns (" + strings.Join(PurchaseCSVColumns, ",") + ")")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("CSV header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(PurchaseCSVColumns, h) {
			return nil, nil, fmt.Errorf("CSV header: unknown column %q: the columns are %s", h, strings.Join(PurchaseCSVColumns, ", "))
		}
		if _, dup := col[h]; dup {
			return nil, nil, fmt.Errorf("CSV header: column %q appears twice", h)
		}
		col[h] = i
	}
	for _, need := range []string{"po", "item", "quantity", "type"} {
		if _, ok := col[need]; !ok {
			return nil, nil, fmt.Errorf("CSV header: column %q is missing (required: po, item, quantity, type)", need)
		}
	}
	var ps []Purchase
	var links [][]Link
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("CSV: %w; nothing was imported", err)
		}
		line, _ := cr.FieldPos(0)
		if len(ps) >= MaxCSVRows {
			return nil, nil, fmt.Errorf("CSV: more than %d purchases; import it in parts", MaxCSVRows)
		}
		get := func(name string) string {
			if i, ok := col[name]; ok {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		bad := func(name string, err error) error {
			return fmt.Errorf("CSV line %d, column %s: %w; nothing was imported", line, name, err)
		}
		p := Purchase{PO: get("po"), Item: get("item"), Vendor: get("vendor"), Type: strings.ToLower(get("type")),
			CostCentre: get("cost_centre"), Description: get("description")}
		if p.Quantity, err = strconv.Atoi(get("quantity")); err != nil {
			return nil, nil, bad("quantity", fmt.Errorf("%q is not a whole number", get("quantity")))
		}
		if p.UnitPrice, err = ParseMoney(get("unit_price")); err != nil {
			return nil, nil, bad("unit_price", err)
		}
		for _, d := range []struct {
			name string
			dst  *Date
		}{{"date", &p.Date}, {"effective", &p.Effective}, {"expiry", &p.Expiry}} {
			if *d.dst, err = ParseDate(get(d.name)); err != nil {
				return nil, nil, bad(d.name, err)
			}
		}
		if err := p.Validate(); err != nil {
			return nil, nil, fmt.Errorf("CSV line %d: %w; nothing was imported", line, err)
		}
		ls, err := ParseLinks(get("links"))
		if err != nil {
			return nil, nil, bad("links", err)
		}
		if err := CheckSplit(p, ls); err != nil {
			return nil, nil, fmt.Errorf("CSV line %d: %w; nothing was imported", line, err)
		}
		ps = append(ps, p)
		links = append(links, ls)
	}
	if len(ps) == 0 {
		return nil, nil, errors.New("the CSV file has a header but no purchase")
	}
	return ps, links, nil
}

// ParseLinks reads "SW-1:5;SW-2:5".
func ParseLinks(s string) ([]Link, error) {
	var out []Link
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lic, qty, ok := strings.Cut(part, ":")
		lic = strings.TrimSpace(lic)
		n, err := strconv.Atoi(strings.TrimSpace(qty))
		if !ok || lic == "" || err != nil || n <= 0 {
			return nil, fmt.Errorf("link %q: want LICENSE:QUANTITY (e.g. SW-1:5), links separated by ;", part)
		}
		out = append(out, Link{License: lic, Quantity: n})
	}
	return out, nil
}

// WriteExpiryCSV writes the expiry listing as CSV, header first.
func WriteExpiryCSV(w io.Writer, rows []ExpiryRow) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"license", "license_name", "product", "publisher", "expiry_reason", "expiry_date", "days_to_expire",
		"purchase", "purchase_order", "item", "vendor", "current", "quantity", "planned_non_renewal", "has_maintenance", "maintenance", "estimated_renewal"})
	for _, r := range rows {
		p := ""
		if r.Purchase != 0 {
			p = strconv.FormatInt(r.Purchase, 10)
		}
		cw.Write([]string{r.License, r.Name, r.Product, r.Publisher, r.Reason, r.Expiry.String(), strconv.Itoa(r.DaysToExpire),
			p, r.PO, r.Item, r.Vendor, yesNo(r.Current), strconv.Itoa(r.Quantity), yesNo(r.PlannedNonRenewal), yesNo(r.HasMaintenance),
			strconv.Itoa(r.Maintenance), r.EstimatedRenewal.String()})
	}
	cw.Flush()
	return cw.Error()
}

// WriteComplianceCSV writes the compliance report as CSV, the totals in
// the last row.
func WriteComplianceCSV(w io.Writer, rep ComplianceReport) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"license", "license_name", "kind", "product", "publisher", "purchased", "extra_entitlements", "consumed", "raw_consumption",
		"shortfall_availability", "has_maintenance", "maintenance", "maintenance_matches", "compliance_status", "subject_to_true_up",
		"unit_price", "shortfall_cost", "unused", "unused_cost", "over_licensed", "alert"})
	for _, r := range rep.Rows {
		cw.Write([]string{r.License, r.Name, r.Kind, r.Product, r.Publisher, strconv.Itoa(r.Purchased), strconv.Itoa(r.Extra),
			strconv.Itoa(r.Consumed), strconv.Itoa(r.Raw), strconv.Itoa(r.Available), yesNo(r.HasMaintenance), strconv.Itoa(r.Maintenance),
			yesNo(r.MaintenanceMatches), r.Status, yesNo(r.TrueUp), r.UnitPrice.String(), r.ShortfallCost.String(),
			strconv.Itoa(r.Unused), r.UnusedCost.String(), yesNo(r.OverLicensed), r.Alert})
	}
	t := rep.Totals
	cw.Write([]string{"TOTAL", fmt.Sprintf("%d licenses", t.Licenses), "", "", "", strconv.Itoa(t.Purchased), "", strconv.Itoa(t.Consumed), "",
		strconv.Itoa(-t.Shortfall), "", "", fmt.Sprintf("%d mismatches", t.Mismatches),
		fmt.Sprintf("%d under-licensed, %d at-risk", t.UnderLicensed, t.AtRisk), "", "", t.ShortfallCost.String(),
		strconv.Itoa(t.Unused), t.UnusedCost.String(), fmt.Sprintf("%d over-licensed", t.OverLicensed), ""})
	cw.Flush()
	return cw.Error()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
