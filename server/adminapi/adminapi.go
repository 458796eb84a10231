// Package adminapi is the server's administration API: JSON over HTTP,
// every route behind a named admin's bearer token and the least role it
// needs (auth.go), described by the OpenAPI document it serves
// (openapi.go). The same package holds the Client the admin commands use,
// so both sides share one definition of every route and payload.
package adminapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally/server/admins"
	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/dates"
	"github.com/tallyhq/tally/server/directory"
	"github.com/tallyhq/tally/server/store"
)

// EnrollInfo is what an admin needs to enroll agents.
type EnrollInfo struct {
	Server      string `json:"server"`
	Fingerprint string `json:"fingerprint"`
	Secret      string `json:"secret"`
	SecretID    string `json:"secret_id"`
	Command     string `json:"command"`
	// InstallCommand installs the agent as a service and enrolls it.
	InstallCommand string `json:"install_command"`
	// AgentConfig is an /etc/tally/agent.conf for configuration
	// management to drop: with it, 'tally-agent install --secret S' is
	// the whole line.
	AgentConfig string `json:"agent_config"`
}

// ServerInfo is the static part of EnrollInfo, known to the daemon.
type ServerInfo struct {
	Advertise   string
	Fingerprint string
	Version     string
}

// ErrorBody is the JSON body of every error response: a sentence for
// people and a stable code for programs (see ErrorCode).
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// Config configures the API.
type Config struct {
	Store store.Store
	// Admins keeps named admins and their tokens; nil takes Store's when
	// it implements store.Admins.
	Admins store.Admins
	// Token is the data folder's admin token: the first admin's.
	Token  string
	Info   ServerInfo
	Logger *slog.Logger
	// Extra routes mounted under the same mux, each behind the token unless
	// its pattern is listed in Public (the console, /metrics).
	Extra  map[string]http.Handler
	Public map[string]http.Handler
	// Catalog is the product catalog the server decides with.
	Catalog *catalog.Catalog
	// VerifyLicense checks a license file against the trusted issuers and
	// the catalog, and returns what to store.
	VerifyLicense func(data []byte) (store.LicenseImport, error)
	// Maintenance runs the maintenance job with the server's policy.
	Maintenance func(ctx context.Context) (store.MaintenanceReport, error)
	// Dates is the server's time zone, expiry warning window and clock.
	Dates Dates
	// SecretRevoked is called after a secret is revoked, so the data
	// folder's enroll-secret file never holds a revoked secret.
	SecretRevoked func(ctx context.Context, s store.Secret) error
	// DirectorySource reaches a directory for a sync; nil dials it over
	// LDAP with its settings and the system's CAs.
	DirectorySource func(store.Directory) directory.Source
}

type api struct {
	cfg    Config
	log    *slog.Logger
	admins store.Admins
	routes []Route
	guess  *admins.Limiter // wrong tokens per client address
}

// API is the admin API's handler, with the table of its routes.
type API struct {
	http.Handler
	a *api
}

// Routes returns every route the API registered, with the least role each
// needs: the table the role middleware enforces and the OpenAPI document
// describes.
func (h *API) Routes() []Route { return slices.Clone(h.a.routes) }

// New returns the API's handler. When cfg.Token is set and no admin exists
// yet, it becomes the token of the first admin (see store.Admins).
func New(cfg Config) *API {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &api{cfg: cfg, log: cfg.Logger, admins: cfg.Admins, guess: admins.NewLimiter(maxTokenGuesses, admins.DefaultLoginWindow)}
	if a.admins == nil {
		a.admins, _ = cfg.Store.(store.Admins)
	}
	if a.admins != nil && cfg.Token != "" {
		if _, err := a.admins.EnsureFirstAdmin(context.Background(), admins.HashSecret(cfg.Token)); err != nil {
			a.log.Error("cannot make the first admin from the data folder's token", "err", err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": cfg.Info.Version})
	})
	mux.HandleFunc("GET /api/openapi.json", a.openAPI)
	reg := func(pattern string, role admins.Role, h http.HandlerFunc) {
		method, path, _ := strings.Cut(pattern, " ")
		a.routes = append(a.routes, Route{Method: method, Path: path, Role: role})
		mux.Handle(pattern, a.auth(role, h))
	}
	reg("GET /api/v1/whoami", admins.Viewer, a.whoami)
	reg("GET /api/v1/computers", admins.Viewer, a.computersList)
	reg("GET /api/v1/computers/{id}", admins.Viewer, a.computersShow)
	reg("GET /api/v1/blocked", admins.Viewer, a.blockedList)
	reg("POST /api/v1/blocked/{id}/unblock", admins.Operator, a.unblock)
	reg("GET /api/v1/enroll-info", admins.Operator, a.enrollInfo)
	reg("GET /api/v1/secrets", admins.Admin, a.secretsList)
	reg("POST /api/v1/secrets", admins.Admin, a.secretsCreate)
	reg("POST /api/v1/secrets/{id}/revoke", admins.Admin, a.secretsRevoke)
	reg("GET /api/v1/events", admins.Viewer, a.events)
	a.licensingRoutes(reg)
	a.activationRoutes(reg)
	a.adminRoutes(reg)
	a.positionRoutes(reg)
	a.userRoutes(reg)
	mux.Handle("/api/", a.auth(admins.Viewer, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such API route: %s %s", r.Method, r.URL.Path))
	}))
	for p, h := range cfg.Extra {
		reg(p, admins.Viewer, h.ServeHTTP)
	}
	for p, h := range cfg.Public {
		mux.Handle(p, h)
	}
	return &API{Handler: limitBody(mux), a: a}
}

