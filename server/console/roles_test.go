package console_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tallyhq/tally/server/admins"
)

// as signs in to the same console as another admin, made with the role,
// by name and password, and reads their form token.
func (s *session) as(name, role string) *session {
	s.t.Helper()
	const password = "a long enough password"
	hash, err := admins.HashPasswordParams(password, cheap)
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.db.AddAdmin(context.Background(), name, role, hash, "test"); err != nil {
		s.t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.PostForm(s.srv.URL+"/login", url.Values{"name": {name}, "password": {password}})
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		s.t.Fatalf("sign in as %s: %d", name, resp.StatusCode)
	}
	o := &session{t: s.t, srv: s.srv, cl: cl, db: s.db}
	_, body := o.get("/computers")
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]{64})"`).FindStringSubmatch(body)
	if m == nil {
		s.t.Fatalf("no form token for %s", name)
	}
	o.csrf = m[1]
	return o
}

// adminOnly are the console's changes that need the admin role; the rest
// of mutatingRoutes need an operator.
func adminOnly(path string) bool {
	return strings.HasPrefix(path, "/licenses/") || strings.HasPrefix(path, "/settings/") || strings.HasSuffix(path, "/allocate")
}

// Must hold (issue 20): a viewer's post, with their own valid form token,
// is refused on every route that changes something, and changes nothing;
// an operator is refused the admin's changes; every page a viewer sees
// has no control that changes something.
func TestConsoleRolesDecideWhatAnAdminMayChange(t *testing.T) {
	s := newSession(t, "web-01")
	viewer := s.as("vera", "viewer")
	operator := s.as("otto", "operator")
	form := url.Values{"status": {"Retired"}, "id": {"1"}, "confirm": {"web-01"}, "license": {"L-x"}, "product": {"monitor"}, "quantity": {"1"}, "name": {"n"}}
	for _, path := range mutatingRoutes {
		for _, c := range []struct {
			who     string
			s       *session
			refused bool
		}{{"viewer", viewer, true}, {"operator", operator, adminOnly(path)}} {
			if !c.refused {
				continue
			}
			before := s.eventCount()
			f := url.Values{"csrf": {c.s.csrf}}
			for k, v := range form {
				f[k] = v
			}
			if code, body := c.s.post(path, f, nil); code != http.StatusForbidden || !strings.Contains(body, "your role may not change") {
				t.Errorf("%s posting %s: %d, want 403 naming the role", c.who, path, code)
			}
			if s.eventCount() != before || s.status(1) != "Active" {
				t.Errorf("%s posting %s: a refused post changed something", c.who, path)
			}
		}
	}
	// The operator's own changes go through: retire the computer.
	f := url.Values{"csrf": {operator.csrf}, "status": {"Retired"}}
	if code, _ := operator.post("/computers/1/status", f, nil); code >= 400 {
		t.Fatalf("operator retiring: %d", code)
	}
	if got := s.status(1); got != "Retired" {
		t.Fatalf("status after the operator retired it: %s", got)
	}
	mutating := regexp.MustCompile(`<form[^>]*method="post"[^>]*action="(/[^"]*)"`)
	for _, page := range []string{"/", "/computers", "/computers/1", "/licenses", "/activations", "/leases", "/reports", "/software", "/events", "/settings", "/users"} {
		code, body := viewer.get(page)
		if code != http.StatusOK {
			t.Errorf("viewer %s: %d", page, code)
		}
		for _, m := range mutating.FindAllStringSubmatch(body, -1) {
			if m[1] != "/logout" {
				t.Errorf("viewer sees a form posting to %s on %s", m[1], page)
			}
		}
	}
}
