// Package console is the server's web console: server-rendered pages over
// the same store the admin API reads, signed in by named admins (session.go).
// Templates are embedded and parsed at start,
// so a missing or broken view stops the server from starting rather than
// failing on a click.
package console

import (
	"context"
	"crypto/rand"
	"embed"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/tallyhq/tally/common/bytesize"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/admins"
	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/dates"
	"github.com/tallyhq/tally/server/directory"
	"github.com/tallyhq/tally/server/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

const cookieName = "tally_session"

// Config configures the console.
type Config struct {
	Store  store.Store
	Token  string
	Info   adminapi.ServerInfo
	Logger *slog.Logger
	// Dates is the server's time zone and expiry warning window.
	Dates adminapi.Dates

	// Admins keeps admins and sessions; nil takes Store's. Token, the
	// data folder's admin token, is the first admin's.
	Admins store.Admins
	// Sessions say when a console session expires.
	Sessions admins.SessionRules
	// Catalog is the product catalog the server decides with.
	Catalog *catalog.Catalog
	// VerifyLicense checks an uploaded license file; nil refuses imports.
	VerifyLicense func(data []byte) (store.LicenseImport, error)
	// Maintenance runs the maintenance job with the server's policy; nil
	// hides the button.
	Maintenance func(ctx context.Context) (store.MaintenanceReport, error)
	// DirectorySource reaches a directory for a sync started on the users
	// page; nil dials it over LDAP with its settings.
	DirectorySource func(store.Directory) directory.Source
	// SecretRevoked is called after a secret is revoked (the daemon keeps
	// its enroll-secret file free of revoked secrets).
	SecretRevoked func(ctx context.Context, s store.Secret) error
}

// Console serves the pages.
type Console struct {
	cfg  Config
	tmpl map[string]*template.Template
	mux  *http.ServeMux
	log  *slog.Logger
	auth *sessionAuth // sign-in and sessions (session.go)
	// csrfKey signs each session's form token; it is new at each start.
	csrfKey []byte
	cross   *http.CrossOriginProtection
	// chartPast holds the dashboard's hourly seat counts before chartUntil.
	chartMu    sync.Mutex
	chartPast  []store.HourCount
	chartUntil time.Time
}

// New parses every view and returns the console.
func New(cfg Config) (*Console, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// Times are shown in the server's time zone (serve --timezone), the
	// zone its dates are read in, not the zone of the host it runs on.
	zone := cfg.Dates.Zone
	if zone == nil {
		zone = time.UTC
	}
	funcs := template.FuncMap{
		"fmtTime": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.In(zone).Format("2006-01-02 15:04:05")
		},
		"unix": func(s int64) string {
			if s == 0 {
				return "—"
			}
			return time.Unix(s, 0).In(zone).Format("2006-01-02 15:04:05")
		},
		"bytes": bytesize.Format,
		// endDate shows an end date in the zone the page carries it in
		// (the server's), without the time when it is the end of the day.
		"endDate": func(t *time.Time) string {
			if t == nil {
				return "—"
			}
			return dates.Text(*t, t.Location())
		},
	}
	for k, f := range viewFuncs(zone) {
		funcs[k] = f
	}
	c := &Console{cfg: cfg, tmpl: map[string]*template.Template{}, log: cfg.Logger, csrfKey: make([]byte, 32), cross: http.NewCrossOriginProtection()}
	if _, err := rand.Read(c.csrfKey); err != nil {
		return nil, fmt.Errorf("console form key: %w", err)
	}
	for _, p := range pages {
		t, err := template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("console view %s: %w", p, err)
		}
		c.tmpl[p] = t
	}
	var err error
	if c.auth, err = newSessionAuth(cfg); err != nil {
		return nil, err
	}

	m := http.NewServeMux()
	m.HandleFunc("GET /login", c.loginForm)
	m.HandleFunc("POST /login", c.login)
	m.HandleFunc("POST /logout", c.logout)
	c.routes(m)
	c.mux = m
	return c, nil
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	c.mux.ServeHTTP(w, r)
}

type page struct {
	Title, Nav, Version, Error string
	Zone                       string // the server's time zone, named beside dates
	// CSRF is the session's form token, a hidden field of every form that
	// changes something.
	CSRF string
	Data any // the page's own data
	can  func(what string) bool
}

// Can tells a view whether to show the controls that change what.
func (p page) Can(what string) bool { return p.can != nil && p.can(what) }

func (c *Console) render(w http.ResponseWriter, name string, code int, p page) {
	p.Version = c.cfg.Info.Version
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if err := c.tmpl[name].ExecuteTemplate(w, "layout", p); err != nil {
		c.log.Error("render console page", "page", name, "err", err)
	}
}

func (c *Console) serverError(w http.ResponseWriter, err error) {
	c.log.Error("console page failed", "err", err)
	http.Error(w, "internal error: see the server's log", http.StatusInternalServerError)
}