// Route is one route of the API and the least role that may call it.
type Route struct {
	Method string
	Path   string
	Role   admins.Role
}

// Pattern is the route as the mux knows it ("GET /api/v1/computers").
func (r Route) Pattern() string { return r.Method + " " + r.Path }

// Mutating reports whether the route changes something.
func (r Route) Mutating() bool { return r.Method != http.MethodGet && r.Method != http.MethodHead }

// limitBody bounds every request body: the API takes small JSON documents.
func limitBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		h.ServeHTTP(w, r)
	})
}

// CheckToken compares a presented token with the expected one in constant time.
func CheckToken(presented, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(presented), []byte(want)) == 1
}

// ZoneHeader names the server's time zone (serve --timezone) on every
// authenticated answer, so that a CLI on another host shows times in the
// zone the server reads dates in. A zone with no name ("Local") is not
// sent: the client then shows its own.
const ZoneHeader = "Tally-Time-Zone"

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorBody{Error: msg, Code: ErrorCode(code)})
}

// badBody answers a request whose body could not be read: 413 when it
// is over MaxBody, else 400 with what is wrong.
func badBody(w http.ResponseWriter, err error) {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes: the API takes small JSON documents (import large license sets in several requests)", mb.Limit))
		return
	}
	writeError(w, http.StatusBadRequest, err.Error())
}

// ErrorCode is the code of an error body for an HTTP status: one code per
// status, so a program may switch on either.
func ErrorCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnprocessableEntity:
		return "rejected"
	case http.StatusTooManyRequests:
		return "rate_limited"
	case http.StatusServiceUnavailable:
		return "unavailable"
	case http.StatusInsufficientStorage:
		return "disk_full"
	}
	if status >= 500 {
		return "internal"
	}
	return "error"
}

// fail maps a store error to an HTTP status and a sentence.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, sentence(err, store.ErrNotFound))
	case errors.Is(err, store.ErrInvalid):
		writeError(w, http.StatusBadRequest, sentence(err, store.ErrInvalid))
	case errors.Is(err, store.ErrConflict):
		writeError(w, http.StatusConflict, sentence(err, store.ErrConflict))
	case errors.Is(err, store.ErrDiskFull):
		// Not the server's fault nor the admin's request's: 507 with what
		// to do, instead of an internal error.
		a.log.Error("admin API request failed: disk full", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInsufficientStorage, sentence(err, store.ErrDiskFull))
	case errors.Is(err, store.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, "the server is shutting down")
	default:
		a.log.Error("admin API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error: see the server's log")
	}
}

// sentence is the message an admin reads for err: the store puts the
// sentinel that picks the HTTP status in front ("%w: sentence"), and its
// one word ("invalid", "conflict") adds nothing to the sentence, so it is
// left out; the status carries it. A trailing ": not found" stays: there
// it is the end of the sentence ("computer 7: not found").
func sentence(err, sentinel error) string {
	return strings.TrimPrefix(err.Error(), sentinel.Error()+": ")
}

func pathID(r *http.Request) (int64, error) {
	s := r.PathValue("id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: %q is not a computer ID (a positive number, as 'computers list' shows)", store.ErrInvalid, s)
	}
	return id, nil
}

// computerParams are the query parameters of GET /api/v1/computers.
var computerParams = []string{"hostname", "status", "product", "plugin", "not_seen_since", "flag", "after", "limit"}

