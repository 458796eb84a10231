// Package importrules holds the import arrows Tally's design forbids, each
// with its reason, and finds them in a package graph, so that a layering
// mistake fails a test instead of waiting for a reviewer to notice it.
package importrules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
)

// Module is the import path prefix of Tally's own packages.
const Module = "github.com/tallyhq/tally"

// A Rule forbids every package matched by From to import a package matched
// by To. A pattern is an import path, or a path ending in "/..." that
// matches that path and everything below it.
type Rule struct {
	From []string
	To   []string
	// Direct limits the rule to imports written in From's own files: the
	// standard library's fmt already links os, so a pure package may reach
	// os through it but must not import it itself.
	Direct bool
	Why    string
}

// Rules returns the arrows DESIGN.md and STYLE.md forbid.
func Rules() []Rule {
	tally := func(p string) string { return Module + "/" + p }
	return []Rule{
		{From: []string{tally("protocol/...")}, To: []string{tally("agent/..."), tally("server/..."), tally("common/..."), tally("loadtest/...")},
			Why: "protocol is the wire contract both sides share, so it can depend on neither"},
		{From: []string{tally("protocol/...")}, To: []string{"database/sql", "net", "github.com/quic-go/quic-go/..."},
			Why: "protocol says what is on the wire, not how it is stored or carried"},
		{From: []string{tally("protocol/...")}, To: []string{"os"}, Direct: true,
			Why: "protocol has no I/O policy: callers hand it bytes"},
		{From: []string{tally("agent/...")}, To: []string{tally("server/..."), tally("loadtest/...")},
			Why: "the agent binary runs on every endpoint and links no server or load-test code"},
		{From: []string{tally("agent/...")}, To: []string{"github.com/mattn/go-sqlite3/...", "modernc.org/sqlite/..."},
			Why: "the agent cross-compiles for every OS without a C compiler, so it never links SQLite"},
		{From: []string{tally("server/...")}, To: []string{tally("agent/..."), tally("loadtest/...")},
			Why: "the server links no agent code; what both sides share lives in protocol or common"},
		{From: []string{tally("common/...")}, To: []string{tally("agent/..."), tally("server/..."), tally("loadtest/...")},
			Why: "common holds what both binaries share, so it can depend on neither"},
		{From: []string{tally("server/engine"), tally("server/catalog")}, To: []string{"database/sql", "net", "github.com/mattn/go-sqlite3/..."},
			Why: "the license engine is pure: facts, event and now in, decision and effects out"},
		{From: []string{tally("server/engine"), tally("server/catalog")}, To: []string{"os", "os/exec", "syscall", "io/fs"}, Direct: true,
			Why: "the license engine is pure: it reads no file and starts no process"},
		{From: []string{tally("agent/cmd/tally-agent"), tally("server/cmd/tally-server")}, To: []string{"testing"},
			Why: "test helpers live in …test packages and test files, never in what ships"},
	}
}

// A Graph maps each package's import path to the paths it imports itself.
type Graph map[string][]string

// A Violation is one forbidden arrow found in a graph: Chain runs from the
// importing package to the forbidden one.
type Violation struct {
	Rule  Rule
	Chain []string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s (%s)", strings.Join(v.Chain, " → "), v.Rule.Why)
}

// Match reports whether the import path p matches pattern.
func Match(pattern, p string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == base || strings.HasPrefix(p, base+"/")
	}
	return p == pattern
}

func matchAny(patterns []string, p string) bool {
	for _, pat := range patterns {
		if Match(pat, p) {
			return true
		}
	}
	return false
}

// Check returns every package in g that breaks a rule, with the shortest
// chain of imports that breaks it, in a stable order.
func Check(g Graph, rules []Rule) []Violation {
	pkgs := make([]string, 0, len(g))
	for p := range g {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	var out []Violation
	for _, r := range rules {
		for _, p := range pkgs {
			if !matchAny(r.From, p) {
				continue
			}
			if chain := find(g, p, r); chain != nil {
				out = append(out, Violation{Rule: r, Chain: chain})
			}
		}
	}
	return out
}

// find walks g breadth first from start and returns the first chain that
// ends in a package r forbids, or nil.
func find(g Graph, start string, r Rule) []string {
	if r.Direct {
		for _, imp := range g[start] {
			if matchAny(r.To, imp) {
				return []string{start, imp}
			}
		}
		return nil
	}
	parent := map[string]string{start: ""}
	queue := []string{start}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, imp := range g[p] {
			if _, seen := parent[imp]; seen {
				continue
			}
			parent[imp] = p
			if matchAny(r.To, imp) {
				var chain []string
				for q := imp; q != ""; q = parent[q] {
					chain = append([]string{q}, chain...)
				}
				return chain
			}
			queue = append(queue, imp)
		}
	}
	return nil
}

// Unmatched returns the From patterns of rules that match no package in g:
// a rule whose package moved away would otherwise pass by checking nothing.
func Unmatched(g Graph, rules []Rule) []string {
	var out []string
	for _, r := range rules {
		for _, pat := range r.From {
			found := false
			for p := range g {
				if Match(pat, p) {
					found = true
					break
				}
			}
			if !found {
				out = append(out, pat)
			}
		}
	}
	return out
}

// Load lists the packages matched by patterns and all they depend on, as
// `go list -deps` sees them from dir with the extra environment env (for
// example GOOS=windows); test files are not part of the graph, since no
// binary links them.
func Load(ctx context.Context, dir string, env []string, patterns ...string) (Graph, error) {
	args := append([]string{"list", "-deps", "-json=ImportPath,Imports,Error"}, patterns...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	g := Graph{}
	dec := json.NewDecoder(out)
	var decodeErr error
	for {
		var p struct {
			ImportPath string
			Imports    []string
			Error      *struct{ Err string }
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			decodeErr = fmt.Errorf("go list output: %w", err)
			break
		}
		if p.Error != nil {
			decodeErr = fmt.Errorf("go list: %s: %s", p.ImportPath, p.Error.Err)
			break
		}
		g[p.ImportPath] = p.Imports
	}
	if decodeErr != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, decodeErr
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("go list %s: %w: %s", strings.Join(patterns, " "), err, strings.TrimSpace(stderr.String()))
	}
	return g, nil
}
