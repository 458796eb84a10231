package console_test

import (
	"context"
	"crypto/ed25519"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/console"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

func TestConsolePages(t *testing.T) {
	db, err := sqlstore.Open(filepath.Join(t.TempDir(), "c.db"), sqlstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	s, _ := db.CreateSecret(ctx, "t", "", nil)
	key, _ := identity.NewKey()
	pub := key.Public().(ed25519.PublicKey)
	if _, err := db.Enroll(ctx, store.EnrollParams{NodeID: identity.NodeID(pub), PublicKey: pub, Request: protocol.EnrollRequest{
		Secret: s.Value, Hostname: "web-<01>", Hints: protocol.Hints{InstanceID: "i"}}}); err != nil {
		t.Fatal(err)
	}
	c, err := console.New(console.Config{Store: db, Token: "secret-token", Info: adminapi.ServerInfo{Version: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar}
	get := func(path string) (int, string) {
		resp, err := cl.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Not signed in: every page leads to the login form.
	if code, body := get("/computers"); code != 200 || !strings.Contains(body, "Admin token") {
		t.Fatalf("unauthenticated /computers: %d %q", code, body)
	}
	resp, err := cl.PostForm(srv.URL+"/login", url.Values{"token": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}
	resp, err = cl.PostForm(srv.URL+"/login", url.Values{"token": {"secret-token"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, ck := range jar.Cookies(resp.Request.URL) {
		if strings.Contains(ck.Value, "secret-token") {
			t.Fatal("the session cookie holds the token itself")
		}
	}
	for path, want := range map[string]string{
		"/computers":   "web-&lt;01&gt;", // escaped: a hostile hostname cannot inject markup
		"/computers/1": "No inventory posted yet",
		"/licenses":    "Products and licenses",
		"/events":      "computer.enrolled",
	} {
		code, body := get(path)
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("%s: %d, want %q in\n%s", path, code, want, body)
		}
		if strings.Contains(body, "web-<01>") {
			t.Errorf("%s: hostname not escaped", path)
		}
	}
	if code, _ := get("/computers/999"); code != 404 {
		t.Errorf("unknown computer: %d", code)
	}
}

// Must hold: a computer whose agent said goodbye shows the flag
// agent-uninstalled in the computers list and on its page; the list
// filters like the API and says what is wrong with a bad filter.
func TestConsoleShowsAgentUninstalled(t *testing.T) {
	db, err := sqlstore.Open(filepath.Join(t.TempDir(), "c.db"), sqlstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	s, _ := db.CreateSecret(ctx, "t", "", nil)
	for i, host := range []string{"gone", "kept"} {
		key, _ := identity.NewKey()
		pub := key.Public().(ed25519.PublicKey)
		node := identity.NodeID(pub)
		if _, err := db.Enroll(ctx, store.EnrollParams{NodeID: node, PublicKey: pub, Request: protocol.EnrollRequest{
			Secret: s.Value, Hostname: host, Hints: protocol.Hints{InstanceID: host}}}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, err := db.Goodbye(ctx, store.Request{NodeID: node, Seq: 2, Kind: protocol.KindGoodbye}, &protocol.GoodbyeRequest{Reason: "test"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	get := signedIn(t, console.Config{Store: db, Token: "secret-token", Info: adminapi.ServerInfo{Version: "test"}})
	flag := `<span class="flag">agent-uninstalled</span>`
	if code, body := get("/computers"); code != 200 || strings.Count(body, flag) != 1 {
		t.Errorf("/computers: %d, want the flag once in\n%s", code, body)
	}
	if code, body := get("/computers/1"); code != 200 || !strings.Contains(body, flag) {
		t.Errorf("/computers/1: %d, want the flag in\n%s", code, body)
	}
	if code, body := get("/computers/2"); code != 200 || strings.Contains(body, flag) {
		t.Errorf("/computers/2 is flagged: %d\n%s", code, body)
	}
	if code, body := get("/computers?flag=agent-uninstalled"); code != 200 || !strings.Contains(body, "gone") || strings.Contains(body, "kept") {
		t.Errorf("/computers?flag=agent-uninstalled: %d\n%s", code, body)
	}
	if code, body := get("/computers?flag=odd"); code != 400 || !strings.Contains(body, "flag &#34;odd&#34; does not exist") {
		t.Errorf("/computers?flag=odd: %d\n%s", code, body)
	}
}

// The console shows times in the server's time zone (serve --timezone),
// whatever the zone of the host it runs on.
func TestConsoleShowsTimesInTheServersZone(t *testing.T) {
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clk := clock.NewManual(at)
	db, err := sqlstore.Open(filepath.Join(t.TempDir(), "c.db"), sqlstore.Options{NoSync: true, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.CreateSecret(ctx, "t", "", nil); err != nil {
		t.Fatal(err)
	}
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	// The console's clock is the store's: a session made at the store's
	// 12:00 must not look idle by the real time of day.
	get := signedIn(t, console.Config{Store: db, Token: "secret-token", Dates: adminapi.Dates{Zone: tokyo, Clock: clk}})
	if _, b := get("/events"); !strings.Contains(b, "2026-12-06 21:00:00") {
		t.Fatalf("the secret created at 12:00 UTC is not shown at 21:00 in Tokyo:\n%s", b)
	}
}

// signedIn serves a console made of cfg, signs in with its token, and
// returns a function that gets a page: its status and body.
func signedIn(t *testing.T, cfg console.Config) func(path string) (int, string) {
	t.Helper()
	c, err := console.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar}
	resp, err := cl.PostForm(srv.URL+"/login", url.Values{"token": {cfg.Token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return func(path string) (int, string) {
		resp, err := cl.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
}
