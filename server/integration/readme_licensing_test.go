package integration

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tallyhq/tally/agent/agenttest"
	servercli "github.com/tallyhq/tally/server/cli"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

// serverCLI runs tally-server's command line in-process, as an admin on
// the server host would.
func serverCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	m := &servercli.Main{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code = m.Run(context.Background(), args)
	return out.String(), errb.String(), code
}

// usagePools returns a product's usage rows by kind.
func usagePools(t *testing.T, srv *servertest.Server, product string) map[string]store.Usage {
	t.Helper()
	us, err := srv.Admin.Usage(context.Background(), product)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.Usage{}
	for _, u := range us {
		if u.Product != product || out[u.Kind].Kind != "" {
			t.Fatalf("usage of %s: %+v", product, us)
		}
		out[u.Kind] = u
	}
	return out
}

// The README's "Node-locked licenses" and "Concurrent licenses" sections,
// run as written against a real server and real agents: an application
// product added with one command, its licenses issued and imported, an
// Activation ID activated and checked, a lease taken and one refused. Usage
// shows each pool on its own row with its holders, and never adds a free
// node-locked seat to a full concurrent pool.
func TestREADMENodeLockedAndConcurrentFlow(t *testing.T) {
	srv := servertest.New(t)
	data := srv.Config.DataDir
	dir := t.TempDir()
	run := func(want int, args ...string) string {
		t.Helper()
		out, errOut, code := serverCLI(t, args...)
		if code != want {
			t.Fatalf("tally-server %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, errOut)
		}
		return out + errOut
	}
	run(0, "issuer", "init", "--out", filepath.Join(dir, "issuer"))
	run(0, "issuer", "trust", filepath.Join(dir, "issuer", "issuer.pub"), "--data", data)
	key := filepath.Join(dir, "issuer", "issuer.key")

	// Before the product exists, the import says how to add it.
	run(0, "license", "issue", "--key", key, "--product", "cad", "--seats", "20", "--kind", "node-locked", "--out", filepath.Join(dir, "cad.lic"))
	if out := run(1, "license", "import", filepath.Join(dir, "cad.lic"), "--data", data); !strings.Contains(out, "add it with 'tally-server products add cad --kinds node-locked,concurrent'") {
		t.Fatalf("import for an unknown product: %s", out)
	}
	out := run(0, "products", "add", "cad", "--title", "CAD Suite", "--kinds", "node-locked,concurrent", "--data", data)
	if !strings.Contains(out, "Added application product cad (CAD Suite)") {
		t.Fatalf("products add: %s", out)
	}
	run(0, "license", "import", filepath.Join(dir, "cad.lic"), "--data", data)
	run(0, "license", "issue", "--key", key, "--product", "cad", "--seats", "1", "--kind", "concurrent", "--out", filepath.Join(dir, "cad-c.lic"))
	run(0, "license", "import", filepath.Join(dir, "cad-c.lic"), "--data", data)
	run(0, "license", "issue", "--key", key, "--product", "cad", "--seats", "5", "--kind", "node", "--out", filepath.Join(dir, "cad-n.lic"))
	if out := run(1, "license", "import", filepath.Join(dir, "cad-n.lic"), "--data", data); !strings.Contains(out, "cad is an application product") ||
		!strings.Contains(out, "--kind") {
		t.Fatalf("a node license for an application product: %s", out)
	}
	out = run(0, "activation", "create", "--product", "cad", "--quantity", "5", "--data", data)
	act := regexp.MustCompile(`ACT-[A-Z0-9-]+`).FindString(out)
	if act == "" {
		t.Fatalf("activation create: %s", out)
	}

	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	if out, code := agentCLI(t, a.Dir.Path, "activate", act); code != 0 {
		t.Fatalf("tally-agent activate: exit %d\n%s", code, out)
	}
	if out, code := agentCLI(t, a.Dir.Path, "check", "cad"); code != 0 {
		t.Fatalf("tally-agent check cad: exit %d\n%s", code, out)
	}
	b := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	if out, code := agentCLI(t, b.Dir.Path, "lease", "checkout", "cad", "--ttl", "10m"); code != 0 {
		t.Fatalf("lease checkout: exit %d\n%s", code, out)
	}
	c := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	if out, code := agentCLI(t, c.Dir.Path, "lease", "checkout", "cad"); code != 10 {
		t.Fatalf("lease checkout with the one seat taken: exit %d, want 10\n%s", code, out)
	}

	pools := usagePools(t, srv, "cad")
	nl, cc := pools["node-locked"], pools["concurrent"]
	if len(pools) != 2 || nl.Granted != 20 || nl.Consumed != 1 || nl.Waiting != 0 || nl.Available != 19 || !nl.Compliant {
		t.Fatalf("node-locked pool: %+v (pools %d)", nl, len(pools))
	}
	if cc.Granted != 1 || cc.Consumed != 1 || cc.Waiting != 1 || cc.Available != -1 || cc.Compliant {
		t.Fatalf("concurrent pool: %+v", cc)
	}
	aID, bID := a.Enrollment().ComputerID, b.Enrollment().ComputerID
	if len(nl.Holders) != 1 || nl.Holders[0].ComputerID != aID || nl.Holders[0].ActivationID != act {
		t.Fatalf("node-locked holders: %+v", nl.Holders)
	}
	if len(cc.Holders) != 1 || cc.Holders[0].ComputerID != bID || cc.Holders[0].Expires == nil {
		t.Fatalf("concurrent holders: %+v", cc.Holders)
	}

	out = run(0, "usage", "--product", "cad", "--holders", "--data", data)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^cad +node-locked +20 +1 +0 +0 +19 +yes`),
		regexp.MustCompile(`(?m)^cad +concurrent +1 +1 +0 +1 +-1 +no +denied:no-seat=1`),
		regexp.MustCompile(`activated with ` + act),
		regexp.MustCompile(`lease until `),
	} {
		if !want.MatchString(out) {
			t.Errorf("usage --product cad --holders lacks %s:\n%s", want, out)
		}
	}
	// The console's usage page shows the same pools and holders.
	jar, _ := cookiejar.New(nil)
	web := &http.Client{Jar: jar}
	resp, err := web.PostForm(srv.Addresses().AdminURL+"/login", url.Values{"token": {srv.Identity().Token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// (pools on /licenses, holders on /activations and /leases)
	var page []byte
	for _, path := range []string{"/licenses", "/activations", "/leases"} {
		resp, err = web.Get(srv.Addresses().AdminURL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page = append(page, b...)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`<td>node-locked</td>\s*<td><svg[^\n]*</svg></td>\s*<td class="granted">20</td><td>1</td><td>0</td><td>0</td>\s*<td>19</td>`),
		regexp.MustCompile(`<td>concurrent</td>\s*<td><svg[^\n]*</svg></td>\s*<td class="granted">1</td><td>1</td><td>0</td><td>1</td>\s*<td><span class="flag">-1 \(shortfall\)</span></td>`),
		regexp.MustCompile(`<code>` + act + `</code>`),
		regexp.MustCompile(`/computers/` + strconv.FormatInt(bID, 10) + `"`),
	} {
		if !want.Match(page) {
			t.Errorf("the console's pages lack %s:\n%s", want, page)
		}
	}

	// A product with licenses cannot be removed; the message says what to do.
	if out := run(1, "products", "remove", "cad", "--data", data); !strings.Contains(out, "remove them first") {
		t.Fatalf("products remove with licenses: %s", out)
	}
}

// 'products list' fits 100 columns.
func TestProductsListFitsOneHundredColumns(t *testing.T) {
	srv := servertest.New(t)
	if _, _, code := serverCLI(t, "products", "add", "cad", "--title", "CAD Suite", "--kinds", "node-locked,concurrent", "--data", srv.Config.DataDir); code != 0 {
		t.Fatal("products add failed")
	}
	out, errOut, code := serverCLI(t, "products", "list", "--data", srv.Config.DataDir)
	if code != 0 || !strings.Contains(out, "patch-6") || !strings.Contains(out, "activation, lease") {
		t.Fatalf("products list: exit %d\n%s%s", code, out, errOut)
	}
	for _, line := range strings.Split(out, "\n") {
		if n := len([]rune(line)); n > 100 {
			t.Errorf("%d columns: %q", n, line)
		}
	}
}
