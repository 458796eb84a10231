package console

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tallyhq/tally/server/store"
)

// computerParams are the query parameters of the computers page.
var computerParams = []string{"q", "status", "product", "plugin", "os", "flag", "seen", "sort", "after", "limit"}

// maxBulk bounds one bulk action: the computers of one page.
const maxBulk = store.MaxComputerLimit

type computersData struct {
	Query      url.Values
	Computers  []store.Computer
	NextPage   string
	Statuses   []store.Status
	Products   []string
	Plugins    []string
	Flags      []string
	Enroll     string
	Filtered   bool
	Descending bool
}

// computerFilter reads the computers page's query; a bad value is
// store.ErrInvalid with a sentence saying what to give.
func (c *Console) computerFilter(q url.Values) (store.ComputerFilter, error) {
	f := store.ComputerFilter{Limit: 100}
	for k := range q {
		if !slices.Contains(computerParams, k) {
			return f, fmt.Errorf("%w: unknown parameter %q", store.ErrInvalid, k)
		}
	}
	f.Search, f.Status, f.Product, f.Plugin, f.OS, f.Flag = strings.TrimSpace(q.Get("q")), q.Get("status"), q.Get("product"), q.Get("plugin"), q.Get("os"), q.Get("flag")
	if s := q.Get("seen"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 3650 {
			return f, fmt.Errorf("%w: not seen in %q days: give a number of days from 1 to 3650", store.ErrInvalid, s)
		}
		f.NotSeenSince = c.cfg.Dates.Now().AddDate(0, 0, -n)
	}
	switch q.Get("sort") {
	case "", "id":
	case "-id":
		f.Desc = true
	default:
		return f, fmt.Errorf("%w: sort %q: sort by id or -id (newest first)", store.ErrInvalid, q.Get("sort"))
	}
	if s := q.Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return f, fmt.Errorf("%w: after %q is not a computer ID", store.ErrInvalid, s)
		}
		f.After = n
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > store.MaxComputerLimit {
			return f, fmt.Errorf("%w: limit %q: show 1 to %d computers a page", store.ErrInvalid, s, store.MaxComputerLimit)
		}
		f.Limit = n
	}
	return f, nil
}

func (c *Console) computers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := computersData{Query: q, Flags: store.Flags, Descending: q.Get("sort") == "-id"}
	p := page{Title: "Computers", Nav: "computers", Data: &d}
	var err error
	if d.Statuses, err = c.cfg.Store.Statuses(r.Context()); err != nil {
		c.serverError(w, err)
		return
	}
	if c.cfg.Catalog != nil {
		for _, pr := range c.cfg.Catalog.Products() {
			d.Products = append(d.Products, pr.Name)
		}
		d.Plugins = slices.DeleteFunc(c.cfg.Catalog.Plugins(), func(s string) bool { return s == "" })
	}
	f, err := c.computerFilter(q)
	if err != nil {
		p.Error = err.Error()
		c.view(w, r, "computers", http.StatusBadRequest, p)
		return
	}
	cp, err := c.cfg.Store.ListComputers(r.Context(), f)
	if isInvalid(err) {
		p.Error = err.Error()
		c.view(w, r, "computers", http.StatusBadRequest, p)
		return
	}
	if err != nil {
		c.serverError(w, err)
		return
	}
	d.Computers = cp.Computers
	if cp.Next != 0 {
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("after", strconv.FormatInt(cp.Next, 10))
		d.NextPage = "/computers?" + next.Encode()
	}
	for k, v := range q {
		if k != "sort" && k != "limit" && k != "after" && strings.Join(v, "") != "" {
			d.Filtered = true
		}
	}
	if len(cp.Computers) == 0 && !d.Filtered && f.After == 0 {
		d.Enroll = fmt.Sprintf("tally-agent enroll --server %s --fingerprint %s --secret SECRET", c.cfg.Info.Advertise, c.cfg.Info.Fingerprint)
	}
	c.view(w, r, "computers", http.StatusOK, p)
}

// bulkStatus sets the status of the computers ticked on a computers page,
// one at a time: each is its own transaction, and the page lists what
// each did.
func (c *Console) bulkStatus(w http.ResponseWriter, r *http.Request) {
	status := r.PostFormValue("status")
	ids := r.PostForm["id"]
	if status == "" {
		c.refuse(w, r, http.StatusBadRequest, "choose a status to set")
		return
	}
	if len(ids) == 0 {
		c.refuse(w, r, http.StatusBadRequest, "tick at least one computer")
		return
	}
	if len(ids) > maxBulk {
		c.refuse(w, r, http.StatusBadRequest, fmt.Sprintf("at most %d computers at once", maxBulk))
		return
	}
	var nums []int64
	for _, s := range ids {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			c.refuse(w, r, http.StatusBadRequest, fmt.Sprintf("%q is not a computer ID", s))
			return
		}
		nums = append(nums, n)
	}
	all := store.Change{}
	for _, id := range nums {
		ch, err := c.cfg.Store.SetStatus(r.Context(), id, status, c.actor(r))
		if err != nil {
			if len(all.Seats) > 0 || id != nums[0] {
				err = fmt.Errorf("%w (the computers before #%d were set %s)", err, id, status)
			}
			c.fail(w, r, err)
			return
		}
		all.Seats = append(all.Seats, ch.Seats...)
	}
	c.done(w, r, "computers", result{Done: fmt.Sprintf("Set %s to %s.", plural(len(nums), "computer", "computers"), status), Change: &all, Back: "/computers"})
}
