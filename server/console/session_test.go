package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/admins"
	"github.com/tallyhq/tally/server/console"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

type consoleT struct {
	t   *testing.T
	db  *sqlstore.DB
	clk *clock.Manual
	url string
}

func newSessionConsole(t *testing.T, rules admins.SessionRules) *consoleT {
	t.Helper()
	clk := clock.NewManual(time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC))
	db, err := sqlstore.Open(filepath.Join(t.TempDir(), "c.db"), sqlstore.Options{NoSync: true, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c, err := console.New(console.Config{Store: db, Token: "first-token", Dates: adminapi.Dates{Clock: clk}, Sessions: rules})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return &consoleT{t: t, db: db, clk: clk, url: srv.URL}
}

func (c *consoleT) addAdmin(name, role, password string) {
	c.t.Helper()
	hash, err := admins.HashPasswordParams(password, cheap)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.db.AddAdmin(context.Background(), name, role, hash, "test"); err != nil {
		c.t.Fatal(err)
	}
}

// cheap keeps the tests fast under -race, where argon2 at its real cost
// takes a second; the server's own hashes use admins.DefaultParams.
var cheap = admins.Params{Memory: 64, Time: 1, Threads: 1}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// login posts the form and returns the status, the session cookie ("" if
// none) and the answer.
func (c *consoleT) login(form url.Values) (int, string, *http.Response) {
	c.t.Helper()
	resp, err := noRedirect.PostForm(c.url+"/login", form)
	if err != nil {
		c.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == "tally_session" && ck.Value != "" {
			if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
				c.t.Errorf("session cookie %+v is not HttpOnly and SameSite=Strict", ck)
			}
			return resp.StatusCode, ck.Value, resp
		}
	}
	return resp.StatusCode, "", resp
}

// get fetches a page with a session cookie; a redirect to the login page
// means not signed in.
func (c *consoleT) get(path, session string) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.url+path, nil)
	if session != "" {
		req.AddCookie(&http.Cookie{Name: "tally_session", Value: session})
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusFound && resp.Header.Get("Location") == "/login" {
		return http.StatusUnauthorized, string(b)
	}
	return resp.StatusCode, string(b)
}

func (c *consoleT) logout(session string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.url+"/logout", nil)
	req.AddCookie(&http.Cookie{Name: "tally_session", Value: session})
	resp, err := noRedirect.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("logout: %d", resp.StatusCode)
	}
}

// Must hold: a logged-out or removed admin's session no longer works;
// every sign-in makes a new random session; a session names its admin.
func TestSessionsEndAtLogoutAndRemoval(t *testing.T) {
	c := newSessionConsole(t, admins.SessionRules{})
	c.addAdmin("olga", "operator", "olga's long password")
	c.addAdmin("vic", "viewer", "vic's long password")
	for _, page := range []string{"/", "/computers", "/computers/1", "/events", "/licenses", "/licenses/x", "/activations", "/leases", "/reports", "/reports/usage.csv", "/settings"} {
		for _, cookie := range []string{"", "forged", strings.Repeat("x", 43), strings.Repeat("y", 4000)} {
			if code, _ := c.get(page, cookie); code != http.StatusUnauthorized && !(page == "/" && code == http.StatusFound) {
				t.Errorf("%s with session %.10q: %d, want the login page", page, cookie, code)
			}
		}
	}
	code, s1, _ := c.login(url.Values{"name": {"olga"}, "password": {"olga's long password"}})
	if code != http.StatusSeeOther || s1 == "" {
		t.Fatalf("sign in: %d %q", code, s1)
	}
	_, s2, _ := c.login(url.Values{"name": {"olga"}, "password": {"olga's long password"}})
	if s2 == "" || s2 == s1 {
		t.Fatalf("a second sign-in gave the same session %q", s2)
	}
	for _, s := range []string{s1, s2} {
		if code, _ := c.get("/computers", s); code != http.StatusOK {
			t.Fatalf("signed in: %d", code)
		}
	}
	c.logout(s1)
	if code, _ := c.get("/computers", s1); code != http.StatusUnauthorized {
		t.Fatalf("the logged-out session still works: %d", code)
	}
	if code, _ := c.get("/computers", s2); code != http.StatusOK {
		t.Fatalf("logging out one session ended another: %d", code)
	}
	_, sv, _ := c.login(url.Values{"name": {"vic"}, "password": {"vic's long password"}})
	if err := c.db.RemoveAdmin(context.Background(), "olga", "admin"); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.get("/computers", s2); code != http.StatusUnauthorized {
		t.Fatalf("the removed admin's session still works: %d", code)
	}
	if code, _ := c.get("/computers", sv); code != http.StatusOK {
		t.Fatalf("removing one admin ended another's session: %d", code)
	}
	// A password change ends the admin's sessions too.
	hash, _ := admins.HashPasswordParams("vic's new long password", cheap)
	if err := c.db.SetAdminPassword(context.Background(), "vic", hash, "admin"); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.get("/computers", sv); code != http.StatusUnauthorized {
		t.Fatalf("a session survived its admin's password change: %d", code)
	}
	// The data folder's token still signs in, as the first admin.
	code, st, _ := c.login(url.Values{"token": {"first-token"}})
	if code != http.StatusSeeOther || st == "" {
		t.Fatalf("token sign-in: %d", code)
	}
	ev, err := c.db.EventPage(context.Background(), store.EventFilter{Kind: store.EventSignedIn}, 0)
	if err != nil || len(ev) != 4 || ev[0].Actor != "olga" || ev[3].Actor != store.FirstAdmin {
		t.Fatalf("sign-in events: %+v %v", ev, err)
	}
	// Nothing of the session is in the database in the clear.
	if _, err := c.db.Session(context.Background(), st); !store.IsNotFound(err) {
		t.Fatalf("a session found by its cookie value, not its hash: %v", err)
	}
}

