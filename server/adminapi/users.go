package adminapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/tallyhq/tally/server/admins"
	"github.com/tallyhq/tally/server/directory"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/users"
)

type usersAPI struct {
	*api
	st     store.Users
	source func(store.Directory) directory.Source
}

// UserDetail is a user with its credentials.
type UserDetail struct {
	store.User
	Credentials []store.UserCredential `json:"credentials"`
}

// UserStatusRequest sets a user's internal status.
type UserStatusRequest struct {
	Status string `json:"status"`
}

// CredentialRequest adds a credential.
type CredentialRequest struct {
	Product string     `json:"product"`
	Kind    string     `json:"kind"`
	Label   string     `json:"label,omitempty"`
	Expires *time.Time `json:"expires,omitempty"`
}

// FreedAnswer says how many seats a change freed.
type FreedAnswer struct {
	SeatsFreed int `json:"seats_freed"`
}

// HousekeepingRequest runs one task.
type HousekeepingRequest struct {
	DryRun  bool   `json:"dry_run,omitempty"`
	Days    int    `json:"days,omitempty"`
	Domain  string `json:"domain,omitempty"`
	OU      string `json:"ou,omitempty"`
	Group   string `json:"group,omitempty"`
	Product string `json:"product,omitempty"`
}

// userRoutes mounts the routes of users, credentials, directories,
// housekeeping and the users-use-license report (seed 003) when the store
// keeps users. Directories hold bind settings, so they are the admin's;
// users, credentials and housekeeping change seats as Activation IDs do,
// so they are the operator's.
func (a *api) userRoutes(reg registrar) {
	st, ok := a.cfg.Store.(store.Users)
	if !ok {
		return
	}
	u := &usersAPI{api: a, st: st, source: a.cfg.DirectorySource}
	if u.source == nil {
		u.source = func(d store.Directory) directory.Source { return &directory.LDAP{Dir: d} }
	}
	reg("GET /api/v1/users", admins.Viewer, u.list)
	reg("POST /api/v1/users", admins.Operator, u.add)
	reg("GET /api/v1/users/{ref}", admins.Viewer, u.show)
	reg("POST /api/v1/users/{ref}/status", admins.Operator, u.status)
	reg("POST /api/v1/users/{ref}/credentials", admins.Operator, u.addCredential)
	reg("POST /api/v1/credentials/{id}/revoke", admins.Operator, u.revoke)
	reg("GET /api/v1/directories", admins.Admin, u.directories)
	reg("POST /api/v1/directories", admins.Admin, u.addDirectory)
	reg("POST /api/v1/directories/{name}/sync", admins.Operator, u.sync)
	reg("POST /api/v1/housekeeping/{task}", admins.Operator, u.housekeeping)
	reg("GET /api/v1/reports/users-use-license", admins.Viewer, u.report)
	reg("GET /api/v1/reports/users-use-license/seats", admins.Viewer, u.seats)
}

// failUsers adds the per-user errors to fail's mapping.
func (u *usersAPI) failUsers(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNoUserSeat):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, directory.ErrConfig), errors.Is(err, users.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		u.fail(w, r, err)
	}
}

func (u *usersAPI) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := decodeJSON(r, v); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return false
	}
	return true
}

