package console

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/store"
)

// maxReportDays bounds the expiry report's window.
const maxReportDays = 3650

type reportsData struct {
	Product   string
	Products  []string
	Days      int
	Usage     []store.Usage
	Expiring  []store.Expiring
	UsageCSV  string
	ExpiryCSV string

	// The expiry listing and compliance report of software and product
	// licenses with purchases (server/positions), when the store has them.
	Positions     bool
	Pos           positionFilter
	Expiry        []positions.ExpiryRow
	Compliance    positions.ComplianceReport
	PosExpiryCSV  string
	ComplianceCSV string
}

// reportInput reads the reports' filters: a product and a window in days.
func (c *Console) reportInput(q url.Values) (product string, days int, err error) {
	days = 30
	if s := strings.TrimSpace(q.Get("days")); s != "" {
		days, err = strconv.Atoi(s)
		if err != nil || days < 1 || days > maxReportDays {
			return "", 0, fmt.Errorf("days %q: give a number of days from 1 to %d", s, maxReportDays)
		}
	}
	product = strings.TrimSpace(q.Get("product"))
	if product != "" && c.cfg.Catalog != nil {
		if _, ok := c.cfg.Catalog.Product(product); !ok {
			return "", 0, fmt.Errorf("product %q does not exist", product)
		}
	}
	return product, days, nil
}

func (c *Console) reportRows(r *http.Request, product string, days int) ([]store.Usage, []store.Expiring, error) {
	now := c.cfg.Dates.Now()
	us, err := c.cfg.Store.UsageTotals(r.Context(), product)
	if err != nil {
		return nil, nil, err
	}
	var usage []store.Usage
	for _, u := range us {
		if u.Granted == 0 && u.Consumed == 0 && u.Waiting == 0 && len(u.Discards) == 0 {
			continue
		}
		c.cfg.Dates.Usage(&u, now)
		usage = append(usage, u)
	}
	ls, err := c.cfg.Store.Licenses(r.Context())
	if err != nil {
		return nil, nil, err
	}
	as, err := c.cfg.Store.ActivationList(r.Context())
	if err != nil {
		return nil, nil, err
	}
	win := c.cfg.Dates
	win.Window = time.Duration(days) * 24 * time.Hour
	var exp []store.Expiring
	for _, e := range win.Expiring(ls, as, now) {
		if product == "" || e.Product == product {
			exp = append(exp, e)
		}
	}
	return usage, exp, nil
}

func (c *Console) reports(w http.ResponseWriter, r *http.Request) {
	d := reportsData{Days: 30}
	if c.cfg.Catalog != nil {
		for _, p := range c.cfg.Catalog.Products() {
			d.Products = append(d.Products, p.Name)
		}
	}
	p := page{Title: "Reports", Nav: "reports", Data: &d}
	product, days, err := c.reportInput(r.URL.Query())
	pos, perr := positionInput(r.URL.Query())
	d.Pos = pos
	if err == nil {
		err = perr
	}
	if err != nil {
		p.Error = err.Error()
		c.view(w, r, "reports", http.StatusBadRequest, p)
		return
	}
	d.Product, d.Days = product, days
	if d.Usage, d.Expiring, err = c.reportRows(r, product, days); err != nil {
		c.serverError(w, err)
		return
	}
	q := url.Values{"days": {strconv.Itoa(days)}}
	if product != "" {
		q.Set("product", product)
	}
	d.UsageCSV, d.ExpiryCSV = "/reports/usage.csv?"+q.Encode(), "/reports/expiring.csv?"+q.Encode()
	if d.Expiry, d.Compliance, d.Positions, err = c.positionReports(r, d.Pos); err != nil {
		c.serverError(w, err)
		return
	}
	d.PosExpiryCSV, d.ComplianceCSV = "/reports/expiry.csv?"+d.Pos.query(), "/reports/compliance.csv?"+d.Pos.query()
	c.view(w, r, "reports", http.StatusOK, p)
}

// reportCSV downloads a report: usage, expiring, or computers (with the
// computers page's filters, every page of them).
func (c *Console) reportCSV(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("file"), ".csv")
	if !ok {
		http.NotFound(w, r)
		return
	}
	var rows [][]string
	switch name {
	case "usage", "expiring":
		product, days, err := c.reportInput(r.URL.Query())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		usage, exp, err := c.reportRows(r, product, days)
		if err != nil {
			c.serverError(w, err)
			return
		}
		if name == "usage" {
			rows = append(rows, []string{"product", "kind", "granted", "consumed", "reserved", "waiting", "available", "compliant", "expires"})
			for _, u := range usage {
				rows = append(rows, []string{u.Product, u.Kind, strconv.Itoa(u.Granted), strconv.Itoa(u.Consumed), strconv.Itoa(u.Reserved),
					strconv.Itoa(u.Waiting), strconv.Itoa(u.Available), strconv.FormatBool(u.Compliant), u.Expires})
			}
		} else {
			rows = append(rows, []string{"what", "id", "product", "ends_at", "days_left", "state"})
			for _, e := range exp {
				rows = append(rows, []string{e.What, e.ID, e.Product, e.EndsAt.Format(time.RFC3339), strconv.Itoa(e.DaysLeft), e.State})
			}
		}
	case "computers":
		c.computersCSV(w, r)
		return
	case "expiry", "compliance":
		c.positionCSV(w, r, name)
		return
	default:
		http.NotFound(w, r)
		return
	}
	writeCSV(w, name, rows)
}

func writeCSV(w http.ResponseWriter, name string, rows [][]string) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "tally-"+name+".csv"))
	cw := csv.NewWriter(w)
	for _, row := range rows {
		_ = cw.Write(csvSafe(row))
	}
	cw.Flush()
}

// csvSafe keeps a spreadsheet from running a cell as a formula: hostnames
// and other fields come from agents.
func csvSafe(row []string) []string {
	for i, s := range row {
		if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
			if _, err := strconv.ParseFloat(s, 64); err != nil {
				row[i] = "'" + s
			}
		}
	}
	return row
}

func (c *Console) computersCSV(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	q.Del("after")
	q.Del("limit")
	f, err := c.computerFilter(q)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.Limit = store.MaxComputerLimit
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="tally-computers.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"id", "hostname", "os", "platform", "platform_version", "arch", "status", "first_seen", "last_seen", "flags"})
	for first := true; ; first = false {
		page, err := c.cfg.Store.ListComputers(r.Context(), f)
		if err != nil {
			if first {
				http.Error(w, err.Error(), http.StatusBadRequest)
			} else {
				c.log.Error("computers report", "err", err)
			}
			return
		}
		for _, cp := range page.Computers {
			_ = cw.Write(csvSafe([]string{strconv.FormatInt(cp.ID, 10), cp.Hostname, cp.OS, cp.Platform, cp.PlatformVersion, cp.Arch, cp.Status,
				cp.FirstSeen.Format(time.RFC3339), cp.LastSeen.Format(time.RFC3339), strings.Join(cp.Flags, " ")}))
		}
		cw.Flush()
		if page.Next == 0 {
			return
		}
		f.After = page.Next
	}
}