// Sessions expire after the idle timeout, and after the absolute one
// however busy.
func TestSessionsExpire(t *testing.T) {
	c := newSessionConsole(t, admins.SessionRules{Idle: 10 * time.Minute, Absolute: time.Hour})
	c.addAdmin("olga", "operator", "olga's long password")
	_, s, _ := c.login(url.Values{"name": {"olga"}, "password": {"olga's long password"}})
	for i := 0; i < 5; i++ { // 45 minutes of use, a request every 9
		c.clk.Advance(9 * time.Minute)
		if code, _ := c.get("/events", s); code != http.StatusOK {
			t.Fatalf("after %d minutes of use: %d", 9*(i+1), code)
		}
	}
	c.clk.Advance(11 * time.Minute)
	if code, _ := c.get("/events", s); code != http.StatusUnauthorized {
		t.Fatalf("idle for 11 minutes: %d", code)
	}
	_, s, _ = c.login(url.Values{"name": {"olga"}, "password": {"olga's long password"}})
	for i := 0; i < 6; i++ {
		c.clk.Advance(9 * time.Minute)
		c.get("/events", s)
	}
	c.clk.Advance(7 * time.Minute) // 61 minutes after sign-in
	if code, _ := c.get("/events", s); code != http.StatusUnauthorized {
		t.Fatalf("past the absolute timeout: %d", code)
	}
}

// Must hold: sign-in is rate-limited per address and per name, with
// Retry-After; wrong or hostile input signs nobody in.
func TestLoginIsRateLimited(t *testing.T) {
	c := newSessionConsole(t, admins.SessionRules{})
	c.addAdmin("olga", "operator", "olga's long password")
	for _, f := range []url.Values{
		{"name": {"olga"}, "password": {"wrong password!"}},
		{"name": {"nobody"}, "password": {"olga's long password"}},
		{"token": {"not-a-token"}},
		{"token": {strings.Repeat("x", 3000)}},
		{"name": {"olga"}},
		{},
		{"name": {"olga"}, "password": {"another wrong one"}},
	} {
		if code, s, _ := c.login(f); s != "" || (code != http.StatusUnauthorized && code != http.StatusBadRequest && code != http.StatusTooManyRequests) {
			t.Errorf("%v: %d %q", f, code, s)
		}
	}
	// By now this address has failed five times: even the right password waits.
	code, s, resp := c.login(url.Values{"name": {"olga"}, "password": {"olga's long password"}})
	retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if code != http.StatusTooManyRequests || s != "" || retry < 1 || retry > 15*60 {
		t.Fatalf("after 5 failures: %d %q Retry-After %q", code, s, resp.Header.Get("Retry-After"))
	}
	c.clk.Advance(time.Duration(retry) * time.Second)
	if code, s, _ := c.login(url.Values{"name": {"olga"}, "password": {"olga's long password"}}); code != http.StatusSeeOther || s == "" {
		t.Fatalf("after Retry-After: %d", code)
	}
	// The success above cleared this address's failures; guesses at one
	// name are then limited again (the limiter per name is what stops
	// guesses from many addresses: see package admins' tests).
	for i := 0; i < admins.DefaultLoginFailures; i++ {
		c.login(url.Values{"name": {"olga"}, "password": {"guess number " + strconv.Itoa(i)}})
	}
	if code, _, resp := c.login(url.Values{"name": {"olga"}, "password": {"olga's long password"}}); code != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("guessing one name: %d", code)
	}
}