func (u *usersAPI) list(w http.ResponseWriter, r *http.Request) {
	us, err := u.st.Users(r.Context())
	if err != nil {
		u.failUsers(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, us)
}

func (u *usersAPI) add(w http.ResponseWriter, r *http.Request) {
	var req store.NewUser
	if !u.decode(w, r, &req) {
		return
	}
	nu, err := u.st.AddUser(r.Context(), req, store.ActorOf(r.Context()))
	if err != nil {
		u.failUsers(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, nu)
}

func (u *usersAPI) show(w http.ResponseWriter, r *http.Request) {
	us, err := u.st.User(r.Context(), r.PathValue("ref"))
	if err != nil {
		u.failUsers(w, r, err)
		return
	}
	cs, err := u.st.Credentials(r.Context(), us.Key, r.URL.Query().Get("product"))
	if err != nil {
		u.failUsers(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, UserDetail{User: us, Credentials: cs})
}

func (u *usersAPI) status(w http.ResponseWriter, r *http.Request) {
	var req UserStatusRequest
	if !u.decode(w, r, &req) {
		return
	}
	n, err := u.st.SetUserStatus(r.Context(), r.PathValue("ref"), req.Status, store.ActorOf(r.Context()))
	if err != nil {
		u.failUsers(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, FreedAnswer{SeatsFreed: n})
}

func (u *usersAPI) addCredential(w http.ResponseWriter, r *http.Request) {
	var req CredentialRequest
	if !u.decode(w, r, &req) {
		return
	}
	c, err := u.st.AddCredential(r.Context(), store.NewCredential{User: r.PathValue("ref"), Product: req.Product, Kind: req.Kind, Label: req.Label, Expires: req.Expires}, store.ActorOf(r.Context()))
	if err != nil {
		u.failUsers(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

func (u *usersAPI) revoke(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%q is not a credential ID (a positive number, as 'users token list' shows)", r.PathValue("id")))
		return
	}
	n, err := u.st.EndCredential(r.Context(), id, "revoked by an admin", store.ActorOf(r.Context()))
	if err != nil {
		u.failUsers(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, FreedAnswer{SeatsFreed: n})
}

func (u *usersAPI) directories(w http.ResponseWriter, r *http.Request) {
	ds, err := u.st.Directories(r.Context())
	if err != nil {
		u.failUsers(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ds)
}

func (u *usersAPI) addDirectory(w http.ResponseWriter, r *http.Request) {
	var d store.Directory
	if !u.decode(w, r, &d) {
		return
	}
	d.ID, d.LastSyncAt, d.LastResult = 0, nil, ""
	if err := directory.Check(&d); err != nil {
		u.failUsers(w, r, err)
		return
	}
	out, err := u.st.AddDirectory(r.Context(), d, store.ActorOf(r.Context()))
	if err != nil {
		u.failUsers(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

func (u *usersAPI) sync(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ds, err := u.st.Directories(r.Context())
	if err != nil {
		u.failUsers(w, r, err)
		return
	}
	for _, d := range ds {
		if d.Name != name {
			continue
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Minute)
		defer cancel()
		res, err := directory.Sync(ctx, u.st, d.Name, u.source(d), store.ActorOf(ctx))
		if err != nil && !errors.Is(err, store.ErrInvalid) {
			// The directory could not be listed: a gateway's failure, with
			// its sentence, not the server's.
			writeError(w, http.StatusBadGateway, err.Error())
			return
		}
		if err != nil {
			u.failUsers(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
		return
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("directory %q: not found (see 'tally-server directory list')", name))
}

func (u *usersAPI) housekeeping(w http.ResponseWriter, r *http.Request) {
	var req HousekeepingRequest
	if !u.decode(w, r, &req) {
		return
	}
	res, err := u.st.Housekeeping(r.Context(), store.HousekeepingRun{Task: r.PathValue("task"), DryRun: req.DryRun, Days: req.Days,
		Domain: req.Domain, OU: req.OU, Group: req.Group, Product: req.Product}, store.ActorOf(r.Context()))
	if err != nil {
		u.failUsers(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (u *usersAPI) report(w http.ResponseWriter, r *http.Request) {
	rows, err := u.st.UsersUseLicense(r.Context(), r.URL.Query().Get("product"))
	if err != nil {
		u.failUsers(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rows)
}

func (u *usersAPI) seats(w http.ResponseWriter, r *http.Request) {
	s, err := u.st.UserSeatUsage(r.Context())
	if err != nil {
		u.failUsers(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

// Users lists users.
func (c *Client) Users(ctx context.Context) ([]store.User, error) {
	var out []store.User
	return out, c.Do(ctx, http.MethodGet, "/api/v1/users", nil, &out)
}

// AddUser adds a user.
func (c *Client) AddUser(ctx context.Context, u store.NewUser) (store.User, error) {
	var out store.User
	return out, c.Do(ctx, http.MethodPost, "/api/v1/users", u, &out)
}

// User shows a user with its credentials (of product, when given).
func (c *Client) User(ctx context.Context, ref, product string) (UserDetail, error) {
	var out UserDetail
	p := "/api/v1/users/" + url.PathEscape(ref)
	if product != "" {
		p += "?product=" + url.QueryEscape(product)
	}
	return out, c.Do(ctx, http.MethodGet, p, nil, &out)
}

// SetUserStatus sets a user's internal status.
func (c *Client) SetUserStatus(ctx context.Context, ref, status string) (FreedAnswer, error) {
	var out FreedAnswer
	return out, c.Do(ctx, http.MethodPost, "/api/v1/users/"+url.PathEscape(ref)+"/status", UserStatusRequest{Status: status}, &out)
}

// AddCredential adds a token, certificate or Q&A record.
func (c *Client) AddCredential(ctx context.Context, ref string, req CredentialRequest) (store.UserCredential, error) {
	var out store.UserCredential
	return out, c.Do(ctx, http.MethodPost, "/api/v1/users/"+url.PathEscape(ref)+"/credentials", req, &out)
}

// RevokeCredential ends a credential.
func (c *Client) RevokeCredential(ctx context.Context, id int64) (FreedAnswer, error) {
	var out FreedAnswer
	return out, c.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/credentials/%d/revoke", id), nil, &out)
}

// Directories lists directories.
func (c *Client) Directories(ctx context.Context) ([]store.Directory, error) {
	var out []store.Directory
	return out, c.Do(ctx, http.MethodGet, "/api/v1/directories", nil, &out)
}

// AddDirectory adds a directory.
func (c *Client) AddDirectory(ctx context.Context, d store.Directory) (store.Directory, error) {
	var out store.Directory
	return out, c.Do(ctx, http.MethodPost, "/api/v1/directories", d, &out)
}

// SyncDirectory syncs a directory now.
func (c *Client) SyncDirectory(ctx context.Context, name string) (store.SyncResult, error) {
	var out store.SyncResult
	return out, c.Do(ctx, http.MethodPost, "/api/v1/directories/"+url.PathEscape(name)+"/sync", nil, &out)
}

// Housekeeping runs a housekeeping task.
func (c *Client) Housekeeping(ctx context.Context, task string, req HousekeepingRequest) (store.HousekeepingResult, error) {
	var out store.HousekeepingResult
	return out, c.Do(ctx, http.MethodPost, "/api/v1/housekeeping/"+url.PathEscape(task), req, &out)
}

// UsersUseLicense reads the users-use-license report.
func (c *Client) UsersUseLicense(ctx context.Context, product string) ([]store.UserUse, error) {
	var out []store.UserUse
	return out, c.Do(ctx, http.MethodGet, "/api/v1/reports/users-use-license?product="+url.QueryEscape(product), nil, &out)
}

// UserSeats reads granted and held user seats per product.
func (c *Client) UserSeats(ctx context.Context) ([]store.UserSeatUsage, error) {
	var out []store.UserSeatUsage
	return out, c.Do(ctx, http.MethodGet, "/api/v1/reports/users-use-license/seats", nil, &out)
}
