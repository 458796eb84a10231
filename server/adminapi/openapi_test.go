package adminapi_test

import (
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/servertest"
)

var update = flag.Bool("update", false, "write docs/API.md from the OpenAPI document")

// Must hold: a registered route missing from the OpenAPI document fails
// this test. The routes are the server's own registration table; the
// document is the one it serves, without a token, at /api/openapi.json.
func TestEveryRouteIsDocumented(t *testing.T) {
	srv := servertest.New(t)
	resp, err := http.Get(srv.Addresses().AdminURL + "/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/openapi.json: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	routes := srv.AdminRoutes()
	for _, r := range routes {
		op, ok := doc.Paths[r.Path][strings.ToLower(r.Method)]
		if !ok {
			t.Errorf("%s is registered but missing from the OpenAPI document: describe it in routeDocs (apidocs.go)", r.Pattern())
			continue
		}
		if op["summary"] == "" || op["x-tally-role"] != r.Role.String() {
			t.Errorf("%s: summary %q, role %v; want a summary and role %s", r.Pattern(), op["summary"], op["x-tally-role"], r.Role)
		}
		resps, _ := op["responses"].(map[string]any)
		hasExample := false
		for code, v := range resps {
			if code < "300" {
				c, _ := v.(map[string]any)["content"].(map[string]any)
				for _, ct := range c {
					_, hasExample = ct.(map[string]any)["example"]
				}
				hasExample = hasExample || code == "204"
			}
		}
		if !hasExample {
			t.Errorf("%s: no example response", r.Pattern())
		}
		if rb, ok := op["requestBody"]; r.Mutating() && ok && !strings.Contains(mustJSON(t, rb), `"example"`) {
			t.Errorf("%s: request body without an example", r.Pattern())
		}
	}
	n := 0
	for _, ops := range doc.Paths {
		n += len(ops)
	}
	if want := len(routes) + 2; n != want { // + /healthz and the document itself
		t.Errorf("the document has %d operations, the server %d routes (+2 public)", n, len(routes))
	}
}

// docs/API.md is the document rendered: a test keeps it in step
// (go test ./server/adminapi -run TestAPIDoc -update writes it).
func TestAPIDocIsInStep(t *testing.T) {
	srv := servertest.New(t)
	md := adminapi.Markdown(adminapi.Document(srv.AdminRoutes(), "dev"))
	file := filepath.Join("..", "..", "docs", "API.md")
	if *update {
		if err := os.WriteFile(file, []byte(md), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != md {
		t.Fatalf("docs/API.md is not the OpenAPI document rendered: run go test ./server/adminapi -run TestAPIDoc -update")
	}
	for _, r := range srv.AdminRoutes() {
		if !strings.Contains(md, "### "+r.Pattern()+"\n") {
			t.Errorf("docs/API.md has no section for %s", r.Pattern())
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var _ = io.Discard