// ComputerFilter reads the query parameters of GET /api/v1/computers; a
// bad value is an ErrInvalid sentence naming the parameter.
func ComputerFilter(q url.Values, now time.Time) (store.ComputerFilter, error) {
	var f store.ComputerFilter
	for k := range q {
		if !slices.Contains(computerParams, k) {
			return f, fmt.Errorf("%w: unknown parameter %q: a computer list takes %s", store.ErrInvalid, k, strings.Join(computerParams, ", "))
		}
	}
	f.Hostname, f.Status, f.Product, f.Plugin, f.Flag = q.Get("hostname"), q.Get("status"), q.Get("product"), q.Get("plugin"), q.Get("flag")
	if s := q.Get("not_seen_since"); s != "" {
		t, err := ParseSince(s, now)
		if err != nil {
			return f, fmt.Errorf("%w: not seen since %q: use a duration (720h, 30d) or a date (2026-11-25)", store.ErrInvalid, s)
		}
		f.NotSeenSince = t
	}
	if s := q.Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return f, fmt.Errorf("%w: after %q: pass the computer ID the previous page ended with", store.ErrInvalid, s)
		}
		f.After = n
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > store.MaxComputerLimit {
			return f, fmt.Errorf("%w: limit %q: ask for 1 to %d computers a page", store.ErrInvalid, s, store.MaxComputerLimit)
		}
		f.Limit = n
	}
	return f, nil
}

