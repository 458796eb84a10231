package adminapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/tallyhq/tally/server/admins"
	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/store"
)

// positionStore is what the routes of applications, software licenses,
// purchases and their reports need of the store.
type positionStore interface {
	store.Applications
	store.SoftwareLicenses
}

// positionRoutes mounts the routes when the store provides them.
func (a *api) positionRoutes(reg registrar) {
	a.alertRoutes(reg)
	ps, ok := a.cfg.Store.(positionStore)
	if !ok {
		return
	}
	p := &positionAPI{api: a, st: ps}
	reg("GET /api/v1/applications", admins.Viewer, p.applicationsList)
	reg("POST /api/v1/applications", admins.Admin, p.applicationsAdd)
	reg("GET /api/v1/applications/{name}", admins.Viewer, p.applicationsShow)
	reg("DELETE /api/v1/applications/{name}", admins.Admin, p.applicationsRemove)
	reg("GET /api/v1/swlicenses", admins.Viewer, p.swLicensesList)
	reg("POST /api/v1/swlicenses", admins.Admin, p.swLicensesAdd)
	reg("GET /api/v1/swlicenses/{ref}", admins.Viewer, p.swLicensesShow)
	reg("PATCH /api/v1/swlicenses/{ref}", admins.Admin, p.swLicensesChange)
	reg("POST /api/v1/swlicenses/{ref}/applications", admins.Admin, p.swLicensesLink)
	reg("POST /api/v1/swlicenses/{ref}/allocations", admins.Admin, p.swLicensesAllocate)
	reg("DELETE /api/v1/swlicenses/{ref}/allocations/{computer}", admins.Admin, p.swLicensesDeallocate)
	reg("GET /api/v1/purchases", admins.Viewer, p.purchasesList)
	reg("POST /api/v1/purchases", admins.Admin, p.purchasesAdd)
	reg("POST /api/v1/purchases/import", admins.Admin, p.purchasesImport)
	reg("GET /api/v1/purchases/{id}", admins.Viewer, p.purchasesShow)
	reg("POST /api/v1/purchases/{id}/links", admins.Admin, p.purchasesLink)
	reg("DELETE /api/v1/purchases/{id}/links/{license}", admins.Admin, p.purchasesUnlink)
	reg("GET /api/v1/reports/expiry", admins.Viewer, p.reportExpiry)
	reg("GET /api/v1/reports/compliance", admins.Viewer, p.reportCompliance)
}

type positionAPI struct {
	*api
	st positionStore
}

func (p *positionAPI) applicationsList(w http.ResponseWriter, r *http.Request) {
	as, err := p.st.ApplicationList(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, as)
}

// applicationsAdd takes a list of applications (a file import), all or
// none.
func (p *positionAPI) applicationsAdd(w http.ResponseWriter, r *http.Request) {
	var req []store.Application
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	as, err := p.st.AddApplications(r.Context(), req, store.ActorOf(r.Context()))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, as)
}

