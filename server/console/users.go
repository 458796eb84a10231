package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally/server/directory"
	"github.com/tallyhq/tally/server/housekeeping"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/users"
)

// The users pages (seed 003): every user with its internal and external
// status side by side and what it consumes, a user's credentials, and the
// operator's actions on them (issue and revoke a token, run housekeeping
// with a preview, sync a directory), each the console's side of an admin
// API route.

// userParams are the query parameters of the users page.
var userParams = []string{"q", "status", "external", "product"}

// External statuses the users page filters by; "none" is a user no
// directory knows.
var externalFilters = []string{users.ExtActive, users.ExtDisabled, users.ExtDeleted, "none"}

// maxUserRows bounds the rows one users page renders; a search narrows it.
const maxUserRows = 500

// syncTimeout bounds a sync started from the console, as the API does.
const syncTimeout = 10 * time.Minute

// userRow is one line of the users page: a user and one product.
type userRow struct {
	store.UserUse
	Display, ExternalWhy, Directory string
}

type usersData struct {
	Query       url.Values
	Rows        []userRow
	More        int // rows matching beyond maxUserRows
	Filtered    bool
	Products    []string // products licensed per user
	Seats       []store.UserSeatUsage
	Directories []store.Directory
	Statuses    []string
	Externals   []string
	Tasks       []string
	DefaultDays int
	// Housekeeping is the result of a preview or a run just made, with the
	// form values that made it (a preview's "run it" button repeats them).
	Housekeeping *housekeepingView
}

type housekeepingView struct {
	store.HousekeepingResult
	Form url.Values
}

// usersStore is the store's users, or a refusal when it keeps none.
func (c *Console) usersStore(w http.ResponseWriter, r *http.Request) (store.Users, bool) {
	st, ok := c.cfg.Store.(store.Users)
	if !ok {
		c.refuse(w, r, http.StatusServiceUnavailable, "this server's store keeps no users")
	}
	return st, ok
}

func (c *Console) users(w http.ResponseWriter, r *http.Request) {
	c.usersPage(w, r, http.StatusOK, nil, "")
}

