package integration

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

type goPackage struct {
	ImportPath string
	Doc        string
	Name       string
	Imports    []string
	Dir        string
}

func listPackages(t *testing.T) []goPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "github.com/tallyhq/tally/...")
	cmd.Dir = "../.."
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []goPackage
	dec := json.NewDecoder(out)
	for {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

// Every package says in one sentence what it provides.
func TestEveryPackageHasADocComment(t *testing.T) {
	for _, p := range listPackages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no package comment", p.ImportPath)
		}
	}
}

// protocol/ is the wire contract: it imports nothing of either side, and
// no storage or network policy.
func TestProtocolImportsNeitherSide(t *testing.T) {
	for _, p := range listPackages(t) {
		if !strings.HasPrefix(p.ImportPath, "github.com/tallyhq/tally/protocol") {
			continue
		}
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, "github.com/tallyhq/tally/agent") || strings.HasPrefix(imp, "github.com/tallyhq/tally/server") ||
				strings.HasPrefix(imp, "github.com/tallyhq/tally/common") ||
				imp == "database/sql" || imp == "net" || imp == "os" || strings.HasPrefix(imp, "github.com/quic-go") {
				t.Errorf("%s imports %s", p.ImportPath, imp)
			}
		}
	}
}

// The agent must cross-compile without a C compiler: it never links SQLite.
func TestAgentDoesNotLinkSQLite(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./agent/cmd/tally-agent")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Fields(string(out)) {
		if strings.Contains(l, "sqlite") && !strings.HasPrefix(l, "github.com/tallyhq/tally/agent/software") {
			t.Errorf("tally-agent depends on %s", l)
		}
		if strings.HasPrefix(l, "github.com/tallyhq/tally/server") {
			t.Errorf("tally-agent depends on server package %s", l)
		}
	}
}
