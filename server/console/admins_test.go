package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tallyhq/tally/server/admins"
	"github.com/tallyhq/tally/server/store"
)

// lastEvent is the newest audit record of a kind.
func (s *session) lastEvent(kind string) store.Event {
	s.t.Helper()
	ev, err := s.db.Events(context.Background(), store.EventFilter{Kind: kind, Limit: 1})
	if err != nil || len(ev) != 1 {
		s.t.Fatalf("no %s event: %v", kind, err)
	}
	return ev[0]
}

// An admin adds an admin with a role and password, issues them a token
// shown once, revokes it and removes them, each audited with the admin
// signed in; bad input is refused with the reason and changes nothing.
func TestConsoleSettingsAdmins(t *testing.T) {
	s := newSession(t)
	ada := s.as("ada", "admin")
	ctx := context.Background()
	form := func(kv ...string) url.Values {
		f := url.Values{"csrf": {ada.csrf}}
		for i := 0; i < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}
	if code, body := ada.post("/settings/admins", form("name", "olga", "role", "operator", "password", "olga's long password"), nil); code != 200 || !strings.Contains(body, "Added the admin olga with the role operator") {
		t.Fatalf("add: %d\n%s", code, body)
	}
	if e := s.lastEvent(store.EventAdminAdded); e.Actor != "ada" {
		t.Errorf("admin.added by %q, want ada", e.Actor)
	}
	if _, hash, err := s.db.AdminLogin(ctx, "olga"); err != nil || !admins.VerifyPassword(hash, "olga's long password") {
		t.Fatalf("olga cannot sign in with her password: %v", err)
	}
	_, body := ada.get("/settings")
	if !strings.Contains(body, "<td>olga</td><td>operator</td><td>set</td>") {
		t.Errorf("olga not listed:\n%s", body)
	}

	code, body := ada.post("/settings/admins/olga/tokens", form("label", "ci <job>"), nil)
	m := regexp.MustCompile(`<code id="token-value">(` + admins.TokenPrefix + `[^<]+)</code>`).FindStringSubmatch(body)
	if code != http.StatusCreated || m == nil || !strings.Contains(body, "ci &lt;job&gt;") {
		t.Fatalf("issue: %d\n%s", code, body)
	}
	acc, tok, err := s.db.TokenAdmin(ctx, admins.HashSecret(m[1]))
	if err != nil || acc.Name != "olga" {
		t.Fatalf("the token shown does not sign olga in: %+v %v", acc, err)
	}
	if e := s.lastEvent(store.EventTokenIssued); e.Actor != "ada" {
		t.Errorf("token issued by %q, want ada", e.Actor)
	}
	if _, body := ada.get("/settings"); strings.Contains(body, m[1]) {
		t.Errorf("the token is shown again")
	}
	if code, body := ada.post("/settings/tokens/"+tok.ID+"/revoke", form(), nil); code != 200 || !strings.Contains(body, "Revoked the token") {
		t.Fatalf("revoke: %d\n%s", code, body)
	}
	if _, _, err := s.db.TokenAdmin(ctx, admins.HashSecret(m[1])); !store.IsNotFound(err) {
		t.Errorf("a revoked token still signs in: %v", err)
	}
	if e := s.lastEvent(store.EventTokenRevoked); e.Actor != "ada" {
		t.Errorf("token revoked by %q, want ada", e.Actor)
	}

	// Refused, each with its reason, changing nothing.
	for _, c := range []struct {
		path string
		form url.Values
		code int
		want string
	}{
		{"/settings/admins", form("name", "", "role", "viewer", "password", "long enough password"), 400, "name"},
		{"/settings/admins", form("name", "bad name/<x>", "role", "viewer", "password", "long enough password"), 400, "name"},
		{"/settings/admins", form("name", "vic", "role", "root", "password", "long enough password"), 400, "role"},
		{"/settings/admins", form("name", "vic", "role", "viewer", "password", "short"), 400, "password"},
		{"/settings/admins", form("name", "olga", "role", "viewer", "password", "long enough password"), 409, "olga"},
		{"/settings/admins/nobody/remove", form(), 404, "nobody"},
		{"/settings/admins/nobody/tokens", form(), 404, "nobody"},
		{"/settings/admins/olga/tokens", form("label", strings.Repeat("x", 201)), 400, "label"},
		{"/settings/tokens/T-nope/revoke", form(), 404, "t-nope"},
	} {
		before := s.eventCount()
		code, body := ada.post(c.path, c.form, nil)
		if code != c.code || !strings.Contains(body, `role="alert"`) || !strings.Contains(strings.ToLower(body), c.want) {
			t.Errorf("%s %v: %d, want %d naming %q\n%.300s", c.path, c.form, code, c.code, c.want, body)
		}
		if s.eventCount() != before {
			t.Errorf("%s %v: a refused post changed something", c.path, c.form)
		}
	}

	if code, body := ada.post("/settings/admins/olga/remove", form(), nil); code != 200 || !strings.Contains(body, "Removed the admin olga") {
		t.Fatalf("remove: %d\n%s", code, body)
	}
	if e := s.lastEvent(store.EventAdminRemoved); e.Actor != "ada" {
		t.Errorf("admin.removed by %q, want ada", e.Actor)
	}
	// The last admin of role admin stays.
	if code, _ := ada.post("/settings/admins/admin/remove", form(), nil); code != 200 {
		t.Fatalf("removing the first admin while ada is one: %d", code)
	}
	if code, body := ada.post("/settings/admins/ada/remove", form(), nil); code != http.StatusConflict || !strings.Contains(body, "last admin") {
		t.Errorf("removing the last admin: %d\n%s", code, body)
	}
}

