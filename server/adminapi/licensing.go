package adminapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/admins"
	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/store"
)

// Product is a catalog entry as the API shows it.
type Product struct {
	Name               string   `json:"name"`
	Title              string   `json:"title"`
	Plugin             string   `json:"plugin"`
	PluginVersions     string   `json:"plugin_versions"`
	Qualifying         []string `json:"qualifying"`
	RequiresPlugin     bool     `json:"requires_plugin"`
	OverCount          []string `json:"over_count"`
	FreedBy            string   `json:"freed_by"`
	PluginRemovalFrees bool     `json:"plugin_removal_frees"`
	PurgeAfterDays     int      `json:"purge_after_days"`
	Source             string   `json:"source"`
	// Application is true for a product licensed only by Activation IDs
	// or leases (no plug-in); Kinds are the license kinds it takes.
	Application bool     `json:"application,omitempty"`
	Kinds       []string `json:"kinds,omitempty"`
}

// ProductOf converts a catalog product.
func ProductOf(p *catalog.Product) Product {
	out := Product{Name: p.Name, Title: p.Title, Plugin: p.Plugin, PluginVersions: p.PluginVersions.String(), RequiresPlugin: p.RequiresPlugin,
		FreedBy: p.FreedByText(), PluginRemovalFrees: p.PluginRemovalFrees, PurgeAfterDays: p.PurgeAfterDays, Source: p.Source,
		Application: p.Application, Kinds: p.Kinds}
	for _, q := range p.Qualifying {
		out.Qualifying = append(out.Qualifying, string(q))
	}
	for _, b := range p.OverCount {
		out.OverCount = append(out.OverCount, string(b))
	}
	return out
}

// LicenseFile is one file of an import request.
type LicenseFile struct {
	Name string `json:"name"`
	Data string `json:"data"`
}

// ImportRequest is the body of POST /api/v1/licenses.
type ImportRequest struct {
	Files []LicenseFile `json:"files"`
}

// ImportResponse answers an import.
type ImportResponse struct {
	Imported []store.License `json:"imported"`
	// Unchanged lists files whose license was already imported.
	Unchanged []string `json:"unchanged,omitempty"`
}

// StatusRequest is the body of POST /api/v1/computers/{id}/status.
type StatusRequest struct {
	Status string `json:"status"`
}

// AllocateRequest is the body of POST /api/v1/licenses/{id}/allocations.
type AllocateRequest struct {
	Computer int64 `json:"computer"`
}

// AddStatusRequest is the body of POST /api/v1/statuses.
type AddStatusRequest struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// TaskRequest is the body of POST /api/v1/computers/{id}/tasks.
type TaskRequest struct {
	Action string `json:"action"`
	// Force queues the task for a computer without the plug-in that runs
	// tasks, which is otherwise refused (409).
	Force bool `json:"force,omitempty"`
}

// TaskResponse answers it.
type TaskResponse struct {
	ID string `json:"id"`
}

func (a *api) licensingRoutes(reg registrar) {
	reg("GET /api/v1/products", admins.Viewer, a.productsList)
	reg("GET /api/v1/products/{name}", admins.Viewer, a.productsShow)
	reg("POST /api/v1/products", admins.Admin, a.productsAdd)
	reg("DELETE /api/v1/products/{name}", admins.Admin, a.productsRemove)
	reg("GET /api/v1/licenses", admins.Viewer, a.licensesList)
	reg("POST /api/v1/licenses", admins.Admin, a.licensesImport)
	reg("DELETE /api/v1/licenses/{id}", admins.Admin, a.licensesRemove)
	reg("POST /api/v1/licenses/{id}/allocations", admins.Admin, a.allocate)
	reg("DELETE /api/v1/licenses/{id}/allocations/{computer}", admins.Admin, a.deallocate)
	reg("POST /api/v1/computers/{id}/status", admins.Operator, a.setStatus)
	reg("DELETE /api/v1/computers/{id}", admins.Operator, a.deleteComputer)
	reg("GET /api/v1/computers/{id}/why/{product}", admins.Viewer, a.why)
	reg("GET /api/v1/computers/{id}/software", admins.Viewer, a.software)
	reg("POST /api/v1/computers/{id}/tasks", admins.Operator, a.addTask)
	reg("GET /api/v1/statuses", admins.Viewer, a.statusesList)
	reg("POST /api/v1/statuses", admins.Operator, a.statusesAdd)
	reg("POST /api/v1/maintenance", admins.Operator, a.maintenance)
	reg("GET /api/v1/usage", admins.Viewer, a.usage)
}

func (a *api) productsList(w http.ResponseWriter, r *http.Request) {
	out := []Product{}
	for _, p := range a.cfg.Catalog.Products() {
		out = append(out, ProductOf(p))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) productsShow(w http.ResponseWriter, r *http.Request) {
	p, ok := a.cfg.Catalog.Product(r.PathValue("name"))
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no product %q: see 'tally-server products list'", r.PathValue("name")))
		return
	}
	writeJSON(w, http.StatusOK, ProductOf(p))
}