func (p *positionAPI) applicationsShow(w http.ResponseWriter, r *http.Request) {
	a, err := p.st.Application(r.Context(), r.PathValue("name"))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (p *positionAPI) applicationsRemove(w http.ResponseWriter, r *http.Request) {
	if err := p.st.RemoveApplication(r.Context(), r.PathValue("name"), store.ActorOf(r.Context())); err != nil {
		p.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (p *positionAPI) swLicensesList(w http.ResponseWriter, r *http.Request) {
	ls, err := p.st.SoftwareLicenseList(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ls)
}

func (p *positionAPI) swLicensesAdd(w http.ResponseWriter, r *http.Request) {
	var req store.SoftwareLicense
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	l, err := p.st.AddSoftwareLicense(r.Context(), req, store.ActorOf(r.Context()))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, l)
}

func (p *positionAPI) swLicensesShow(w http.ResponseWriter, r *http.Request) {
	l, err := p.st.SoftwareLicense(r.Context(), r.PathValue("ref"))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (p *positionAPI) swLicensesChange(w http.ResponseWriter, r *http.Request) {
	var req store.SoftwareLicenseChange
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	l, err := p.st.ChangeSoftwareLicense(r.Context(), r.PathValue("ref"), req, store.ActorOf(r.Context()))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

// LinkApplicationRequest is the body of POST /api/v1/swlicenses/{ref}/applications.
type LinkApplicationRequest struct {
	Application string `json:"application"`
}

func (p *positionAPI) swLicensesLink(w http.ResponseWriter, r *http.Request) {
	var req LinkApplicationRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	l, err := p.st.LinkApplication(r.Context(), r.PathValue("ref"), req.Application, store.ActorOf(r.Context()))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

// swLicensesAllocate takes the same body as a product license's
// allocation (AllocateRequest).
func (p *positionAPI) swLicensesAllocate(w http.ResponseWriter, r *http.Request) {
	var req AllocateRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Computer <= 0 {
		writeError(w, http.StatusBadRequest, "computer must be a computer ID (the number in 'tally-server computers list')")
		return
	}
	l, err := p.st.AllocateSoftware(r.Context(), r.PathValue("ref"), req.Computer, store.ActorOf(r.Context()))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (p *positionAPI) swLicensesDeallocate(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("computer"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "computer must be a computer ID (the number in 'tally-server computers list')")
		return
	}
	l, err := p.st.DeallocateSoftware(r.Context(), r.PathValue("ref"), id, store.ActorOf(r.Context()))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (p *positionAPI) purchasesList(w http.ResponseWriter, r *http.Request) {
	ps, err := p.st.PurchaseList(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ps)
}

func (p *positionAPI) purchasesAdd(w http.ResponseWriter, r *http.Request) {
	var req []store.NewPurchase
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ps, err := p.st.AddPurchases(r.Context(), req, store.ActorOf(r.Context()))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, ps)
}

// purchasesImport takes a CSV file (positions.PurchaseCSVColumns): every
// row is stored, or none.
func (p *positionAPI) purchasesImport(w http.ResponseWriter, r *http.Request) {
	ps, links, err := positions.ParsePurchasesCSV(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	req := make([]store.NewPurchase, len(ps))
	for i := range ps {
		req[i] = store.NewPurchase{Purchase: ps[i], Links: links[i]}
	}
	out, err := p.st.AddPurchases(r.Context(), req, store.ActorOf(r.Context()))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

func purchaseID(r *http.Request) (int64, error) {
	s := r.PathValue("id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: %q is not a purchase ID (a positive number, as 'purchase list' shows)", store.ErrInvalid, s)
	}
	return id, nil
}

func (p *positionAPI) purchasesShow(w http.ResponseWriter, r *http.Request) {
	id, err := purchaseID(r)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	v, err := p.st.Purchase(r.Context(), id)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// LinkPurchaseRequest is the body of POST /api/v1/purchases/{id}/links.
type LinkPurchaseRequest struct {
	License  string `json:"license"`
	Quantity int    `json:"quantity"`
}

func (p *positionAPI) purchasesLink(w http.ResponseWriter, r *http.Request) {
	id, err := purchaseID(r)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	var req LinkPurchaseRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	v, err := p.st.LinkPurchase(r.Context(), id, req.License, req.Quantity, store.ActorOf(r.Context()))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (p *positionAPI) purchasesUnlink(w http.ResponseWriter, r *http.Request) {
	id, err := purchaseID(r)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	v, err := p.st.UnlinkPurchase(r.Context(), id, r.PathValue("license"), store.ActorOf(r.Context()))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// ExpiryReport is the answer of GET /api/v1/reports/expiry.
type ExpiryReport struct {
	Today  positions.Date        `json:"today"`
	Window string                `json:"window"`
	Rows   []positions.ExpiryRow `json:"rows"`
}

// reportExpiry answers ?within=30d (default) or ?overdue=true, as JSON or
// with ?format=csv as CSV.
func (p *positionAPI) reportExpiry(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	win := positions.Window{Days: 30}
	if s := q.Get("within"); s != "" {
		var err error
		if win, err = positions.ParseWindow(s); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if s := q.Get("overdue"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil || (b && q.Get("within") != "") {
			writeError(w, http.StatusBadRequest, "overdue=true lists what has expired; within=N lists what expires in the next N days: give one")
			return
		}
		win.Overdue = b
	}
	snap, err := p.st.PositionSnapshot(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	today := positions.DateOf(p.cfg.Dates.Now())
	rep := ExpiryReport{Today: today, Window: win.String(), Rows: positions.Expiry(snap, today, win)}
	if rep.Rows == nil {
		rep.Rows = []positions.ExpiryRow{}
	}
	switch q.Get("format") {
	case "", "json":
		writeJSON(w, http.StatusOK, rep)
	case "csv":
		writeCSV(w, func(out io.Writer) error { return positions.WriteExpiryCSV(out, rep.Rows) })
	default:
		writeError(w, http.StatusBadRequest, "format: json or csv")
	}
}

func (p *positionAPI) reportCompliance(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	over := positions.DefaultOverLicensedPercent
	if s := q.Get("over_percent"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 100 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("over_percent %q: a whole percentage from 0 to 100", s))
			return
		}
		over = n
	}
	snap, err := p.st.PositionSnapshot(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	rep := positions.Compliance(snap, positions.DateOf(p.cfg.Dates.Now()), over)
	switch q.Get("format") {
	case "", "json":
		writeJSON(w, http.StatusOK, rep)
	case "csv":
		writeCSV(w, func(out io.Writer) error { return positions.WriteComplianceCSV(out, rep) })
	default:
		writeError(w, http.StatusBadRequest, "format: json or csv")
	}
}

func writeCSV(w http.ResponseWriter, f func(io.Writer) error) {
	var b bytes.Buffer
	if err := f(&b); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
}

// Applications lists the applications.
func (c *Client) Applications(ctx context.Context) ([]store.Application, error) {
	var out []store.Application
	return out, c.Do(ctx, http.MethodGet, "/api/v1/applications", nil, &out)
}

// AddApplications adds applications, all or none.
func (c *Client) AddApplications(ctx context.Context, as []store.Application) ([]store.Application, error) {
	var out []store.Application
	return out, c.Do(ctx, http.MethodPost, "/api/v1/applications", as, &out)
}

// Application returns one application with the computers where it is
// installed.
func (c *Client) Application(ctx context.Context, name string) (store.Application, error) {
	var out store.Application
	return out, c.Do(ctx, http.MethodGet, "/api/v1/applications/"+url.PathEscape(name), nil, &out)
}

// RemoveApplication removes an application no license names.
func (c *Client) RemoveApplication(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, "/api/v1/applications/"+url.PathEscape(name), nil, nil)
}

// SoftwareLicenses lists the software licenses.
func (c *Client) SoftwareLicenses(ctx context.Context) ([]store.SoftwareLicense, error) {
	var out []store.SoftwareLicense
	return out, c.Do(ctx, http.MethodGet, "/api/v1/swlicenses", nil, &out)
}

// AddSoftwareLicense adds a software license.
func (c *Client) AddSoftwareLicense(ctx context.Context, l store.SoftwareLicense) (store.SoftwareLicense, error) {
	var out store.SoftwareLicense
	return out, c.Do(ctx, http.MethodPost, "/api/v1/swlicenses", l, &out)
}

// SoftwareLicense returns one software license by ID or name.
func (c *Client) SoftwareLicense(ctx context.Context, ref string) (store.SoftwareLicense, error) {
	var out store.SoftwareLicense
	return out, c.Do(ctx, http.MethodGet, "/api/v1/swlicenses/"+url.PathEscape(ref), nil, &out)
}

// ChangeSoftwareLicense changes some fields of a software license.
func (c *Client) ChangeSoftwareLicense(ctx context.Context, ref string, ch store.SoftwareLicenseChange) (store.SoftwareLicense, error) {
	var out store.SoftwareLicense
	return out, c.Do(ctx, http.MethodPatch, "/api/v1/swlicenses/"+url.PathEscape(ref), ch, &out)
}

// LinkApplication adds an application to a software license.
func (c *Client) LinkApplication(ctx context.Context, ref, app string) (store.SoftwareLicense, error) {
	var out store.SoftwareLicense
	return out, c.Do(ctx, http.MethodPost, "/api/v1/swlicenses/"+url.PathEscape(ref)+"/applications", LinkApplicationRequest{app}, &out)
}

// AllocateSoftware reserves an entitlement of a software license for a
// computer.
func (c *Client) AllocateSoftware(ctx context.Context, ref string, computer int64) (store.SoftwareLicense, error) {
	var out store.SoftwareLicense
	return out, c.Do(ctx, http.MethodPost, "/api/v1/swlicenses/"+url.PathEscape(ref)+"/allocations", AllocateRequest{Computer: computer}, &out)
}

// DeallocateSoftware releases a software license's allocation to a
// computer.
func (c *Client) DeallocateSoftware(ctx context.Context, ref string, computer int64) (store.SoftwareLicense, error) {
	var out store.SoftwareLicense
	return out, c.Do(ctx, http.MethodDelete, fmt.Sprintf("/api/v1/swlicenses/%s/allocations/%d", url.PathEscape(ref), computer), nil, &out)
}

// Purchases lists the purchases.
func (c *Client) Purchases(ctx context.Context) ([]store.PurchaseView, error) {
	var out []store.PurchaseView
	return out, c.Do(ctx, http.MethodGet, "/api/v1/purchases", nil, &out)
}

// AddPurchases adds purchases with their links, all or none.
func (c *Client) AddPurchases(ctx context.Context, ps []store.NewPurchase) ([]store.PurchaseView, error) {
	var out []store.PurchaseView
	return out, c.Do(ctx, http.MethodPost, "/api/v1/purchases", ps, &out)
}

// ImportPurchases imports a CSV file of purchases, all or none.
func (c *Client) ImportPurchases(ctx context.Context, csv []byte) ([]store.PurchaseView, error) {
	var out []store.PurchaseView
	return out, c.Do(ctx, http.MethodPost, "/api/v1/purchases/import", RawBody{"text/csv", csv}, &out)
}

// Purchase returns one purchase with its links.
func (c *Client) Purchase(ctx context.Context, id int64) (store.PurchaseView, error) {
	var out store.PurchaseView
	return out, c.Do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/purchases/%d", id), nil, &out)
}

// LinkPurchase gives quantity of a purchase to a license.
func (c *Client) LinkPurchase(ctx context.Context, id int64, license string, qty int) (store.PurchaseView, error) {
	var out store.PurchaseView
	return out, c.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/purchases/%d/links", id), LinkPurchaseRequest{license, qty}, &out)
}

// UnlinkPurchase removes a purchase's link to a license.
func (c *Client) UnlinkPurchase(ctx context.Context, id int64, license string) (store.PurchaseView, error) {
	var out store.PurchaseView
	return out, c.Do(ctx, http.MethodDelete, fmt.Sprintf("/api/v1/purchases/%d/links/%s", id, url.PathEscape(license)), nil, &out)
}

// ExpiryReport reads the expiry listing: within days, or overdue.
func (c *Client) ExpiryReport(ctx context.Context, w positions.Window) (ExpiryReport, error) {
	var out ExpiryReport
	path := "/api/v1/reports/expiry?within=" + url.QueryEscape(w.String())
	if w.Overdue {
		path = "/api/v1/reports/expiry?overdue=true"
	}
	return out, c.Do(ctx, http.MethodGet, path, nil, &out)
}

// ComplianceReport reads the compliance report.
func (c *Client) ComplianceReport(ctx context.Context, overPercent int) (positions.ComplianceReport, error) {
	var out positions.ComplianceReport
	return out, c.Do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/reports/compliance?over_percent=%d", overPercent), nil, &out)
}

// RawBody is a request body Client.Do sends as it is (a CSV file), not
// as JSON.
type RawBody struct {
	ContentType string
	Data        []byte
}
