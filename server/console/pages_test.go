package console_test

import (
	"net/url"
	"strings"
	"testing"
)

// Every page renders for a signed-in admin, escapes what agents send, and
// the computers page searches by hostname and identity hint, filters,
// sorts and pages.
func TestConsoleEveryPageRenders(t *testing.T) {
	s := newSession(t, "web-<01>", "=cmd|calc", "db-01", "db-02")
	for path, want := range map[string]string{
		"/":                   "Node seats held, last 90 days",
		"/computers":          "web-&lt;01&gt;",
		"/computers/1":        "Delete or block this computer",
		"/computers/1?sw=lib": "No software matches",
		"/licenses":           "Products and licenses",
		"/activations":        "Import a node-locked license",
		"/leases":             "No concurrent seat is checked out",
		"/reports":            "Download CSV",
		"/software":           "No software license yet.",
		"/events":             "computer.enrolled",
		"/events?kind=computer.enrolled&computer=2&actor=" + url.QueryEscape("nobody"): "No event matches",
		"/settings":           "Enrollment secrets",
		"/static/console.css": "prefers-color-scheme: dark",
	} {
		code, body := s.get(path)
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("%s: %d, want %q in\n%.400s", path, code, want, body)
		}
		if strings.Contains(body, "web-<01>") {
			t.Errorf("%s: a hostname is not escaped", path)
		}
	}
	if _, body := s.get("/reports/computers.csv"); !strings.Contains(body, "'=cmd|calc") || !strings.Contains(body, "web-<01>") {
		t.Errorf("computers CSV: want the formula-like hostname quoted:\n%s", body)
	}
	if code, _ := s.get("/reports/nope.csv"); code != 404 {
		t.Errorf("unknown report: %d", code)
	}
	for q, want := range map[string][]string{
		"q=db-":                 {"db-01", "db-02"},
		"q=mid-db-02":           {"db-02"},
		"q=DB-01":               {"db-01"},
		"q=db&sort=-id&limit=1": {"db-02"},
		"status=Retired":        {},
	} {
		_, body := s.get("/computers?" + q)
		for _, h := range []string{"web-&lt;01&gt;", "db-01", "db-02"} {
			if strings.Contains(body, `">`+h+`</a>`) != contains(want, h) {
				t.Errorf("/computers?%s: %s listed is %v, want %v", q, h, !contains(want, h), contains(want, h))
			}
		}
	}
	_, body := s.get("/computers?q=db&sort=-id&limit=1")
	if !strings.Contains(body, "after=4") {
		t.Fatalf("no next page link after the newest:\n%s", body)
	}
	if _, body := s.get("/computers?q=db&sort=-id&limit=1&after=4"); !strings.Contains(body, `">db-01</a>`) || strings.Contains(body, `">db-02</a>`) {
		t.Errorf("second page, newest first: want db-01 only")
	}
	_, body = s.get("/events?kind=computer.enrolled")
	if strings.Count(body, "<td>computer.enrolled</td>") != 4 {
		t.Errorf("want 4 enrolled events:\n%s", body)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// The events page shows the newest 100 and pages back through the rest.
func TestConsoleEventsPages(t *testing.T) {
	s := newSession(t)
	for i := 0; i < 129; i++ { // with the session's own secret: 130
		if _, err := s.db.CreateSecret(t.Context(), "s", "", nil); err != nil {
			t.Fatal(err)
		}
	}
	_, body := s.get("/events?kind=secret.created")
	if n := strings.Count(body, "<td>secret.created</td>"); n != 100 {
		t.Fatalf("first page: %d events, want 100", n)
	}
	i := strings.Index(body, `<a href="/events?`)
	j := strings.Index(body, `" rel="next">Older events`)
	if i < 0 || j < i {
		t.Fatalf("no link to older events:\n%s", body)
	}
	next := strings.ReplaceAll(body[i+len(`<a href="`):j], "&amp;", "&")
	_, body = s.get(next)
	if n := strings.Count(body, "<td>secret.created</td>"); n != 30 || strings.Contains(body, "Older events") {
		t.Fatalf("second page (%s): %d events, want the last 30 and no more pages", next, n)
	}
}
