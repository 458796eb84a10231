package console

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/store"
)

// eventsPerPage is the events page's size.
const eventsPerPage = 100

var eventParams = []string{"since", "until", "kind", "computer", "product", "actor", "before"}

type eventsData struct {
	Query    url.Values
	Events   []store.Event
	NextPage string
	Kinds    []string
}

// eventKinds are the kinds offered by the events page's filter.
var eventKinds = []string{
	store.EventEnrolled, store.EventReenrolled, store.EventKeyRevoked, store.EventCloneDetected, store.EventEnrollRefused,
	store.EventSecretCreated, store.EventSecretRevoked, store.EventSeatConsumed, store.EventSeatFreed, store.EventSeatMoved,
	store.EventDiscarded, store.EventStatus, store.EventDeleted, store.EventUnblocked, store.EventFlagged, store.EventUnflagged,
	store.EventUninstalled, store.EventPluginRemoved, store.EventLicenseImport, store.EventLicenseRemove, store.EventAllocated,
	store.EventDeallocated, store.EventStatusAdded, store.EventMaintenance, store.EventDriftRepaired, store.EventSoftwareRefused,
	store.EventPurged, store.EventTaskQueued, store.EventActCreated, store.EventActivated, store.EventActReturned, store.EventActRevoked,
	store.EventActDeactivate, store.EventLeaseOut, store.EventLeaseIn, store.EventLeaseExpired, store.EventLeaseDenied,
	store.EventProductAdded, store.EventProductRemove,
}

func (c *Console) eventFilter(q url.Values) (store.EventFilter, error) {
	f := store.EventFilter{Limit: eventsPerPage + 1}
	for k := range q {
		if !slices.Contains(eventParams, k) {
			return f, fmt.Errorf("unknown parameter %q", k)
		}
	}
	now := c.cfg.Dates.Now()
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := strings.TrimSpace(q.Get(t.name)); s != "" {
			v, err := adminapi.ParseSince(s, now)
			if err != nil {
				return f, fmt.Errorf("%s %q: give a duration back from now (24h, 7d) or a date (2026-11-25)", t.name, s)
			}
			*t.dst = v
		}
	}
	if s := strings.TrimSpace(q.Get("computer")); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id < 1 {
			return f, fmt.Errorf("computer %q is not a computer ID", s)
		}
		f.ComputerID = id
	}
	f.Kind, f.Product, f.Actor = q.Get("kind"), strings.TrimSpace(q.Get("product")), strings.TrimSpace(q.Get("actor"))
	if f.Kind != "" && !slices.Contains(eventKinds, f.Kind) {
		return f, fmt.Errorf("kind %q is not an event kind", f.Kind)
	}
	if s := q.Get("before"); s != "" {
		at, id, ok := strings.Cut(s, "-")
		ms, err1 := strconv.ParseInt(at, 10, 64)
		n, err2 := strconv.ParseInt(id, 10, 64)
		if !ok || err1 != nil || err2 != nil || n < 1 {
			return f, fmt.Errorf("before %q is not a page of events", s)
		}
		f.Before = store.EventCursor{At: time.UnixMilli(ms), ID: n}
	}
	return f, nil
}

func (c *Console) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := eventsData{Query: q, Kinds: eventKinds}
	p := page{Title: "Events", Nav: "events", Data: &d}
	f, err := c.eventFilter(q)
	if err != nil {
		p.Error = err.Error()
		c.view(w, r, "events", http.StatusBadRequest, p)
		return
	}
	ev, err := c.cfg.Store.Events(r.Context(), f)
	if err != nil {
		c.serverError(w, err)
		return
	}
	ev = newestFirst(ev)
	if len(ev) > eventsPerPage {
		ev = ev[:eventsPerPage]
		last := ev[len(ev)-1]
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("before", fmt.Sprintf("%d-%d", last.At.UnixMilli(), last.ID))
		d.NextPage = "/events?" + next.Encode()
	}
	d.Events = ev
	c.view(w, r, "events", http.StatusOK, p)
}
