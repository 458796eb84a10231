package adminapi_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/engine"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

// newProductsAPI serves a store and an API sharing one catalog, as the
// daemon does.
func newProductsAPI(t *testing.T, file string) (*httptest.Server, *adminapi.Client, *sqlstore.DB) {
	t.Helper()
	cat, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlstore.Open(file, sqlstore.Options{NoSync: true, Engine: engine.New(cat)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	srv := httptest.NewServer(adminapi.New(adminapi.Config{Store: db, Token: "tok", Catalog: cat, Info: adminapi.ServerInfo{Advertise: "h:1", Fingerprint: "ff", Version: "t"}}))
	t.Cleanup(srv.Close)
	c, err := adminapi.NewClient(srv.URL, "tok")
	if err != nil {
		t.Fatal(err)
	}
	return srv, c, db
}

// An application product is added with one request, listed, shown and
// removed; bad input is a sentence that says what to do and changes
// nothing; the addition is audited with its actor.
func TestApplicationProductsAddListRemove(t *testing.T) {
	srv, c, _ := newProductsAPI(t, filepath.Join(t.TempDir(), "a.db"))
	ctx := context.Background()
	before, err := c.Products(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"POST", "/api/v1/products", `{"name": "", "kinds": ["node-locked"]}`, 400, "give the product a name"},
		{"POST", "/api/v1/products", `{"name": "CAD suite", "kinds": ["node-locked"]}`, 400, "lower-case letters, digits and dashes"},
		{"POST", "/api/v1/products", `{"name": "cad"}`, 400, "list the kinds of license product cad takes"},
		{"POST", "/api/v1/products", `{"name": "cad", "kinds": ["node"]}`, 400, "no plug-in to consume node seats; use node-locked or concurrent"},
		{"POST", "/api/v1/products", `{"name": "cad", "kinds": ["floating"]}`, 400, "is not a license kind: use node-locked or concurrent"},
		{"POST", "/api/v1/products", `{"name": "cad", "kinds": ["concurrent"], "title": "` + strings.Repeat("t", 201) + `"}`, 400, "shorten it to 200"},
		{"POST", "/api/v1/products", `{"name": "monitor", "kinds": ["concurrent"]}`, 409, "monitor is a product of the built-in catalog: choose another name"},
		{"POST", "/api/v1/products", `{"name": "cad", "kinds": "concurrent"}`, 400, "not valid JSON"},
		{"DELETE", "/api/v1/products/monitor", "", 400, "is built in"},
		{"DELETE", "/api/v1/products/nosuch", "", 404, "no application product"},
	}
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	for _, tc := range cases {
		if code, b := do(tc.method, tc.path, tc.body); code != tc.code || !strings.Contains(b, tc.want) {
			t.Errorf("%s %s %s: %d %s; want %d and %q", tc.method, tc.path, tc.body, code, b, tc.code, tc.want)
		}
	}
	if after, _ := c.Products(ctx); len(after) != len(before) {
		t.Fatalf("bad input changed the catalog: %d products, was %d", len(after), len(before))
	}
	if ev, _ := c.Events(ctx, nil); len(ev) != 0 {
		t.Fatalf("bad input wrote events: %+v", ev)
	}

	p, err := c.AddProduct(ctx, store.ApplicationProduct{Name: "cad", Title: "CAD Suite", Kinds: []string{"node-locked", "concurrent"}})
	if err != nil || !p.Application || p.Title != "CAD Suite" || strings.Join(p.Kinds, ",") != "node-locked,concurrent" || p.Source != "database" {
		t.Fatalf("add cad: %+v %v", p, err)
	}
	if _, err := c.AddProduct(ctx, store.ApplicationProduct{Name: "cad", Kinds: []string{"concurrent"}}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("added twice with other kinds: %v", err)
	}
	// The same definition again (a setup script run twice) changes nothing
	// and says so.
	if again, err := c.AddProduct(ctx, store.ApplicationProduct{Name: "cad", Title: "CAD Suite", Kinds: []string{"concurrent", "node-locked"}}); err != nil || !again.Unchanged || again.Name != "cad" {
		t.Fatalf("the same definition again: %+v %v", again, err)
	}
	if got, err := c.Product(ctx, "cad"); err != nil || got.Name != "cad" {
		t.Fatalf("show cad: %+v %v", got, err)
	}
	ps, _ := c.Products(ctx)
	if len(ps) != len(before)+1 {
		t.Fatalf("list: %d products", len(ps))
	}
	ev, _ := c.Events(ctx, nil)
	if len(ev) != 1 || ev[0].Kind != store.EventProductAdded || ev[0].Actor != store.ActorAdmin || ev[0].Product != "cad" {
		t.Fatalf("events: %+v", ev)
	}
	if err := c.RemoveProduct(ctx, "cad"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Product(ctx, "cad"); !adminapi.IsNotFound(err) {
		t.Fatalf("removed cad is still shown: %v", err)
	}
	if ev, _ := c.Events(ctx, nil); len(ev) != 2 || ev[0].Kind != store.EventProductRemove && ev[1].Kind != store.EventProductRemove {
		t.Fatalf("events: %+v", ev)
	}
}

// An application product added through the API is in the database: a
// store opened again on the same file, with a fresh catalog, has it.
func TestApplicationProductsSurviveARestart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a.db")
	srv, c, db := newProductsAPI(t, file)
	if _, err := c.AddProduct(context.Background(), store.ApplicationProduct{Name: "cad", Title: "CAD Suite", Kinds: []string{"node-locked"}}); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	_, c, _ = newProductsAPI(t, file)
	p, err := c.Product(context.Background(), "cad")
	if err != nil || p.Title != "CAD Suite" || strings.Join(p.Kinds, ",") != "node-locked" {
		t.Fatalf("after a restart: %+v %v", p, err)
	}
}
