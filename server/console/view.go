package console

import (
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tallyhq/tally/server/store"
)

// pages are the views, each parsed with the layout.
var pages = []string{"login", "dashboard", "computers", "computer", "events", "licenses", "license", "activations", "leases", "reports", "settings", "result", "software", "swlicense", "application", "users", "user"}

func (c *Console) routes(m *http.ServeMux) {
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.Handle("GET /{$}", c.signedIn(c.dashboard))
	m.Handle("GET /computers", c.signedIn(c.computers))
	m.Handle("POST /computers/bulk", c.action(changeComputers, c.bulkStatus))
	m.Handle("GET /computers/{id}", c.signedIn(c.computer))
	m.Handle("POST /computers/{id}/status", c.action(changeComputers, c.setStatus))
	m.Handle("POST /computers/{id}/delete", c.action(changeComputers, c.deleteComputer))
	m.Handle("POST /computers/{id}/allocate", c.action(changeLicenses, c.allocate))
	m.Handle("POST /blocked/{id}/unblock", c.action(changeComputers, c.unblock))
	m.Handle("GET /licenses", c.signedIn(c.licenses))
	m.Handle("GET /licenses/{id}", c.signedIn(c.license))
	m.Handle("GET /usage", http.RedirectHandler("/licenses", http.StatusMovedPermanently))
	m.Handle("POST /licenses/import", c.action(changeLicenses, c.importLicenses))
	m.Handle("POST /licenses/{id}/remove", c.action(changeLicenses, c.removeLicense))
	m.Handle("POST /licenses/{id}/deallocate/{computer}", c.action(changeLicenses, c.deallocate))
	m.Handle("GET /activations", c.signedIn(c.activations))
	m.Handle("POST /activations", c.action(changeActivations, c.createActivation))
	m.Handle("POST /activations/{id}/return/{computer}", c.action(changeActivations, c.returnActivation))
	m.Handle("POST /activations/{id}/deactivate", c.action(changeActivations, c.deactivateActivation))
	m.Handle("GET /leases", c.signedIn(c.leases))
	m.Handle("GET /software", c.signedIn(c.software))
	m.Handle("GET /software/licenses/{ref}", c.signedIn(c.swLicense))
	m.Handle("GET /software/applications/{name}", c.signedIn(c.application))
	m.Handle("GET /users", c.signedIn(c.users))
	m.Handle("GET /users/{ref}", c.signedIn(c.user))
	m.Handle("POST /users/{ref}/tokens", c.action(changeUsers, c.issueUserToken))
	m.Handle("POST /credentials/{id}/revoke", c.action(changeUsers, c.revokeCredential))
	m.Handle("POST /housekeeping", c.action(changeUsers, c.runHousekeeping))
	m.Handle("POST /directories/{name}/sync", c.action(changeUsers, c.syncDirectory))
	m.Handle("GET /reports", c.signedIn(c.reports))
	m.Handle("GET /reports/{file}", c.signedIn(c.reportCSV))
	m.Handle("GET /events", c.signedIn(c.events))
	m.Handle("GET /settings", c.signedIn(c.settings))
	m.Handle("POST /settings/secrets", c.action(changeSecrets, c.createSecret))
	m.Handle("POST /settings/secrets/{id}/revoke", c.action(changeSecrets, c.revokeSecret))
	m.Handle("POST /settings/admins", c.action(changeAdmins, c.addAdmin))
	m.Handle("POST /settings/admins/{name}/remove", c.action(changeAdmins, c.removeAdmin))
	m.Handle("POST /settings/admins/{name}/tokens", c.action(changeAdmins, c.issueToken))
	m.Handle("POST /settings/tokens/{id}/revoke", c.action(changeAdmins, c.revokeToken))
	m.Handle("POST /settings/webhooks", c.action(changeAlerts, c.addWebhook))
	m.Handle("POST /maintenance", c.action(changeMaintenance, c.runMaintenance))
}

// viewFuncs are the template functions of the console's own pages.
func viewFuncs(zone *time.Location) template.FuncMap {
	return template.FuncMap{
		"date": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.In(zone).Format("2006-01-02")
		},
		"join":   strings.Join,
		"plural": plural,
		"deref": func(t *time.Time) time.Time {
			if t == nil {
				return time.Time{}
			}
			return *t
		},
		// pathEscape puts a name into a URL path as one segment.
		"pathEscape": url.PathEscape,
		"sub":        func(a, b int) int { return a - b },
		"seatSummary": func(ch store.Change) string {
			if ch.Message != "" {
				return ch.Message
			}
			return store.SeatSummary(ch.Seats)
		},
	}
}

// view renders a page of a signed-in admin: the session's form token and
// permissions go with it.
func (c *Console) view(w http.ResponseWriter, r *http.Request, name string, code int, p page) {
	p.CSRF = c.csrfToken(r)
	p.can = func(what string) bool { return c.canChange(r, what) }
	p.Zone = c.cfg.Dates.Now().Location().String()
	c.render(w, name, code, p)
}

// result is what an action did, shown after it with a link back.
type result struct {
	Done   string
	Change *store.Change
	Back   string
	Also   []link
}

type link struct{ Href, Text string }

func (c *Console) done(w http.ResponseWriter, r *http.Request, nav string, res result) {
	c.view(w, r, "result", http.StatusOK, page{Title: "Done", Nav: nav, Data: res})
}

// refuse answers a refused or failed action with the reason and changes
// nothing.
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	c.view(w, r, "result", code, page{Title: "Not done", Nav: "-", Error: msg, Data: result{Back: "/"}})
}

// fail answers an action the store refused: bad input and conflicts are
// the admin's to fix, anything else is the server's.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case store.IsNotFound(err):
		c.refuse(w, r, http.StatusNotFound, err.Error())
	case isInvalid(err):
		c.refuse(w, r, http.StatusBadRequest, err.Error())
	case isConflict(err):
		c.refuse(w, r, http.StatusConflict, err.Error())
	default:
		c.serverError(w, err)
	}
}

func isInvalid(err error) bool  { return errors.Is(err, store.ErrInvalid) }
func isConflict(err error) bool { return errors.Is(err, store.ErrConflict) }

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