func (a *api) licensesList(w http.ResponseWriter, r *http.Request) {
	ls, err := a.cfg.Store.Licenses(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	if err := checkParams(q, "after", "limit"); err != nil {
		a.fail(w, r, err)
		return
	}
	page, next, err := pageOf(ls, func(l store.License) string { return l.ID }, q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	now := a.cfg.Dates.Now()
	for i := range page {
		a.cfg.Dates.License(&page[i], now)
	}
	writeJSON(w, http.StatusOK, LicensePage{Licenses: page, Next: next})
}

// licensesImport verifies every file first: one bad file rejects the whole
// import, with a message per bad file, and nothing changes.
func (a *api) licensesImport(w http.ResponseWriter, r *http.Request) {
	var req ImportRequest
	if err := decodeJSON(r, &req); err != nil {
		badBody(w, err)
		return
	}
	if len(req.Files) == 0 {
		writeError(w, http.StatusBadRequest, "no license files given")
		return
	}
	if a.cfg.VerifyLicense == nil {
		writeError(w, http.StatusServiceUnavailable, "license import is not configured on this server")
		return
	}
	var imports []store.LicenseImport
	var problems []string
	for _, f := range req.Files {
		li, err := a.cfg.VerifyLicense([]byte(f.Data))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", f.Name, err))
			continue
		}
		imports = append(imports, li)
	}
	if len(problems) > 0 {
		msg := "nothing was imported: " + strings.Join(problems, "; ")
		writeError(w, http.StatusUnprocessableEntity, msg)
		return
	}
	imported, err := a.cfg.Store.ImportLicenses(r.Context(), imports, actor(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	now := a.cfg.Dates.Now()
	for i := range imported {
		a.cfg.Dates.License(&imported[i], now)
	}
	resp := ImportResponse{Imported: imported}
	got := map[string]bool{}
	for _, l := range imported {
		got[l.ID] = true
	}
	for i, li := range imports {
		if !got[li.License.ID] {
			resp.Unchanged = append(resp.Unchanged, req.Files[i].Name+" ("+li.License.ID+" was already imported)")
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (a *api) licensesRemove(w http.ResponseWriter, r *http.Request) {
	ch, err := a.cfg.Store.RemoveLicense(r.Context(), r.PathValue("id"), actor(r))
	a.change(w, r, ch, err)
}

func (a *api) allocate(w http.ResponseWriter, r *http.Request) {
	var req AllocateRequest
	if err := decodeJSON(r, &req); err != nil {
		badBody(w, err)
		return
	}
	ch, err := a.cfg.Store.Allocate(r.Context(), r.PathValue("id"), req.Computer, actor(r))
	a.change(w, r, ch, err)
}

func (a *api) deallocate(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("computer"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "computer must be a computer ID")
		return
	}
	ch, err := a.cfg.Store.Deallocate(r.Context(), r.PathValue("id"), id, actor(r))
	a.change(w, r, ch, err)
}

func (a *api) setStatus(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var req StatusRequest
	if err := decodeJSON(r, &req); err != nil {
		badBody(w, err)
		return
	}
	ch, err := a.cfg.Store.SetStatus(r.Context(), id, req.Status, actor(r))
	a.change(w, r, ch, err)
}

func (a *api) deleteComputer(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	block := r.URL.Query().Get("block") == "true" || r.URL.Query().Get("block") == "1"
	ch, err := a.cfg.Store.DeleteComputer(r.Context(), id, block, actor(r))
	a.change(w, r, ch, err)
}

func (a *api) change(w http.ResponseWriter, r *http.Request, ch store.Change, err error) {
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if ch.Seats == nil {
		ch.Seats = []store.SeatChange{}
	}
	writeJSON(w, http.StatusOK, ch)
}

func (a *api) why(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	why, err := a.cfg.Store.Why(r.Context(), id, r.PathValue("product"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, why)
}

func (a *api) software(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if _, err := a.cfg.Store.Computer(r.Context(), id); err != nil {
		a.fail(w, r, err)
		return
	}
	sw, err := a.cfg.Store.Software(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sw)
}

func (a *api) addTask(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var req TaskRequest
	if err := decodeJSON(r, &req); err != nil {
		badBody(w, err)
		return
	}
	tid, err := a.cfg.Store.AddTask(r.Context(), id, req.Action, req.Force)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, TaskResponse{ID: tid})
}

func (a *api) statusesList(w http.ResponseWriter, r *http.Request) {
	s, err := a.cfg.Store.Statuses(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (a *api) statusesAdd(w http.ResponseWriter, r *http.Request) {
	var req AddStatusRequest
	if err := decodeJSON(r, &req); err != nil {
		badBody(w, err)
		return
	}
	s, err := a.cfg.Store.AddStatus(r.Context(), req.Name, req.Description)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, s)
}

func (a *api) maintenance(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Maintenance == nil {
		writeError(w, http.StatusServiceUnavailable, "maintenance is not configured on this server")
		return
	}
	rep, err := a.cfg.Maintenance(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if rep.Expiring == nil {
		if rep.Expiring, err = ExpiringNow(r.Context(), a.cfg.Store, a.cfg.Dates); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, rep)
}

func (a *api) usage(w http.ResponseWriter, r *http.Request) {
	u, err := a.cfg.Store.Usage(r.Context(), r.URL.Query().Get("product"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	now := a.cfg.Dates.Now()
	for i := range u {
		a.cfg.Dates.Usage(&u[i], now)
	}
	writeJSON(w, http.StatusOK, u)
}

// Client side.

// Products lists the catalog.
func (c *Client) Products(ctx context.Context) ([]Product, error) {
	var out []Product
	return out, c.Do(ctx, http.MethodGet, "/api/v1/products", nil, &out)
}

// Product shows one product.
func (c *Client) Product(ctx context.Context, name string) (Product, error) {
	var out Product
	return out, c.Do(ctx, http.MethodGet, "/api/v1/products/"+url.PathEscape(name), nil, &out)
}

// Licenses lists licenses, page after page.
func (c *Client) Licenses(ctx context.Context) ([]store.License, error) {
	return allPages(ctx, c, "/api/v1/licenses", func(p *LicensePage) ([]store.License, string) { return p.Licenses, p.Next })
}

// ImportLicenses imports license files, all or none.
func (c *Client) ImportLicenses(ctx context.Context, files []LicenseFile) (ImportResponse, error) {
	var out ImportResponse
	return out, c.Do(ctx, http.MethodPost, "/api/v1/licenses", ImportRequest{Files: files}, &out)
}

// RemoveLicense removes a license.
func (c *Client) RemoveLicense(ctx context.Context, id string) (store.Change, error) {
	var out store.Change
	return out, c.Do(ctx, http.MethodDelete, "/api/v1/licenses/"+url.PathEscape(id), nil, &out)
}

// Allocate reserves a seat of a license for a computer.
func (c *Client) Allocate(ctx context.Context, license string, computer int64) (store.Change, error) {
	var out store.Change
	return out, c.Do(ctx, http.MethodPost, "/api/v1/licenses/"+url.PathEscape(license)+"/allocations", AllocateRequest{Computer: computer}, &out)
}

// Deallocate ends a reservation.
func (c *Client) Deallocate(ctx context.Context, license string, computer int64) (store.Change, error) {
	var out store.Change
	return out, c.Do(ctx, http.MethodDelete, fmt.Sprintf("/api/v1/licenses/%s/allocations/%d", url.PathEscape(license), computer), nil, &out)
}

// SetStatus changes a computer's status.
func (c *Client) SetStatus(ctx context.Context, id int64, status string) (store.Change, error) {
	var out store.Change
	return out, c.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/computers/%d/status", id), StatusRequest{Status: status}, &out)
}

// DeleteComputer deletes a computer.
func (c *Client) DeleteComputer(ctx context.Context, id int64, block bool) (store.Change, error) {
	var out store.Change
	return out, c.Do(ctx, http.MethodDelete, fmt.Sprintf("/api/v1/computers/%d?block=%t", id, block), nil, &out)
}

// Why explains a computer's seat of a product.
func (c *Client) Why(ctx context.Context, id int64, product string) (store.Why, error) {
	var out store.Why
	return out, c.Do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/computers/%d/why/%s", id, url.PathEscape(product)), nil, &out)
}

// Statuses lists statuses.
func (c *Client) Statuses(ctx context.Context) ([]store.Status, error) {
	var out []store.Status
	return out, c.Do(ctx, http.MethodGet, "/api/v1/statuses", nil, &out)
}

// AddStatus adds a status.
func (c *Client) AddStatus(ctx context.Context, name, description string) (store.Status, error) {
	var out store.Status
	return out, c.Do(ctx, http.MethodPost, "/api/v1/statuses", AddStatusRequest{Name: name, Description: description}, &out)
}

// Maintenance runs the maintenance job now.
func (c *Client) Maintenance(ctx context.Context) (store.MaintenanceReport, error) {
	var out store.MaintenanceReport
	return out, c.Do(ctx, http.MethodPost, "/api/v1/maintenance", nil, &out)
}

// Usage reports license usage.
func (c *Client) Usage(ctx context.Context, product string) ([]store.Usage, error) {
	var out []store.Usage
	path := "/api/v1/usage"
	if product != "" {
		path += "?product=" + url.QueryEscape(product)
	}
	return out, c.Do(ctx, http.MethodGet, path, nil, &out)
}

// Software lists a computer's software inventory.
func (c *Client) Software(ctx context.Context, id int64) ([]Package, error) {
	var out []Package
	return out, c.Do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/computers/%d/software", id), nil, &out)
}

// AddTask queues an agent action for a computer with the plug-in that runs tasks.
func (c *Client) AddTask(ctx context.Context, id int64, action string) (string, error) {
	return c.QueueTask(ctx, id, TaskRequest{Action: action})
}

// QueueTask queues an agent action.
func (c *Client) QueueTask(ctx context.Context, id int64, req TaskRequest) (string, error) {
	var out TaskResponse
	return out.ID, c.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/computers/%d/tasks", id), req, &out)
}

// Package is a software package as the API shows it.
type Package = protocol.Package
