package console

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tallyhq/tally/server/admins"
	"github.com/tallyhq/tally/server/store"
)

type settingsData struct {
	Secrets []store.Secret
	Blocked []store.Blocked
	Created *store.Secret
	Now     time.Time
	// Admins and their tokens, shown to admins only (as on the API).
	Admins []store.AdminAccount
	Tokens []store.AdminToken
	Roles  []string
	// Issued is a token just issued, Webhook a webhook just added: their
	// secrets are shown this once.
	Issued  *issuedToken
	Webhook *store.Webhook
	// Alerts: the store keeps webhooks; their newest deliveries.
	Alerts     bool
	Webhooks   []store.Webhook
	Deliveries []store.AlertDelivery
}

type issuedToken struct {
	store.AdminToken
	Token string
}

// shownDeliveries is how many of the newest alert deliveries the page lists.
const shownDeliveries = 50

func (c *Console) settings(w http.ResponseWriter, r *http.Request) {
	c.settingsPage(w, r, http.StatusOK, settingsData{}, "")
}

// settingsPage renders the settings with d's notices (a secret, token or
// webhook just made) and problem.
func (c *Console) settingsPage(w http.ResponseWriter, r *http.Request, code int, d settingsData, problem string) {
	d.Now = c.cfg.Dates.Now()
	ctx := r.Context()
	var err error
	if d.Secrets, err = c.cfg.Store.ListSecrets(ctx); err != nil {
		c.serverError(w, err)
		return
	}
	if d.Blocked, err = c.cfg.Store.BlockedMachines(ctx); err != nil {
		c.serverError(w, err)
		return
	}
	if c.canChange(r, changeAdmins) {
		for _, role := range admins.Roles {
			d.Roles = append(d.Roles, role.String())
		}
		if d.Admins, err = c.auth.admins.ListAdmins(ctx); err != nil {
			c.serverError(w, err)
			return
		}
		if d.Tokens, err = c.auth.admins.AdminTokens(ctx, ""); err != nil {
			c.serverError(w, err)
			return
		}
	}
	if al, ok := c.cfg.Store.(store.Alerts); ok {
		d.Alerts = true
		if d.Webhooks, err = al.WebhookList(ctx); err != nil {
			c.serverError(w, err)
			return
		}
		if d.Deliveries, err = al.DeliveryLog(ctx, shownDeliveries); err != nil {
			c.serverError(w, err)
			return
		}
	}
	c.view(w, r, "settings", code, page{Title: "Settings", Nav: "settings", Error: problem, Data: d})
}

func (c *Console) createSecret(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" {
		c.settingsPage(w, r, http.StatusBadRequest, settingsData{}, "give the secret a name")
		return
	}
	var expires *time.Time
	if s := strings.TrimSpace(r.PostFormValue("expires")); s != "" {
		t, err := c.cfg.Dates.ParseExpiry(s)
		if err != nil {
			c.settingsPage(w, r, http.StatusBadRequest, settingsData{}, err.Error())
			return
		}
		expires = &t
	}
	s, err := c.cfg.Store.CreateSecret(r.Context(), name, "", expires)
	if isInvalid(err) || isConflict(err) {
		c.settingsPage(w, r, http.StatusBadRequest, settingsData{}, err.Error())
		return
	}
	if err != nil {
		c.serverError(w, err)
		return
	}
	c.settingsPage(w, r, http.StatusCreated, settingsData{Created: &s}, "")
}

func (c *Console) revokeSecret(w http.ResponseWriter, r *http.Request) {
	s, err := c.cfg.Store.RevokeSecret(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if c.cfg.SecretRevoked != nil {
		if err := c.cfg.SecretRevoked(r.Context(), s); err != nil {
			c.serverError(w, err)
			return
		}
	}
	c.done(w, r, "settings", result{Done: fmt.Sprintf("Revoked the secret %s (%s): agents can no longer enroll with it.", s.Name, s.ID), Back: "/settings"})
}

// runMaintenance runs the maintenance job now, as 'tally-server
// maintenance run' does, and shows its report.
func (c *Console) runMaintenance(w http.ResponseWriter, r *http.Request) {
	if c.cfg.Maintenance == nil {
		c.refuse(w, r, http.StatusServiceUnavailable, "maintenance is not configured on this server")
		return
	}
	rep, err := c.cfg.Maintenance(r.Context())
	if err != nil {
		c.serverError(w, err)
		return
	}
	msg := fmt.Sprintf("Maintenance ran in %s: %s drift, %s repaired, %s set Missing, %s expired.", rep.Duration,
		plural(len(rep.Drift), "problem of", "problems of"), plural(len(rep.Repaired), "thing", "things"),
		plural(len(rep.Missing), "computer", "computers"), plural(len(rep.Expired), "seat", "seats"))
	if len(rep.Errors) > 0 {
		msg += " Failed steps: " + strings.Join(rep.Errors, "; ")
	}
	ch := store.Change{Seats: append(append([]store.SeatChange{}, rep.Expired...), rep.Freed...)}
	c.done(w, r, "dashboard", result{Done: msg, Change: &ch, Back: "/"})
}
