package adminapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/tallyhq/tally/server/admins"
	"github.com/tallyhq/tally/server/store"
)

// registrar registers a route with the least role it needs.
type registrar func(pattern string, role admins.Role, h http.HandlerFunc)

// AddAdminRequest is the body of POST /api/v1/admins.
type AddAdminRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// Password is optional: an admin without one signs in to the console
	// with a token only.
	Password string `json:"password,omitempty"`
}

// PasswordRequest is the body of POST /api/v1/admins/{name}/password.
type PasswordRequest struct {
	Password string `json:"password"`
}

// IssueTokenRequest is the body of POST /api/v1/admins/{name}/tokens.
type IssueTokenRequest struct {
	Label string `json:"label,omitempty"`
}

// IssuedToken answers it: the token itself, shown this once.
type IssuedToken struct {
	store.AdminToken
	Token string `json:"token"`
}

// MaxTokenLabel bounds a token's label.
const MaxTokenLabel = 200

func (a *api) adminRoutes(reg registrar) {
	reg("GET /api/v1/admins", admins.Admin, a.adminsList)
	reg("POST /api/v1/admins", admins.Admin, a.adminsAdd)
	reg("DELETE /api/v1/admins/{name}", admins.Admin, a.adminsRemove)
	reg("POST /api/v1/admins/{name}/password", admins.Admin, a.adminsPassword)
	reg("POST /api/v1/admins/{name}/tokens", admins.Admin, a.tokensIssue)
	reg("GET /api/v1/tokens", admins.Admin, a.tokensList)
	reg("POST /api/v1/tokens/{id}/revoke", admins.Admin, a.tokensRevoke)
}

// storeErr turns a rule broken in package admins into the store's
// ErrInvalid, which fail answers with 400.
func storeErr(err error) error {
	if errors.Is(err, admins.ErrInvalid) {
		return fmt.Errorf("%w: %s", store.ErrInvalid, sentence(err, admins.ErrInvalid))
	}
	return err
}

func (a *api) needAdmins(w http.ResponseWriter) bool {
	if a.admins == nil {
		writeError(w, http.StatusServiceUnavailable, "this server's store keeps no named admins")
		return false
	}
	return true
}

