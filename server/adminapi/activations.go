package adminapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/tallyhq/tally/server/admins"
	"github.com/tallyhq/tally/server/store"
)

// CreateActivationRequest is the body of POST /api/v1/activations.
type CreateActivationRequest struct {
	Product  string `json:"product"`
	Quantity int    `json:"quantity"`
	// Expires is a day (2027-06-30: valid through that day in the server's
	// time zone) or an RFC 3339 time; empty: as long as its license.
	Expires string `json:"expires,omitempty"`
}

func (a *api) activationRoutes(reg registrar) {
	reg("GET /api/v1/activations", admins.Viewer, a.activationsList)
	reg("POST /api/v1/activations", admins.Operator, a.activationsCreate)
	reg("GET /api/v1/activations/{id}", admins.Viewer, a.activationsShow)
	reg("POST /api/v1/activations/{id}/deactivate", admins.Operator, a.activationsDeactivate)
	reg("POST /api/v1/activations/{id}/return/{computer}", admins.Operator, a.activationsReturn)
	reg("GET /api/v1/leases", admins.Viewer, a.leasesList)
}

func (a *api) activationsList(w http.ResponseWriter, r *http.Request) {
	as, err := a.cfg.Store.ActivationList(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	if err := checkParams(q, "after", "limit"); err != nil {
		a.fail(w, r, err)
		return
	}
	page, next, err := pageOf(as, func(x store.Activation) string { return x.ID }, q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	now := a.cfg.Dates.Now()
	for i := range page {
		a.cfg.Dates.Activation(&page[i], now)
	}
	writeJSON(w, http.StatusOK, ActivationPage{Activations: page, Next: next})
}

func (a *api) activationsCreate(w http.ResponseWriter, r *http.Request) {
	var req CreateActivationRequest
	if err := decodeJSON(r, &req); err != nil {
		badBody(w, err)
		return
	}
	now := a.cfg.Dates.Now()
	var expires *time.Time
	if req.Expires != "" {
		t, err := a.cfg.Dates.ParseEnd(req.Expires)
		if err != nil {
			writeError(w, http.StatusBadRequest, "expires: "+err.Error())
			return
		}
		if !t.After(now) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("expires %s is in the past (now is %s in %s): give a later date, or none to last as long as the license",
				req.Expires, now.Format("2006-01-02 15:04"), now.Location()))
			return
		}
		expires = &t
	}
	act, err := a.cfg.Store.CreateActivation(r.Context(), req.Product, req.Quantity, expires, actor(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.cfg.Dates.Activation(&act, now)
	writeJSON(w, http.StatusCreated, act)
}

func (a *api) activationsShow(w http.ResponseWriter, r *http.Request) {
	act, err := a.cfg.Store.Activation(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.cfg.Dates.Activation(&act, a.cfg.Dates.Now())
	writeJSON(w, http.StatusOK, act)
}

func (a *api) activationsDeactivate(w http.ResponseWriter, r *http.Request) {
	ch, err := a.cfg.Store.DeactivateActivation(r.Context(), r.PathValue("id"), actor(r))
	a.change(w, r, ch, err)
}

func (a *api) activationsReturn(w http.ResponseWriter, r *http.Request) {
	c, err := strconv.ParseInt(r.PathValue("computer"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "computer must be a computer ID")
		return
	}
	ch, err := a.cfg.Store.ReturnActivation(r.Context(), r.PathValue("id"), c, actor(r))
	a.change(w, r, ch, err)
}

func (a *api) leasesList(w http.ResponseWriter, r *http.Request) {
	ls, err := a.cfg.Store.Leases(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	if err := checkParams(q, "after", "limit"); err != nil {
		a.fail(w, r, err)
		return
	}
	page, next, err := pageOf(ls, leaseKey, q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, LeasePage{Leases: page, Next: next})
}

// Activations lists Activation IDs, page after page.
func (c *Client) Activations(ctx context.Context) ([]store.Activation, error) {
	return allPages(ctx, c, "/api/v1/activations", func(p *ActivationPage) ([]store.Activation, string) { return p.Activations, p.Next })
}

// Activation shows one Activation ID.
func (c *Client) Activation(ctx context.Context, id string) (store.Activation, error) {
	var out store.Activation
	return out, c.Do(ctx, http.MethodGet, "/api/v1/activations/"+url.PathEscape(id), nil, &out)
}

// CreateActivation creates an Activation ID.
func (c *Client) CreateActivation(ctx context.Context, req CreateActivationRequest) (store.Activation, error) {
	var out store.Activation
	return out, c.Do(ctx, http.MethodPost, "/api/v1/activations", req, &out)
}

// DeactivateActivation makes an Activation ID inactive.
func (c *Client) DeactivateActivation(ctx context.Context, id string) (store.Change, error) {
	var out store.Change
	return out, c.Do(ctx, http.MethodPost, "/api/v1/activations/"+url.PathEscape(id)+"/deactivate", nil, &out)
}

// ReturnActivation frees a computer's seat of an Activation ID.
func (c *Client) ReturnActivation(ctx context.Context, id string, computer int64) (store.Change, error) {
	var out store.Change
	return out, c.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/activations/%s/return/%d", url.PathEscape(id), computer), nil, &out)
}

// Leases lists live leases, page after page.
func (c *Client) Leases(ctx context.Context) ([]store.Lease, error) {
	return allPages(ctx, c, "/api/v1/leases", func(p *LeasePage) ([]store.Lease, string) { return p.Leases, p.Next })
}