func (a *api) computersList(w http.ResponseWriter, r *http.Request) {
	f, err := ComputerFilter(r.URL.Query(), a.cfg.Dates.Now())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	page, err := a.cfg.Store.ListComputers(r.Context(), f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// computersShow answers a computer named by its ID, hostname or an
// identity hint: the one resolver every computer command goes through.
func (a *api) computersShow(w http.ResponseWriter, r *http.Request) {
	id, err := a.computerRef(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	c, err := a.cfg.Store.Computer(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// computerRef resolves the {id} of a route: a number is a computer ID;
// anything else a hostname or machine ID that must name one live computer.
func (a *api) computerRef(r *http.Request) (int64, error) {
	ref := r.PathValue("id")
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		if id <= 0 {
			return 0, fmt.Errorf("%w: %q is not a computer ID (a positive number, as 'computers list' shows)", store.ErrInvalid, ref)
		}
		return id, nil
	}
	cs, err := a.cfg.Store.FindComputers(r.Context(), ref)
	if err != nil {
		return 0, err
	}
	switch len(cs) {
	case 0:
		return 0, fmt.Errorf("no computer has the hostname or machine ID %q (see 'tally-server computers list --hostname %s'): %w", ref, ref, store.ErrNotFound)
	case 1:
		return cs[0].ID, nil
	}
	var cand []string
	for _, c := range cs {
		cand = append(cand, fmt.Sprintf("%d (%s, %s, last seen %s)", c.ID, c.Hostname, c.Status, dates.Instant(c.LastSeen, a.cfg.Dates.zone())))
	}
	return 0, fmt.Errorf("%w: %q names %d computers: %s; use the ID", store.ErrConflict, ref, len(cs), strings.Join(cand, "; "))
}

func (a *api) blockedList(w http.ResponseWriter, r *http.Request) {
	bs, err := a.cfg.Store.BlockedMachines(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, bs)
}

func (a *api) unblock(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	b, err := a.cfg.Store.Unblock(r.Context(), id, actor(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (a *api) enrollInfo(w http.ResponseWriter, r *http.Request) {
	secrets, err := a.cfg.Store.ListSecrets(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	info := EnrollInfo{Server: a.cfg.Info.Advertise, Fingerprint: a.cfg.Info.Fingerprint}
	s, err := PickSecret(secrets, r.URL.Query().Get("secret"), a.cfg.Dates.Now())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	info.Secret, info.SecretID = s.Value, s.ID
	info.Command = fmt.Sprintf("tally-agent enroll --server %s --fingerprint %s --secret %s", info.Server, info.Fingerprint, info.Secret)
	info.InstallCommand = fmt.Sprintf("tally-agent install --server %s --fingerprint %s --secret %s", info.Server, info.Fingerprint, info.Secret)
	info.AgentConfig = fmt.Sprintf("server = %s\nfingerprint = %s\nplugins = inventory\n", info.Server, info.Fingerprint)
	writeJSON(w, http.StatusOK, info)
}

// PickSecret chooses the enrollment secret to hand out: the one named (by
// ID or name), which must be able to enroll, or else the newest active one.
func PickSecret(secrets []store.Secret, want string, now time.Time) (store.Secret, error) {
	if want == "" {
		// The newest active secret: the one an admin most likely means.
		for i := len(secrets) - 1; i >= 0; i-- {
			if secrets[i].Active(now) {
				return secrets[i], nil
			}
		}
		return store.Secret{}, fmt.Errorf("%w: no active enrollment secret: create one with 'tally-server secrets create --name NAME'", store.ErrConflict)
	}
	var named []store.Secret
	for _, s := range secrets {
		if s.ID == want || s.Name == want {
			named = append(named, s)
		}
	}
	if len(named) == 0 {
		return store.Secret{}, fmt.Errorf("%w: no enrollment secret has the ID or name %q: see 'tally-server secrets list'", store.ErrNotFound, want)
	}
	for i := len(named) - 1; i >= 0; i-- {
		if named[i].Active(now) {
			return named[i], nil
		}
	}
	s := named[len(named)-1]
	why := "has expired"
	if s.RevokedAt != nil {
		why = "was revoked"
	}
	return store.Secret{}, fmt.Errorf("%w: enrollment secret %s (%s) %s and enrolls no machine: pick an active one from 'tally-server secrets list', or create one with 'tally-server secrets create --name NAME'",
		store.ErrConflict, s.ID, s.Name, why)
}

func (a *api) secretsList(w http.ResponseWriter, r *http.Request) {
	s, err := a.cfg.Store.ListSecrets(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	if err := checkParams(q, "after", "limit"); err != nil {
		a.fail(w, r, err)
		return
	}
	page, next, err := pageOf(s, func(x store.Secret) string { return x.ID }, q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, SecretPage{Secrets: page, Next: next})
}

// CreateSecretRequest is the body of POST /api/v1/secrets.
type CreateSecretRequest struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
	// Expires is a day (2027-01-31: the end of that day in the server's
	// time zone), an RFC 3339 time, or a duration from now (72h, 30d).
	Expires string `json:"expires,omitempty"`
}

func (a *api) secretsCreate(w http.ResponseWriter, r *http.Request) {
	var req CreateSecretRequest
	if err := decodeJSON(r, &req); err != nil {
		badBody(w, err)
		return
	}
	var expires *time.Time
	if req.Expires != "" {
		t, err := a.cfg.Dates.ParseExpiry(req.Expires)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		expires = &t
	}
	s, err := a.cfg.Store.CreateSecret(r.Context(), req.Name, req.Value, expires)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, s)
}

func (a *api) secretsRevoke(w http.ResponseWriter, r *http.Request) {
	s, err := a.cfg.Store.RevokeSecret(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if a.cfg.SecretRevoked != nil {
		if err := a.cfg.SecretRevoked(r.Context(), s); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, s)
}

func (a *api) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkParams(q, "since", "computer", "product", "kind", "before", "limit"); err != nil {
		a.fail(w, r, err)
		return
	}
	var f store.EventFilter
	if s := q.Get("since"); s != "" {
		t, err := ParseSince(s, a.cfg.Dates.Now())
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		f.Since = t
	}
	if s := q.Get("computer"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("computer %q is not a computer ID", s))
			return
		}
		f.ComputerID = id
	}
	var before int64
	if s := q.Get("before"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("before %q: pass the next_before of the previous page", s))
			return
		}
		before = n
	}
	f.Product, f.Kind = q.Get("product"), q.Get("kind")
	limit, err := pageLimit(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	f.Limit = limit
	var ev []store.Event
	pages, paged := a.cfg.Store.(store.AuditPages)
	if paged {
		ev, err = pages.EventPage(r.Context(), f, before)
	} else if before == 0 {
		// A backend without pages: the newest page only.
		ev, err = a.cfg.Store.Events(r.Context(), f)
	} else {
		writeError(w, http.StatusServiceUnavailable, "this server's store cannot page the audit log: narrow the events asked for (since, kind, computer)")
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := EventPage{Events: ev}
	if paged && len(ev) == limit {
		out.NextBefore = ev[0].ID
	}
	writeJSON(w, http.StatusOK, out)
}

// MaxSinceDays bounds a "since" given in days: 100 years back is the
// whole audit log, and a larger count would overflow a date.
const MaxSinceDays = 36500

// ParseSince reads an absolute time (RFC 3339), a day (YYYY-MM-DD: from the
// start of that day in now's location, the server's time zone) or a
// duration before now ("90m", "24h", "7d": days are calendar days there).
func ParseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return dates.StartOfDay(t.Year(), t.Month(), t.Day(), now.Location()), nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n >= 0 && n <= MaxSinceDays {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("since %q: use a time (2026-11-25T10:00:00Z), a day (2026-11-25, from its start in the server's time zone) or a duration up to %d days (90m, 24h, 7d)", s, MaxSinceDays)
}

// MaxBody bounds a request body: the API takes small JSON documents.
const MaxBody = 1 << 20

func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body is not valid JSON for this route: %w", err)
	}
	if dec.More() {
		return errors.New("request body has more than one JSON document")
	}
	return nil
}