// usersPage renders the users page with a housekeeping result and a
// problem; a bad filter is the admin's to fix.
func (c *Console) usersPage(w http.ResponseWriter, r *http.Request, code int, hk *housekeepingView, problem string) {
	st, ok := c.usersStore(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	d := &usersData{Query: q, Statuses: []string{users.Active, users.Disabled, users.Deleted}, Externals: externalFilters,
		Tasks: housekeeping.Tasks, DefaultDays: housekeeping.DefaultDays, Housekeeping: hk}
	p := page{Title: "Users", Nav: "users", Error: problem, Data: d}
	var err error
	if d.Seats, err = st.UserSeatUsage(ctx); err != nil {
		c.serverError(w, err)
		return
	}
	for _, s := range d.Seats {
		d.Products = append(d.Products, s.Product)
	}
	if c.canChange(r, changeUsers) {
		// Directories hold bind settings: the API lists them to admins, the
		// page shows their names and last results to whoever may sync.
		if d.Directories, err = st.Directories(ctx); err != nil {
			c.serverError(w, err)
			return
		}
	}
	f, err := userFilterOf(q)
	if err != nil {
		p.Error = err.Error()
		c.view(w, r, "users", http.StatusBadRequest, p)
		return
	}
	d.Filtered = f != (userFilter{})
	rows, err := c.userRows(ctx, st, f.product)
	if err != nil {
		c.serverError(w, err)
		return
	}
	for _, row := range rows {
		if !f.match(row) {
			continue
		}
		if len(d.Rows) == maxUserRows {
			d.More++
			continue
		}
		d.Rows = append(d.Rows, row)
	}
	c.view(w, r, "users", code, p)
}

type userFilter struct{ search, status, external, product string }

// userFilterOf reads the users page's query; a bad value is
// store.ErrInvalid with a sentence saying what to give.
func userFilterOf(q url.Values) (userFilter, error) {
	for k := range q {
		if !slices.Contains(userParams, k) {
			return userFilter{}, fmt.Errorf("%w: unknown parameter %q", store.ErrInvalid, k)
		}
	}
	f := userFilter{search: strings.ToLower(strings.TrimSpace(q.Get("q"))), status: q.Get("status"), external: q.Get("external"), product: q.Get("product")}
	if len(f.search) > users.MaxName {
		return f, fmt.Errorf("%w: search longer than %d bytes", store.ErrInvalid, users.MaxName)
	}
	if f.status != "" && !slices.Contains([]string{users.Active, users.Disabled, users.Deleted}, f.status) {
		return f, fmt.Errorf("%w: internal status %q: give Active, Disabled or Deleted", store.ErrInvalid, f.status)
	}
	if f.external != "" && !slices.Contains(externalFilters, f.external) {
		return f, fmt.Errorf("%w: external status %q: give %s", store.ErrInvalid, f.external, strings.Join(externalFilters, ", "))
	}
	if f.product != "" {
		if err := users.CheckName("product", f.product); err != nil {
			return f, fmt.Errorf("%w: %w", store.ErrInvalid, err)
		}
	}
	return f, nil
}

func (f userFilter) match(row userRow) bool {
	if f.status != "" && row.Status != f.status {
		return false
	}
	if f.external != "" {
		ext := row.rawExternal()
		if f.external == "none" && ext != "" || f.external != "none" && ext != f.external {
			return false
		}
	}
	if f.search != "" && !strings.Contains(strings.ToLower(row.User), f.search) &&
		!strings.Contains(strings.ToLower(row.Display), f.search) && !strings.Contains(strings.ToLower(row.Key), f.search) {
		return false
	}
	return true
}

// rawExternal undoes the report's wording of the external status.
func (row userRow) rawExternal() string {
	switch row.External {
	case "not in a directory":
		return ""
	case "deleted from directory":
		return users.ExtDeleted
	}
	return row.External
}

// Deleted tells the view the directory no longer has the user.
func (row userRow) Deleted() bool {
	return row.rawExternal() == users.ExtDeleted || row.Status == users.Deleted
}

// userRows joins the users-use-license report with the users' names and
// directories.
func (c *Console) userRows(ctx context.Context, st store.Users, product string) ([]userRow, error) {
	rep, err := st.UsersUseLicense(ctx, product)
	if err != nil {
		return nil, err
	}
	us, err := st.Users(ctx)
	if err != nil {
		return nil, err
	}
	byKey := make(map[string]store.User, len(us))
	for _, u := range us {
		byKey[u.Key] = u
	}
	out := make([]userRow, 0, len(rep))
	for _, row := range rep {
		u := byKey[row.Key]
		out = append(out, userRow{UserUse: row, Display: u.Display, ExternalWhy: u.ExternalWhy, Directory: u.Directory})
	}
	return out, nil
}

type userData struct {
	User        store.User
	Rows        []userRow
	Credentials []store.UserCredential
	Products    []string
	// Issued is a token just issued: its secret is shown this once.
	Issued *store.UserCredential
}

func (c *Console) user(w http.ResponseWriter, r *http.Request) {
	c.userPage(w, r, http.StatusOK, nil, "")
}

func (c *Console) userPage(w http.ResponseWriter, r *http.Request, code int, issued *store.UserCredential, problem string) {
	st, ok := c.usersStore(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	u, err := st.User(ctx, r.PathValue("ref"))
	if store.IsNotFound(err) || errors.Is(err, users.ErrInvalid) || isInvalid(err) {
		c.view(w, r, "result", http.StatusNotFound, page{Title: "Not found", Nav: "users", Error: err.Error(), Data: result{Back: "/users"}})
		return
	}
	if err != nil {
		c.serverError(w, err)
		return
	}
	d := &userData{User: u, Issued: issued}
	if d.Credentials, err = st.Credentials(ctx, u.Key, ""); err != nil {
		c.serverError(w, err)
		return
	}
	rows, err := c.userRows(ctx, st, "")
	if err != nil {
		c.serverError(w, err)
		return
	}
	for _, row := range rows {
		if row.Key == u.Key && row.Product != "" {
			d.Rows = append(d.Rows, row)
		}
	}
	seats, err := st.UserSeatUsage(ctx)
	if err != nil {
		c.serverError(w, err)
		return
	}
	for _, s := range seats {
		d.Products = append(d.Products, s.Product)
	}
	title := u.Name
	if u.Domain != "" {
		title = u.Domain + `\` + u.Name
	}
	c.view(w, r, "user", code, page{Title: title, Nav: "users", Error: problem, Data: d})
}

// notDone says a refused action changed nothing, on a page that shows the
// problem above its forms.
func notDone(msg string) string { return strings.TrimRight(msg, ".") + ". Nothing was changed." }

// usersProblem answers a refused user action: bad input and a product
// without a free seat are the admin's to fix, and change nothing.
func (c *Console) usersProblem(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNoUserSeat):
		c.refuse(w, r, http.StatusConflict, err.Error())
	case errors.Is(err, users.ErrInvalid), errors.Is(err, directory.ErrConfig):
		c.refuse(w, r, http.StatusBadRequest, err.Error())
	default:
		c.fail(w, r, err)
	}
}

func (c *Console) issueUserToken(w http.ResponseWriter, r *http.Request) {
	st, ok := c.usersStore(w, r)
	if !ok {
		return
	}
	product := strings.TrimSpace(r.PostFormValue("product"))
	if product == "" {
		c.userPage(w, r, http.StatusBadRequest, nil, notDone("choose a product"))
		return
	}
	label := strings.TrimSpace(r.PostFormValue("label"))
	if len(label) > users.MaxName {
		c.userPage(w, r, http.StatusBadRequest, nil, notDone(fmt.Sprintf("a token's label has at most %d characters", users.MaxName)))
		return
	}
	var expires *time.Time
	if s := strings.TrimSpace(r.PostFormValue("expires")); s != "" {
		t, err := c.cfg.Dates.ParseExpiry(s)
		if err != nil {
			c.userPage(w, r, http.StatusBadRequest, nil, notDone(err.Error()))
			return
		}
		expires = &t
	}
	u, err := st.User(r.Context(), r.PathValue("ref"))
	if err != nil {
		c.usersProblem(w, r, err)
		return
	}
	cr, err := st.AddCredential(r.Context(), store.NewCredential{User: u.Key, Product: product, Kind: users.Token, Label: label, Expires: expires}, c.actor(r))
	if errors.Is(err, store.ErrNoUserSeat) || errors.Is(err, users.ErrInvalid) || isInvalid(err) || store.IsNotFound(err) {
		code := http.StatusBadRequest
		if errors.Is(err, store.ErrNoUserSeat) {
			code = http.StatusConflict
		}
		c.userPage(w, r, code, nil, notDone(err.Error()))
		return
	}
	if err != nil {
		c.serverError(w, err)
		return
	}
	c.userPage(w, r, http.StatusCreated, &cr, "")
}

func (c *Console) revokeCredential(w http.ResponseWriter, r *http.Request) {
	st, ok := c.usersStore(w, r)
	if !ok {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		c.refuse(w, r, http.StatusNotFound, fmt.Sprintf("%q is not a credential ID", r.PathValue("id")))
		return
	}
	freed, err := st.EndCredential(r.Context(), id, "revoked by an admin", c.actor(r))
	if err != nil {
		c.usersProblem(w, r, err)
		return
	}
	back := "/users"
	if u := r.PostFormValue("user"); u != "" && users.CheckName("user", u) == nil {
		back = "/users/" + url.PathEscape(u)
	}
	c.done(w, r, "users", result{Done: fmt.Sprintf("Revoked credential %d: %s freed.", id, plural(freed, "seat", "seats")), Back: back})
}

// housekeepingForm reads a housekeeping run from the form; "preview" asks
// for a dry run.
func housekeepingForm(f url.Values) (store.HousekeepingRun, url.Values, error) {
	run := store.HousekeepingRun{Task: f.Get("task"), DryRun: f.Get("mode") == "preview",
		Domain: strings.TrimSpace(f.Get("domain")), OU: strings.TrimSpace(f.Get("ou")), Group: strings.TrimSpace(f.Get("group")), Product: strings.TrimSpace(f.Get("product"))}
	keep := url.Values{}
	for _, k := range []string{"task", "days", "domain", "ou", "group", "product"} {
		if v := strings.TrimSpace(f.Get(k)); v != "" {
			keep.Set(k, v)
		}
	}
	if s := strings.TrimSpace(f.Get("days")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > housekeeping.MaxDays {
			return run, keep, fmt.Errorf("%w: days %q: give a number of days from 1 to %d", store.ErrInvalid, s, housekeeping.MaxDays)
		}
		run.Days = n
	}
	if m := f.Get("mode"); m != "preview" && m != "run" {
		return run, keep, fmt.Errorf("%w: mode %q: preview or run", store.ErrInvalid, m)
	}
	return run, keep, housekeeping.Check(&run)
}

// runHousekeeping previews (a dry run: the same transaction rolled back)
// or runs one task, and shows what it frees on the users page.
func (c *Console) runHousekeeping(w http.ResponseWriter, r *http.Request) {
	st, ok := c.usersStore(w, r)
	if !ok {
		return
	}
	run, keep, err := housekeepingForm(r.PostForm)
	if err != nil {
		c.usersPage(w, r, http.StatusBadRequest, nil, notDone(err.Error()))
		return
	}
	res, err := st.Housekeeping(r.Context(), run, c.actor(r))
	if err != nil {
		c.usersProblem(w, r, err)
		return
	}
	c.usersPage(w, r, http.StatusOK, &housekeepingView{HousekeepingResult: res, Form: keep}, "")
}

// syncDirectory lists a directory now and merges it, as the server does
// every interval.
func (c *Console) syncDirectory(w http.ResponseWriter, r *http.Request) {
	st, ok := c.usersStore(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	ds, err := st.Directories(r.Context())
	if err != nil {
		c.serverError(w, err)
		return
	}
	i := slices.IndexFunc(ds, func(d store.Directory) bool { return d.Name == name })
	if i < 0 {
		c.refuse(w, r, http.StatusNotFound, fmt.Sprintf("directory %q: not found", name))
		return
	}
	source := c.cfg.DirectorySource
	if source == nil {
		source = func(d store.Directory) directory.Source { return &directory.LDAP{Dir: d} }
	}
	ctx, cancel := context.WithTimeout(r.Context(), syncTimeout)
	defer cancel()
	res, err := directory.Sync(ctx, st, name, source(ds[i]), c.actor(r))
	if err != nil && !isInvalid(err) {
		// The directory could not be listed: its sentence, and no user changed.
		c.refuse(w, r, http.StatusBadGateway, err.Error())
		return
	}
	if err != nil {
		c.usersProblem(w, r, err)
		return
	}
	c.done(w, r, "users", result{Done: fmt.Sprintf("Synced %s: %d users seen, %d added, %d updated, %d deleted from the directory; %s freed.",
		name, res.Seen, res.Added, res.Updated, res.Deleted, plural(res.SeatsFreed, "seat", "seats")), Back: "/users"})
}
