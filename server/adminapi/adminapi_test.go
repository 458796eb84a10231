package adminapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

func newAPI(t *testing.T) (*httptest.Server, *adminapi.Client) {
	db, err := sqlstore.Open(filepath.Join(t.TempDir(), "a.db"), sqlstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cat, _ := catalog.Builtin()
	h := adminapi.New(adminapi.Config{Store: db, Token: "tok", Catalog: cat, Info: adminapi.ServerInfo{Advertise: "h:1", Fingerprint: "ff", Version: "t"}})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := adminapi.NewClient(srv.URL, "tok")
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func TestTokenRequired(t *testing.T) {
	srv, _ := newAPI(t)
	for _, tok := range []string{"", "Bearer wrong", "tok", "Basic dG9r"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/computers", nil)
		if tok != "" {
			req.Header.Set("Authorization", tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "admin token") {
			t.Errorf("Authorization %q: %d %s", tok, resp.StatusCode, b)
		}
	}
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
}

func TestBadInputIsAClearErrorAndChangesNothing(t *testing.T) {
	srv, c := newAPI(t)
	ctx := context.Background()
	cases := []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"POST", "/api/v1/secrets", `{"name": 5}`, 400, "not valid JSON"},
		{"POST", "/api/v1/secrets", `{"name": "x", "evil": 1}`, 400, "not valid JSON"},
		{"POST", "/api/v1/secrets", `{"value": "short"}`, 400, "16 to 128"},
		{"POST", "/api/v1/secrets", `{"name": "` + strings.Repeat("x", 2<<20) + `"}`, 413, "request body over 1048576 bytes"},
		{"POST", "/api/v1/admins", `{"name": "Eve Admin", "role": "admin"}`, 400, "lower-case letters"},
		{"POST", "/api/v1/admins", `{"name": "eve", "role": "root"}`, 400, "use viewer"},
		{"POST", "/api/v1/admins", `{"name": "eve", "role": "admin", "password": "short"}`, 400, "12 to 256 characters"},
		{"POST", "/api/v1/admins", `{"name": "system", "role": "admin"}`, 400, "the server itself"},
		{"POST", "/api/v1/admins/nobody/tokens", `{}`, 404, "no admin named"},
		{"POST", "/api/v1/admins/admin/tokens", `{"label": "` + strings.Repeat("l", 201) + `"}`, 400, "at most 200"},
		{"POST", "/api/v1/tokens/t-none/revoke", ``, 404, "no token"},
		{"DELETE", "/api/v1/admins/admin", ``, 409, "last admin of role admin"},
		{"GET", "/api/v1/events?limit=1001", "", 400, "1 to 1000"},
		{"GET", "/api/v1/events?bogus=1", "", 400, "unknown parameter"},
		{"GET", "/api/v1/licenses?after=L-gone", "", 400, "start again"},
		{"GET", "/api/v1/secrets?limit=0", "", 400, "1 to 1000"},
		{"POST", "/api/v1/statuses", `{"name": ""}`, 400, "1 to 64 characters"},
		{"POST", "/api/v1/statuses", `{"name": "a,b"}`, 400, "no commas"},
		{"POST", "/api/v1/computers/abc/status", `{"status": "Retired"}`, 400, "not a computer ID"},
		{"POST", "/api/v1/computers/7/status", `{"status": "Retired"}`, 404, "not found"},
		{"POST", "/api/v1/computers/7/tasks", `{"action": "rm -rf /"}`, 400, "only takes"},
		{"GET", "/api/v1/events?since=yesterday", "", 400, "since"},
		{"GET", "/api/v1/products/nope", "", 404, "no product"},
		{"POST", "/api/v1/licenses", `{"files": []}`, 400, "no license files"},
		{"GET", "/api/v1/nothing-here", "", 404, "no such API route"},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.want) || !strings.Contains(string(b), `"code": "`+adminapi.ErrorCode(tc.code)+`"`) {
			t.Errorf("%s %s: %d %s; want %d and %q", tc.method, tc.path, resp.StatusCode, b, tc.code, tc.want)
		}
	}
	ss, _ := c.Secrets(ctx)
	st, _ := c.Statuses(ctx)
	ev, _ := c.Events(ctx, nil)
	as, _ := c.Admins(ctx)
	if len(ss) != 0 || len(st) != 6 || len(ev) != 0 || len(as) != 1 {
		t.Fatalf("bad input changed something: %d secrets, %d statuses, %d events, %d admins", len(ss), len(st), len(ev), len(as))
	}
	var ae *adminapi.APIError
	if _, err := c.Computer(ctx, 42); !errors.As(err, &ae) || !adminapi.IsNotFound(err) {
		t.Fatalf("missing computer: %v", err)
	}
}
