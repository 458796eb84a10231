package console

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/store"
)

// softwareShown bounds the software list of a computer page.
const softwareShown = 500

type computerData struct {
	Computer      store.Computer
	Software      []protocol.Package
	SoftwareTotal int
	SoftwareMore  bool
	Search        string
	Statuses      []store.Status
	Licenses      []store.License
	Events        []store.Event
	Why           *store.Why
	WhyProduct    string
	Products      []string
	Blocked       bool
}

func (c *Console) computerID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		http.NotFound(w, r)
		return 0, false
	}
	return id, true
}

func (c *Console) computer(w http.ResponseWriter, r *http.Request) {
	id, ok := c.computerID(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	comp, err := c.cfg.Store.Computer(ctx, id)
	if err != nil {
		if store.IsNotFound(err) {
			http.NotFound(w, r)
			return
		}
		c.serverError(w, err)
		return
	}
	d := computerData{Computer: comp, Search: strings.TrimSpace(r.URL.Query().Get("sw"))}
	p := page{Title: comp.Hostname, Nav: "computers", Data: &d}
	sw, err := c.cfg.Store.Software(ctx, id)
	if err != nil {
		c.serverError(w, err)
		return
	}
	d.SoftwareTotal = len(sw)
	needle := strings.ToLower(d.Search)
	for _, pk := range sw {
		if needle != "" && !strings.Contains(strings.ToLower(pk.Name), needle) {
			continue
		}
		if len(d.Software) == softwareShown {
			d.SoftwareMore = true
			break
		}
		d.Software = append(d.Software, pk)
	}
	if d.Statuses, err = c.cfg.Store.Statuses(ctx); err != nil {
		c.serverError(w, err)
		return
	}
	ls, err := c.cfg.Store.Licenses(ctx)
	if err != nil {
		c.serverError(w, err)
		return
	}
	for _, l := range ls {
		if l.Kind == store.SeatNode && !l.Expired {
			d.Licenses = append(d.Licenses, l)
		}
	}
	ev, err := c.cfg.Store.Events(ctx, store.EventFilter{ComputerID: id, Limit: 50})
	if err != nil {
		c.serverError(w, err)
		return
	}
	d.Events = newestFirst(ev)
	if c.cfg.Catalog != nil {
		for _, pr := range c.cfg.Catalog.Products() {
			d.Products = append(d.Products, pr.Name)
		}
	}
	if comp.Deleted {
		bl, err := c.cfg.Store.BlockedMachines(ctx)
		if err != nil {
			c.serverError(w, err)
			return
		}
		for _, b := range bl {
			d.Blocked = d.Blocked || b.ComputerID == id
		}
	}
	if prod := r.URL.Query().Get("why"); prod != "" {
		d.WhyProduct = prod
		why, err := c.cfg.Store.Why(ctx, id, prod)
		switch {
		case err == nil:
			d.Why = &why
		case store.IsNotFound(err) || isInvalid(err):
			p.Error = err.Error()
		default:
			c.serverError(w, err)
			return
		}
	}
	c.view(w, r, "computer", http.StatusOK, p)
}

func newestFirst(ev []store.Event) []store.Event {
	for i, j := 0, len(ev)-1; i < j; i, j = i+1, j-1 {
		ev[i], ev[j] = ev[j], ev[i]
	}
	return ev
}

func (c *Console) setStatus(w http.ResponseWriter, r *http.Request) {
	id, ok := c.computerID(w, r)
	if !ok {
		return
	}
	status := r.PostFormValue("status")
	if status == "" {
		c.refuse(w, r, http.StatusBadRequest, "choose a status")
		return
	}
	ch, err := c.cfg.Store.SetStatus(r.Context(), id, status, c.actor(r))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	back := fmt.Sprintf("/computers/%d", id)
	c.done(w, r, "computers", result{Done: fmt.Sprintf("Computer #%d is now %s.", id, status), Change: &ch, Back: back,
		Also: []link{{"/", "Dashboard"}, {"/computers", "Computers"}}})
}

// deleteComputer deletes (and with block, blocks) a computer once the
// admin typed its hostname, so a slip of the mouse cannot do it.
func (c *Console) deleteComputer(w http.ResponseWriter, r *http.Request) {
	id, ok := c.computerID(w, r)
	if !ok {
		return
	}
	comp, err := c.cfg.Store.Computer(r.Context(), id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if comp.Deleted {
		c.refuse(w, r, http.StatusConflict, fmt.Sprintf("computer #%d is already deleted", id))
		return
	}
	if r.PostFormValue("confirm") != comp.Hostname {
		c.refuse(w, r, http.StatusBadRequest, fmt.Sprintf("type the hostname %q to confirm: nothing was deleted", comp.Hostname))
		return
	}
	block := r.PostFormValue("block") == "on"
	ch, err := c.cfg.Store.DeleteComputer(r.Context(), id, block, c.actor(r))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	what := "Deleted"
	if block {
		what = "Deleted and blocked"
	}
	c.done(w, r, "computers", result{Done: fmt.Sprintf("%s %s (#%d).", what, comp.Hostname, id), Change: &ch, Back: "/computers"})
}

func (c *Console) allocate(w http.ResponseWriter, r *http.Request) {
	id, ok := c.computerID(w, r)
	if !ok {
		return
	}
	lic := r.PostFormValue("license")
	if lic == "" {
		c.refuse(w, r, http.StatusBadRequest, "choose a license")
		return
	}
	ch, err := c.cfg.Store.Allocate(r.Context(), lic, id, c.actor(r))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.done(w, r, "computers", result{Done: fmt.Sprintf("Allocated a seat of %s to computer #%d.", lic, id), Change: &ch, Back: fmt.Sprintf("/computers/%d", id)})
}

func (c *Console) unblock(w http.ResponseWriter, r *http.Request) {
	id, ok := c.computerID(w, r)
	if !ok {
		return
	}
	b, err := c.cfg.Store.Unblock(r.Context(), id, c.actor(r))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.done(w, r, "settings", result{Done: fmt.Sprintf("Unblocked %s (#%d): it may enroll again, as a new computer.", b.Hostname, id), Back: "/settings"})
}
