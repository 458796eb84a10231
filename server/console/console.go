// Package console is the server's web console: server-rendered pages over
// the same store the admin API reads, signed in by named admins (session.go).
// Templates are embedded and parsed at start,
// so a missing or broken view stops the server from starting rather than
// failing on a click.
package console

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/tallyhq/tally/common/bytesize"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/admins"
	"github.com/tallyhq/tally/server/dates"
	"github.com/tallyhq/tally/server/store"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = []string{"login", "computers", "computer", "events", "usage"}

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
}

// Console serves the pages.
type Console struct {
	cfg  Config
	tmpl map[string]*template.Template
	mux  *http.ServeMux
	log  *slog.Logger

	auth *sessionAuth // sign-in and sessions (session.go)
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
	c := &Console{cfg: cfg, tmpl: map[string]*template.Template{}, log: cfg.Logger}
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
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/computers", http.StatusFound) })
	m.Handle("GET /computers", c.signedIn(c.computers))
	m.Handle("GET /computers/{id}", c.signedIn(c.computer))
	m.Handle("GET /events", c.signedIn(c.events))
	m.Handle("GET /usage", c.signedIn(c.usage))
	c.mux = m
	return c, nil
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	c.mux.ServeHTTP(w, r)
}

type page struct {
	Title, Nav, Version, Error, EnrollCommand string
	Zone                                      string // the server's time zone, named beside dates
	Computers                                 []store.Computer
	NextPage                                  string // the computers page after this one
	Computer                                  *store.Computer
	Events                                    []store.Event
	Usage                                     []store.Usage
	Licenses                                  []store.License
	Activations                               []store.Activation
}

func (c *Console) render(w http.ResponseWriter, name string, code int, p page) {
	p.Version = c.cfg.Info.Version
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if err := c.tmpl[name].ExecuteTemplate(w, "layout", p); err != nil {
		c.log.Error("render console page", "page", name, "err", err)
	}
}

func (c *Console) computers(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Computers", Nav: "computers"}
	f, err := adminapi.ComputerFilter(r.URL.Query(), c.cfg.Dates.Now())
	if err != nil {
		p.Error = err.Error()
		c.render(w, "computers", http.StatusBadRequest, p)
		return
	}
	cp, err := c.cfg.Store.ListComputers(r.Context(), f)
	if errors.Is(err, store.ErrInvalid) {
		p.Error = err.Error()
		c.render(w, "computers", http.StatusBadRequest, p)
		return
	}
	if err != nil {
		c.serverError(w, err)
		return
	}
	p.Computers = cp.Computers
	if cp.Next != 0 {
		q := r.URL.Query()
		q.Set("after", strconv.FormatInt(cp.Next, 10))
		p.NextPage = "/computers?" + q.Encode()
	}
	if len(cp.Computers) == 0 && len(r.URL.Query()) == 0 {
		p.EnrollCommand = fmt.Sprintf("tally-agent enroll --server %s --fingerprint %s --secret SECRET", c.cfg.Info.Advertise, c.cfg.Info.Fingerprint)
	}
	c.render(w, "computers", http.StatusOK, p)
}

func (c *Console) computer(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	comp, err := c.cfg.Store.Computer(r.Context(), id)
	if err != nil {
		if store.IsNotFound(err) {
			http.NotFound(w, r)
			return
		}
		c.serverError(w, err)
		return
	}
	c.render(w, "computer", http.StatusOK, page{Title: comp.Hostname, Nav: "computers", Computer: &comp})
}

func (c *Console) usage(w http.ResponseWriter, r *http.Request) {
	us, err := c.cfg.Store.Usage(r.Context(), "")
	if err != nil {
		c.serverError(w, err)
		return
	}
	p := page{Title: "Licenses", Nav: "usage"}
	for _, u := range us {
		if u.Granted > 0 || u.Consumed > 0 || u.Waiting > 0 || len(u.Discards) > 0 {
			p.Usage = append(p.Usage, u)
		}
	}
	if p.Licenses, err = c.cfg.Store.Licenses(r.Context()); err != nil {
		c.serverError(w, err)
		return
	}
	if p.Activations, err = c.cfg.Store.ActivationList(r.Context()); err != nil {
		c.serverError(w, err)
		return
	}
	now := c.cfg.Dates.Now()
	for i := range p.Usage {
		c.cfg.Dates.Usage(&p.Usage[i], now)
	}
	for i := range p.Licenses {
		c.cfg.Dates.License(&p.Licenses[i], now)
	}
	for i := range p.Activations {
		c.cfg.Dates.Activation(&p.Activations[i], now)
	}
	p.Zone = now.Location().String()
	c.render(w, "usage", http.StatusOK, p)
}

func (c *Console) events(w http.ResponseWriter, r *http.Request) {
	ev, err := c.cfg.Store.Events(r.Context(), store.EventFilter{Limit: 500})
	if err != nil {
		c.serverError(w, err)
		return
	}
	for i, j := 0, len(ev)-1; i < j; i, j = i+1, j-1 {
		ev[i], ev[j] = ev[j], ev[i]
	}
	c.render(w, "events", http.StatusOK, page{Title: "Events", Nav: "events", Events: ev})
}

func (c *Console) serverError(w http.ResponseWriter, err error) {
	c.log.Error("console page failed", "err", err)
	http.Error(w, "internal error: see the server's log", http.StatusInternalServerError)
}
