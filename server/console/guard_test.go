package console_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/console"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

// session is a signed-in console client.
type session struct {
	t    *testing.T
	srv  *httptest.Server
	cl   *http.Client
	db   *sqlstore.DB
	csrf string
}

// newSession serves a console over a fresh store with the computers
// named, signs in, and reads the form token from a page.
func newSession(t *testing.T, hosts ...string) *session {
	t.Helper()
	db, err := sqlstore.Open(filepath.Join(t.TempDir(), "c.db"), sqlstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	sec, err := db.CreateSecret(ctx, "t", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		key, _ := identity.NewKey()
		pub := key.Public().(ed25519.PublicKey)
		if _, err := db.Enroll(ctx, store.EnrollParams{NodeID: identity.NodeID(pub), PublicKey: pub, Request: protocol.EnrollRequest{
			Secret: sec.Value, Hostname: h, Hints: protocol.Hints{InstanceID: h, MachineID: "mid-" + h}}}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := console.New(console.Config{Store: db, Token: "secret-token", Info: adminapi.ServerInfo{Version: "test"},
		VerifyLicense: func([]byte) (store.LicenseImport, error) {
			return store.LicenseImport{}, errors.New("not a signed license file")
		}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.PostForm(srv.URL+"/login", url.Values{"token": {"secret-token"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s := &session{t: t, srv: srv, cl: cl, db: db}
	_, body := s.get("/settings")
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]{64})"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no form token on /settings:\n%s", body)
	}
	s.csrf = m[1]
	return s
}

func (s *session) get(path string) (int, string) {
	s.t.Helper()
	resp, err := s.cl.Get(s.srv.URL + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// post sends a form as a browser on the console's own page would, with
// the headers given changed.
func (s *session) post(path string, form url.Values, headers map[string]string) (int, string) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", s.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := s.cl.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (s *session) status(id int64) string {
	s.t.Helper()
	c, err := s.db.Computer(context.Background(), id)
	if err != nil {
		s.t.Fatal(err)
	}
	return c.Status
}

func (s *session) eventCount() int {
	s.t.Helper()
	ev, err := s.db.Events(context.Background(), store.EventFilter{})
	if err != nil {
		s.t.Fatal(err)
	}
	return len(ev)
}

// Must hold (issue 20): a cross-site form post is refused and changes
// nothing, as is a post without the session's form token; the same post
// from the console's own page goes through.
func TestConsoleRefusesCrossSiteFormPost(t *testing.T) {
	s := newSession(t, "web-01")
	retire := url.Values{"status": {"Retired"}}
	for name, tc := range map[string]struct {
		form    url.Values
		headers map[string]string
	}{
		"another site's Origin":          {url.Values{"status": {"Retired"}, "csrf": {s.csrf}}, map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": ""}},
		"cross-site fetch metadata":      {url.Values{"status": {"Retired"}, "csrf": {s.csrf}}, map[string]string{"Origin": "", "Sec-Fetch-Site": "cross-site"}},
		"same-site sibling":              {url.Values{"status": {"Retired"}, "csrf": {s.csrf}}, map[string]string{"Origin": "http://other.localhost", "Sec-Fetch-Site": "same-site"}},
		"no form token":                  {retire, nil},
		"a wrong form token":             {url.Values{"status": {"Retired"}, "csrf": {strings.Repeat("0", 64)}}, nil},
		"the token of another session":   {url.Values{"status": {"Retired"}, "csrf": {newSession(t).csrf}}, nil},
		"another site, no token, no Sec": {retire, map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": ""}},
	} {
		before := s.eventCount()
		code, body := s.post("/computers/1/status", tc.form, tc.headers)
		if code != http.StatusForbidden || !strings.Contains(body, "Nothing was changed") {
			t.Errorf("%s: %d, want 403 saying nothing changed\n%s", name, code, body)
		}
		if st := s.status(1); st != "Active" || s.eventCount() != before {
			t.Errorf("%s: the refused post changed the computer (%s) or the audit log", name, st)
		}
	}
	code, body := s.post("/computers/1/status", url.Values{"status": {"Retired"}, "csrf": {s.csrf}}, nil)
	if code != http.StatusOK || s.status(1) != "Retired" {
		t.Fatalf("the console's own post: %d, status %s\n%s", code, s.status(1), body)
	}
	ev, _ := s.db.Events(context.Background(), store.EventFilter{Kind: store.EventStatus})
	if len(ev) != 1 || ev[0].Actor != store.ActorAdmin {
		t.Fatalf("status events %+v, want one by %s", ev, store.ActorAdmin)
	}
}

// mutatingRoutes are every route of the console that changes something.
var mutatingRoutes = []string{
	"/computers/bulk", "/computers/1/status", "/computers/1/delete", "/computers/1/allocate", "/blocked/1/unblock",
	"/licenses/import", "/licenses/L-x/remove", "/licenses/L-x/deallocate/1",
	"/activations", "/activations/A-x/return/1", "/activations/A-x/deactivate",
	"/settings/secrets", "/settings/secrets/x/revoke", "/maintenance",
	"/settings/admins", "/settings/admins/admin/remove", "/settings/admins/admin/tokens", "/settings/tokens/x/revoke", "/settings/webhooks",
	"/users/alice/tokens", "/credentials/1/revoke", "/housekeeping", "/directories/corp/sync",
}

// Without a session every mutating route sends the browser to the login
// page, and without the form token it is refused; neither changes anything.
func TestConsoleMutatingRoutesNeedSessionAndToken(t *testing.T) {
	s := newSession(t, "web-01")
	anon := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	form := url.Values{"status": {"Retired"}, "id": {"1"}, "confirm": {"web-01"}, "license": {"L-x"}, "product": {"monitor"}, "quantity": {"1"}, "name": {"n"}}
	for _, path := range mutatingRoutes {
		before := s.eventCount()
		resp, err := anon.PostForm(s.srv.URL+path, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/login" {
			t.Errorf("%s without a session: %d to %q, want a redirect to /login", path, resp.StatusCode, resp.Header.Get("Location"))
		}
		if code, _ := s.post(path, form, nil); code != http.StatusForbidden {
			t.Errorf("%s without the form token: %d, want 403", path, code)
		}
		if s.eventCount() != before || s.status(1) != "Active" {
			t.Errorf("%s: a refused post changed something", path)
		}
	}
	secrets, _ := s.db.ListSecrets(context.Background())
	if len(secrets) != 1 {
		t.Errorf("%d secrets after refused posts, want 1", len(secrets))
	}
}

// Every page carries the security headers: a CSP without inline scripts,
// no framing, no referrer, no sniffing.
func TestConsoleSecurityHeaders(t *testing.T) {
	s := newSession(t, "web-01")
	for _, path := range []string{"/login", "/", "/computers", "/computers/1", "/licenses", "/activations", "/leases", "/reports", "/events", "/settings", "/users", "/static/console.js", "/nope"} {
		resp, err := s.cl.Get(s.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", path, h)
		}
	}
}

// Bad input at each form and filter gets a clear answer and changes
// nothing.
func TestConsoleRefusesBadInput(t *testing.T) {
	s := newSession(t, "web-01", "web-02")
	tok := func(v url.Values) url.Values { v.Set("csrf", s.csrf); return v }
	for _, tc := range []struct {
		path string
		form url.Values
		code int
		want string
	}{
		{"/computers/1/delete", tok(url.Values{"confirm": {"web-02"}}), 400, "type the hostname"},
		{"/computers/1/delete", tok(url.Values{}), 400, "type the hostname"},
		{"/computers/1/status", tok(url.Values{"status": {"Gone Fishing"}}), 400, "Gone Fishing"},
		{"/computers/1/status", tok(url.Values{}), 400, "choose a status"},
		{"/computers/999/status", tok(url.Values{"status": {"Retired"}}), 404, "999"},
		{"/computers/x/status", tok(url.Values{"status": {"Retired"}}), 404, ""},
		{"/computers/bulk", tok(url.Values{"status": {"Retired"}, "id": {"1", "x"}}), 400, "&#34;x&#34; is not a computer ID"},
		{"/computers/bulk", tok(url.Values{"status": {"Retired"}}), 400, "tick at least one"},
		{"/activations", tok(url.Values{"product": {"monitor"}, "quantity": {"-3"}}), 400, "give a number of seats"},
		{"/activations", tok(url.Values{"product": {"monitor"}, "quantity": {"1"}, "expires": {"someday"}}), 400, "someday"},
		{"/settings/secrets", tok(url.Values{"name": {"  "}}), 400, "give the secret a name"},
		{"/licenses/import", tok(url.Values{}), 400, "choose at least one license file"},
		{"/computers/1/status", tok(url.Values{"status": {"Retired"}, "pad": {strings.Repeat("x", 70<<10)}}), 413, "too large"},
	} {
		before := s.eventCount()
		code, body := s.post(tc.path, tc.form, nil)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("POST %s %v: %d, want %d with %q\n%.600s", tc.path, tc.form.Get("status")+tc.form.Get("quantity"), code, tc.code, tc.want, body)
		}
		if s.eventCount() != before || s.status(1) != "Active" {
			t.Errorf("POST %s: bad input changed something", tc.path)
		}
	}
	// A file that is not a signed license: nothing imported.
	var buf strings.Builder
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("csrf", s.csrf)
	fw, _ := mw.CreateFormFile("files", "junk.lic")
	_, _ = fw.Write([]byte("<script>alert(1)</script>"))
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/licenses/import", strings.NewReader(buf.String()))
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", s.srv.URL)
	resp, err := s.cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if body := string(b); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "nothing was imported: junk.lic: not a signed license file") {
		t.Errorf("junk upload: %d\n%s", resp.StatusCode, body)
	}
	if ls, _ := s.db.Licenses(context.Background()); len(ls) != 0 {
		t.Errorf("%d licenses after a junk upload", len(ls))
	}
	for path, want := range map[string]string{
		"/computers?seen=abc":        "give a number of days",
		"/computers?sort=hostname":   "sort by id or -id",
		"/computers?status=Nope":     "status &#34;Nope&#34; does not exist",
		"/computers?evil=1":          "unknown parameter",
		"/events?since=yesterdayish": "give a duration back from now",
		"/events?computer=abc":       "not a computer ID",
		"/events?kind=nope":          "not an event kind",
		"/events?before=12":          "not a page of events",
		"/reports?days=0":            "give a number of days",
		"/?stale=-1":                 "give a number of days",
	} {
		if code, body := s.get(path); code != 400 || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, want 400 with %q", path, code, want)
		}
	}
}