func (a *api) adminsList(w http.ResponseWriter, r *http.Request) {
	if !a.needAdmins(w) {
		return
	}
	q := r.URL.Query()
	if err := checkParams(q, "after", "limit"); err != nil {
		a.fail(w, r, err)
		return
	}
	as, err := a.admins.ListAdmins(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	page, next, err := pageOf(as, func(x store.AdminAccount) string { return x.Name }, q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, AdminPage{Admins: page, Next: next})
}

func (a *api) adminsAdd(w http.ResponseWriter, r *http.Request) {
	if !a.needAdmins(w) {
		return
	}
	var req AddAdminRequest
	if err := decodeJSON(r, &req); err != nil {
		badBody(w, err)
		return
	}
	if err := admins.CheckName(req.Name); err != nil {
		a.fail(w, r, storeErr(err))
		return
	}
	role, err := admins.ParseRole(req.Role)
	if err != nil {
		a.fail(w, r, storeErr(err))
		return
	}
	hash := ""
	if req.Password != "" {
		if hash, err = admins.HashPassword(req.Password); err != nil {
			a.fail(w, r, storeErr(err))
			return
		}
	}
	acc, err := a.admins.AddAdmin(r.Context(), req.Name, role.String(), hash, actor(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, acc)
}

func (a *api) adminsRemove(w http.ResponseWriter, r *http.Request) {
	if !a.needAdmins(w) {
		return
	}
	if err := a.admins.RemoveAdmin(r.Context(), r.PathValue("name"), actor(r)); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) adminsPassword(w http.ResponseWriter, r *http.Request) {
	if !a.needAdmins(w) {
		return
	}
	var req PasswordRequest
	if err := decodeJSON(r, &req); err != nil {
		badBody(w, err)
		return
	}
	hash, err := admins.HashPassword(req.Password)
	if err != nil {
		a.fail(w, r, storeErr(err))
		return
	}
	if err := a.admins.SetAdminPassword(r.Context(), r.PathValue("name"), hash, actor(r)); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) tokensIssue(w http.ResponseWriter, r *http.Request) {
	if !a.needAdmins(w) {
		return
	}
	var req IssueTokenRequest
	if err := decodeJSON(r, &req); err != nil {
		badBody(w, err)
		return
	}
	if len(req.Label) > MaxTokenLabel {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("a token's label has at most %d characters", MaxTokenLabel))
		return
	}
	tok, id, hash, err := admins.NewToken()
	if err != nil {
		a.fail(w, r, err)
		return
	}
	t, err := a.admins.IssueToken(r.Context(), r.PathValue("name"), id, hash, req.Label, actor(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, IssuedToken{AdminToken: t, Token: tok})
}

func (a *api) tokensList(w http.ResponseWriter, r *http.Request) {
	if !a.needAdmins(w) {
		return
	}
	q := r.URL.Query()
	if err := checkParams(q, "admin", "after", "limit"); err != nil {
		a.fail(w, r, err)
		return
	}
	ts, err := a.admins.AdminTokens(r.Context(), q.Get("admin"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	page, next, err := pageOf(ts, func(x store.AdminToken) string { return x.ID }, q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, TokenPage{Tokens: page, Next: next})
}

func (a *api) tokensRevoke(w http.ResponseWriter, r *http.Request) {
	if !a.needAdmins(w) {
		return
	}
	t, err := a.admins.RevokeToken(r.Context(), r.PathValue("id"), actor(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// Client side.

// Admins lists the named admins, page after page.
func (c *Client) Admins(ctx context.Context) ([]store.AdminAccount, error) {
	return allPages(ctx, c, "/api/v1/admins", func(p *AdminPage) ([]store.AdminAccount, string) { return p.Admins, p.Next })
}

// AddAdmin adds a named admin.
func (c *Client) AddAdmin(ctx context.Context, req AddAdminRequest) (store.AdminAccount, error) {
	var out store.AdminAccount
	return out, c.Do(ctx, http.MethodPost, "/api/v1/admins", req, &out)
}

// RemoveAdmin removes an admin, its tokens and its sessions.
func (c *Client) RemoveAdmin(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, "/api/v1/admins/"+url.PathEscape(name), nil, nil)
}

// SetPassword replaces an admin's password and ends its console sessions.
func (c *Client) SetPassword(ctx context.Context, name, password string) error {
	return c.Do(ctx, http.MethodPost, "/api/v1/admins/"+url.PathEscape(name)+"/password", PasswordRequest{Password: password}, nil)
}

// IssueToken issues an API token for an admin.
func (c *Client) IssueToken(ctx context.Context, name, label string) (IssuedToken, error) {
	var out IssuedToken
	return out, c.Do(ctx, http.MethodPost, "/api/v1/admins/"+url.PathEscape(name)+"/tokens", IssueTokenRequest{Label: label}, &out)
}

// Tokens lists API tokens, of one admin or (admin "") of all.
func (c *Client) Tokens(ctx context.Context, admin string) ([]store.AdminToken, error) {
	path := "/api/v1/tokens"
	if admin != "" {
		path += "?admin=" + url.QueryEscape(admin)
	}
	return allPages(ctx, c, path, func(p *TokenPage) ([]store.AdminToken, string) { return p.Tokens, p.Next })
}

// RevokeToken revokes an API token by its ID.
func (c *Client) RevokeToken(ctx context.Context, id string) (store.AdminToken, error) {
	var out store.AdminToken
	return out, c.Do(ctx, http.MethodPost, "/api/v1/tokens/"+url.PathEscape(id)+"/revoke", nil, &out)
}