// Webhooks: an admin adds one and sees its secret once; the list and
// the delivery log show to every role; a bad URL is refused.
func TestConsoleSettingsWebhooks(t *testing.T) {
	s := newSession(t)
	ada := s.as("ada", "admin")
	viewer := s.as("vera", "viewer")
	if _, body := viewer.get("/settings"); !strings.Contains(body, "No webhook") || !strings.Contains(body, "No alert delivered yet") || strings.Contains(body, `id="admin-list"`) {
		t.Errorf("viewer's settings: want the empty webhooks and no admins:\n%s", body)
	}
	code, body := ada.post("/settings/webhooks", url.Values{"csrf": {ada.csrf}, "url": {"https://hooks.example/tally?a=1&b=<2>"}}, nil)
	m := regexp.MustCompile(`<code id="webhook-secret">([0-9a-f]{64})</code>`).FindStringSubmatch(body)
	if code != http.StatusCreated || m == nil {
		t.Fatalf("add webhook: %d\n%s", code, body)
	}
	if e := s.lastEvent(store.EventWebhookAdded); e.Actor != "ada" {
		t.Errorf("webhook added by %q, want ada", e.Actor)
	}
	_, body = viewer.get("/settings")
	if !strings.Contains(body, "https://hooks.example/tally?a=1&amp;b=&lt;2&gt;") || strings.Contains(body, m[1]) {
		t.Errorf("viewer's list: want the webhook escaped, without its secret:\n%s", body)
	}
	for _, u := range []string{"", "ftp://x/y", "javascript:alert(1)", "https://" + strings.Repeat("a", 2100)} {
		before := s.eventCount()
		if code, body := ada.post("/settings/webhooks", url.Values{"csrf": {ada.csrf}, "url": {u}}, nil); code != 400 || !strings.Contains(body, "webhook URL") {
			t.Errorf("webhook %q: %d\n%.300s", u, code, body)
		}
		if s.eventCount() != before {
			t.Errorf("webhook %q: a refused post changed something", u)
		}
	}
	if code, body := ada.post("/settings/webhooks", url.Values{"csrf": {ada.csrf}, "url": {"https://h.example/"}, "secret": {"short"}}, nil); code != 400 || !strings.Contains(body, "secret") {
		t.Errorf("short secret: %d\n%.300s", code, body)
	}
}
