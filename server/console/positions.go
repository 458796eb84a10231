package console

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/store"
)

// positionStore is what the reports of software licenses and purchases
// read of the store, as on the admin API; a store without it has no such
// reports.
type positionStore interface {
	store.Applications
	store.SoftwareLicenses
}

// maxFilterText bounds the reports' search text.
const maxFilterText = 200

// positionFilter is the filters of the expiry listing and the compliance
// report: the licenses they cover, and the report's own parameters.
type positionFilter struct {
	Window  positions.Window
	Kind    string // software, product, or "" for both
	Q       string // in the license's ID, name, product or publisher
	Over    int    // the over-licensed percentage
	Windows []string
}

// positionInput reads the filters; an unknown value is refused, not
// dropped, so a report never silently covers more than asked.
func positionInput(q url.Values) (positionFilter, error) {
	f := positionFilter{Window: positions.Window{Days: 30}, Over: positions.DefaultOverLicensedPercent,
		Windows: []string{"7d", "30d", "90d", "overdue"}}
	if s := strings.TrimSpace(q.Get("within")); s != "" {
		w, err := positions.ParseWindow(s)
		if err != nil {
			return f, err
		}
		f.Window = w
	}
	switch f.Kind = strings.TrimSpace(q.Get("kind")); f.Kind {
	case "", positions.KindSoftware, positions.KindProduct:
	default:
		return f, fmt.Errorf("kind %q: software, product, or nothing for both", f.Kind)
	}
	f.Q = strings.TrimSpace(q.Get("q"))
	if len(f.Q) > maxFilterText {
		return f, fmt.Errorf("the search text is longer than %d bytes", maxFilterText)
	}
	if s := strings.TrimSpace(q.Get("over")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 100 {
			return f, fmt.Errorf("over %q: a whole percentage from 0 to 100", s)
		}
		f.Over = n
	}
	return f, nil
}

// query is the filters as a query string, for the CSV links.
func (f positionFilter) query() string {
	q := url.Values{"within": {f.Window.String()}, "over": {strconv.Itoa(f.Over)}}
	if f.Kind != "" {
		q.Set("kind", f.Kind)
	}
	if f.Q != "" {
		q.Set("q", f.Q)
	}
	return q.Encode()
}

// keeps reports whether the filters keep a license.
func (f positionFilter) keeps(l positions.License) bool {
	if f.Kind != "" && l.Kind != f.Kind {
		return false
	}
	if f.Q == "" {
		return true
	}
	q := strings.ToLower(f.Q)
	for _, s := range []string{l.ID, l.Name, l.Product, l.Publisher} {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}

// positionReports computes the expiry listing and the compliance report of
// the licenses the filters keep, from one snapshot so that both describe
// the same moment. Filtering the snapshot, not the rows, keeps the
// compliance totals the sum of the rows shown.
func (c *Console) positionReports(r *http.Request, f positionFilter) ([]positions.ExpiryRow, positions.ComplianceReport, bool, error) {
	ps, ok := c.cfg.Store.(positionStore)
	if !ok {
		return nil, positions.ComplianceReport{}, false, nil
	}
	snap, err := ps.PositionSnapshot(r.Context())
	if err != nil {
		return nil, positions.ComplianceReport{}, true, err
	}
	kept := snap.Licenses[:0:0]
	for _, l := range snap.Licenses {
		if f.keeps(l) {
			kept = append(kept, l)
		}
	}
	snap.Licenses = kept
	today := positions.DateOf(c.cfg.Dates.Now())
	return positions.Expiry(snap, today, f.Window), positions.Compliance(snap, today, f.Over), true, nil
}

// positionCSV downloads the expiry listing or the compliance report with
// the page's filters, in the columns of the API and the CLI.
func (c *Console) positionCSV(w http.ResponseWriter, r *http.Request, name string) {
	f, err := positionInput(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	exp, comp, ok, err := c.positionReports(r, f)
	if err != nil {
		c.serverError(w, err)
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	var b bytes.Buffer
	if name == "expiry" {
		err = positions.WriteExpiryCSV(&b, exp)
	} else {
		err = positions.WriteComplianceCSV(&b, comp)
	}
	if err != nil {
		c.serverError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "tally-"+name+".csv"))
	_, _ = w.Write(b.Bytes())
}
