package console

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally/server/store"
)

// maxActivationQuantity bounds the seats one Activation ID is created with.
const maxActivationQuantity = 100000

type activationsData struct {
	Activations []store.Activation
	Products    []string // products with node-locked licenses
	Created     *store.Activation
}

func (c *Console) activations(w http.ResponseWriter, r *http.Request) {
	c.activationsPage(w, r, http.StatusOK, nil, "")
}

func (c *Console) activationsPage(w http.ResponseWriter, r *http.Request, code int, created *store.Activation, problem string) {
	ctx := r.Context()
	now := c.cfg.Dates.Now()
	d := activationsData{Created: created}
	as, err := c.cfg.Store.ActivationList(ctx)
	if err != nil {
		c.serverError(w, err)
		return
	}
	for i := range as {
		c.cfg.Dates.Activation(&as[i], now)
	}
	d.Activations = as
	ls, err := c.cfg.Store.Licenses(ctx)
	if err != nil {
		c.serverError(w, err)
		return
	}
	seen := map[string]bool{}
	for _, l := range ls {
		if l.Kind == store.SeatNodeLocked && !l.Expired && !seen[l.Product] {
			seen[l.Product] = true
			d.Products = append(d.Products, l.Product)
		}
	}
	c.view(w, r, "activations", code, page{Title: "Activation IDs", Nav: "activations", Error: problem, Data: d})
}

func (c *Console) createActivation(w http.ResponseWriter, r *http.Request) {
	product := strings.TrimSpace(r.PostFormValue("product"))
	if product == "" {
		c.activationsPage(w, r, http.StatusBadRequest, nil, "choose a product")
		return
	}
	qty, err := strconv.Atoi(strings.TrimSpace(r.PostFormValue("quantity")))
	if err != nil || qty < 1 || qty > maxActivationQuantity {
		c.activationsPage(w, r, http.StatusBadRequest, nil, fmt.Sprintf("quantity %q: give a number of seats from 1 to %d", r.PostFormValue("quantity"), maxActivationQuantity))
		return
	}
	var expires *time.Time
	if s := strings.TrimSpace(r.PostFormValue("expires")); s != "" {
		t, err := c.cfg.Dates.ParseExpiry(s)
		if err != nil {
			c.activationsPage(w, r, http.StatusBadRequest, nil, err.Error())
			return
		}
		expires = &t
	}
	a, err := c.cfg.Store.CreateActivation(r.Context(), product, qty, expires, c.actor(r))
	if isInvalid(err) || isConflict(err) || store.IsNotFound(err) {
		c.activationsPage(w, r, http.StatusBadRequest, nil, err.Error())
		return
	}
	if err != nil {
		c.serverError(w, err)
		return
	}
	c.activationsPage(w, r, http.StatusCreated, &a, "")
}

func (c *Console) returnActivation(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	comp, err := strconv.ParseInt(r.PathValue("computer"), 10, 64)
	if err != nil || comp < 1 {
		http.NotFound(w, r)
		return
	}
	ch, err := c.cfg.Store.ReturnActivation(r.Context(), id, comp, c.actor(r))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.done(w, r, "activations", result{Done: fmt.Sprintf("Returned the seat of %s held by computer #%d; the record on that machine is revoked at its next contact.", id, comp),
		Change: &ch, Back: "/activations"})
}

func (c *Console) deactivateActivation(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ch, err := c.cfg.Store.DeactivateActivation(r.Context(), id, c.actor(r))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.done(w, r, "activations", result{Done: "Deactivated " + id + ": every seat is returned.", Change: &ch, Back: "/activations"})
}

func (c *Console) leases(w http.ResponseWriter, r *http.Request) {
	ls, err := c.cfg.Store.Leases(r.Context())
	if err != nil {
		c.serverError(w, err)
		return
	}
	c.view(w, r, "leases", http.StatusOK, page{Title: "Leases", Nav: "leases", Data: ls})
}
