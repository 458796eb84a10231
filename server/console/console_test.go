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

	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/console"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlite"
)

func TestConsolePages(t *testing.T) {
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "c.db"), sqlite.Options{NoSync: true})
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
	c, err := console.New(console.Config{Store: db, Token: "secret-token", Info: adminapi.ServerInfo{Version: "test"}, Products: []string{"monitor"}})
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
		"/usage":       "License usage",
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
