package console

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/admins"
	"github.com/tallyhq/tally/server/store"
)

// The settings' admin actions: the console's side of 'tally-server admins
// add|remove|token' and the API's admin routes, each audited with the
// admin signed in.

// settingsProblem answers bad input on the settings page with the reason,
// changing nothing: the rules of package admins and the store's refusals.
func (c *Console) settingsProblem(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, admins.ErrInvalid), isInvalid(err):
		c.settingsPage(w, r, http.StatusBadRequest, settingsData{}, err.Error())
	case isConflict(err):
		c.settingsPage(w, r, http.StatusConflict, settingsData{}, err.Error())
	default:
		c.fail(w, r, err)
	}
}

func (c *Console) addAdmin(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if err := admins.CheckName(name); err != nil {
		c.settingsProblem(w, r, err)
		return
	}
	role, err := admins.ParseRole(r.PostFormValue("role"))
	if err != nil {
		c.settingsProblem(w, r, err)
		return
	}
	hash, err := admins.HashPassword(r.PostFormValue("password"))
	if err != nil {
		c.settingsProblem(w, r, err)
		return
	}
	acc, err := c.auth.admins.AddAdmin(r.Context(), name, role.String(), hash, c.actor(r))
	if err != nil {
		c.settingsProblem(w, r, err)
		return
	}
	c.done(w, r, "settings", result{Done: fmt.Sprintf("Added the admin %s with the role %s: they sign in with their name and password.", acc.Name, acc.Role), Back: "/settings#admins"})
}

func (c *Console) removeAdmin(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := c.auth.admins.RemoveAdmin(r.Context(), name, c.actor(r)); err != nil {
		c.fail(w, r, err)
		return
	}
	c.done(w, r, "settings", result{Done: fmt.Sprintf("Removed the admin %s: their tokens and sessions no longer work.", name), Back: "/settings#admins"})
}

func (c *Console) issueToken(w http.ResponseWriter, r *http.Request) {
	label := strings.TrimSpace(r.PostFormValue("label"))
	if len(label) > adminapi.MaxTokenLabel {
		c.settingsPage(w, r, http.StatusBadRequest, settingsData{}, fmt.Sprintf("a token's label has at most %d characters", adminapi.MaxTokenLabel))
		return
	}
	tok, id, hash, err := admins.NewToken()
	if err != nil {
		c.serverError(w, err)
		return
	}
	t, err := c.auth.admins.IssueToken(r.Context(), r.PathValue("name"), id, hash, label, c.actor(r))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.settingsPage(w, r, http.StatusCreated, settingsData{Issued: &issuedToken{AdminToken: t, Token: tok}}, "")
}

func (c *Console) revokeToken(w http.ResponseWriter, r *http.Request) {
	t, err := c.auth.admins.RevokeToken(r.Context(), r.PathValue("id"), c.actor(r))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.done(w, r, "settings", result{Done: fmt.Sprintf("Revoked the token %s of %s: it no longer signs in.", t.ID, t.Admin), Back: "/settings#admins"})
}

func (c *Console) addWebhook(w http.ResponseWriter, r *http.Request) {
	al, ok := c.cfg.Store.(store.Alerts)
	if !ok {
		c.refuse(w, r, http.StatusServiceUnavailable, "this server's store keeps no alert webhooks")
		return
	}
	h, err := al.AddWebhook(r.Context(), strings.TrimSpace(r.PostFormValue("url")), r.PostFormValue("secret"), c.actor(r))
	if err != nil {
		c.settingsProblem(w, r, err)
		return
	}
	c.settingsPage(w, r, http.StatusCreated, settingsData{Webhook: &h}, "")
}
