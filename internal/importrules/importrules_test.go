package importrules

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// sample names a package that pattern matches.
func sample(pattern string) string {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return base + "/sample"
	}
	return pattern
}

// middle is a package no rule mentions, to build chains through.
const middle = "example.com/middle"

// Every listed arrow, once it appears in a graph, is reported under its
// rule: directly for every rule, and through another package for the
// rules that forbid any chain.
func TestEveryForbiddenArrowIsReported(t *testing.T) {
	rules := Rules()
	for _, r := range rules {
		for _, from := range r.From {
			for _, to := range r.To {
				src, dst := sample(from), sample(to)
				graphs := map[string]Graph{"direct": {src: {dst}, dst: nil}}
				if !r.Direct {
					graphs["through "+middle] = Graph{src: {middle}, middle: {dst}, dst: nil}
				}
				for how, g := range graphs {
					t.Run(fmt.Sprintf("%s→%s/%s", src, dst, how), func(t *testing.T) {
						vs := Check(g, rules)
						if !slices.ContainsFunc(vs, func(v Violation) bool {
							return v.Rule.Why == r.Why && v.Chain[0] == src && v.Chain[len(v.Chain)-1] == dst
						}) {
							t.Fatalf("%s → %s not reported under %q; reported: %v", src, dst, r.Why, vs)
						}
					})
				}
			}
		}
	}
}

func TestCheckReportsTheChain(t *testing.T) {
	g := Graph{
		Module + "/server/cli":     {Module + "/common/logging", Module + "/server/daemon"},
		Module + "/server/daemon":  {Module + "/loadtest/loadgen"},
		Module + "/common/logging": nil,
		Module + "/loadtest/loadgen": {
			Module + "/agent/client",
		},
		Module + "/agent/client": nil,
	}
	vs := Check(g, Rules())
	var got []string
	for _, v := range vs {
		got = append(got, strings.Join(v.Chain, " → "))
	}
	// One violation a rule and package, the shortest chain: server →
	// loadtest is found first, from both server packages.
	want := []string{
		Module + "/server/cli → " + Module + "/server/daemon → " + Module + "/loadtest/loadgen",
		Module + "/server/daemon → " + Module + "/loadtest/loadgen",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("chains:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The arrows the design allows are not reported, and a Direct rule lets
// a package reach what it may not import itself (the engine's fmt links os).
func TestAllowedArrowsAreNotReported(t *testing.T) {
	g := Graph{
		Module + "/server/engine":     {"fmt", Module + "/protocol", Module + "/server/catalog"},
		Module + "/server/catalog":    {"embed"},
		"fmt":                         {"os"},
		"os":                          {"syscall"},
		"syscall":                     nil,
		"embed":                       nil,
		Module + "/protocol":          {"github.com/fxamacker/cbor/v2"},
		Module + "/agent/runner":      {Module + "/common/clock", Module + "/protocol", "os", "net"},
		Module + "/server/daemon":     {Module + "/common/clock", Module + "/server/engine", "database/sql", "net"},
		Module + "/common/clock":      nil,
		Module + "/loadtest/loadgen":  {Module + "/agent/runner", Module + "/server/daemon"},
		Module + "/server/servertest": {"testing", Module + "/server/daemon"},
	}
	if vs := Check(g, Rules()); len(vs) != 0 {
		t.Errorf("allowed graph reported: %v", vs)
	}
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{"net", "net", true},
		{"net", "net/http", false},
		{"net/...", "net/http", true},
		{"a/server/...", "a/server", true},
		{"a/server/...", "a/serverx", false},
		{"a/server/...", "a/server/x/y", true},
	} {
		if got := Match(c.pattern, c.path); got != c.want {
			t.Errorf("Match(%q, %q) = %v", c.pattern, c.path, got)
		}
	}
}

// The real module breaks no rule, on each OS the binaries are built for,
// and every rule still names packages that exist.
func TestModuleBreaksNoRule(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, goos := range []string{"linux", "windows", "darwin"} {
		t.Run(goos, func(t *testing.T) {
			env := []string{"GOOS=" + goos}
			if goos != "linux" {
				env = append(env, "CGO_ENABLED=0")
			}
			g, err := Load(ctx, "../..", env, "./...")
			if err != nil {
				t.Fatal(err)
			}
			if len(g) < 50 {
				t.Fatalf("go list found only %d packages", len(g))
			}
			for _, v := range Check(g, Rules()) {
				t.Errorf("forbidden import: %s", v)
			}
			if un := Unmatched(g, Rules()); len(un) > 0 {
				t.Errorf("rules name packages that no longer exist: %v", un)
			}
		})
	}
}

func TestLoadReportsAnError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := Load(ctx, "../..", nil, "./no/such/folder"); err == nil {
		t.Error("go list of a missing folder gave no error")
	}
}
