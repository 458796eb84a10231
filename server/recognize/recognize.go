// Package recognize tells which applications a software package is: an
// administrator defines applications by rules over the packages agents
// report (a name, exact or a glob; a version range; a package source),
// and an Index built from them matches a package against every rule at
// the cost of a map lookup plus the few globs whose literal prefix the
// name begins with. It is pure, so the store calls it inside the
// transaction that writes a software set.
package recognize

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Sources a rule may name: the package databases agents read.
var Sources = []string{"dpkg", "rpm", "apk", "snap", "flatpak", "windows-registry", "macos-app", "macos-pkgutil"}

// Rule recognises an application's packages.
type Rule struct {
	// Package is the package name, exact, or a glob where * matches any
	// run of characters and ? one; case-insensitive, as Windows and macOS
	// names vary in case between releases.
	Package string `json:"package"`
	// Versions is a range such as ">=2.0, <3" (empty: any version); see
	// ParseRange.
	Versions string `json:"versions,omitempty"`
	// Source restricts the rule to one package database (empty: any).
	Source string `json:"source,omitempty"`
}

// Limits of a definition, so that a hostile import cannot make matching
// costly.
const (
	MaxRules      = 64
	MaxPatternLen = 256
	MaxWildcards  = 8
)

// Validate checks a rule.
func (r Rule) Validate() error {
	p := strings.TrimSpace(r.Package)
	switch {
	case p == "":
		return fmt.Errorf("a rule needs a package name or glob")
	case len(p) > MaxPatternLen:
		return fmt.Errorf("package pattern of %d bytes: at most %d", len(p), MaxPatternLen)
	case !utf8.ValidString(p):
		return fmt.Errorf("package pattern %q is not valid UTF-8", p)
	case strings.Count(p, "*")+strings.Count(p, "?") > MaxWildcards:
		return fmt.Errorf("package pattern %q: at most %d wildcards", p, MaxWildcards)
	case p == "*":
		return fmt.Errorf("package pattern * would recognise every package: name the package, or a glob with some letters (firefox*, libreoffice-*)")
	}
	if r.Source != "" && !slices.Contains(Sources, r.Source) {
		return fmt.Errorf("source %q: want one of %s", r.Source, strings.Join(Sources, ", "))
	}
	if _, err := ParseRange(r.Versions); err != nil {
		return err
	}
	return nil
}

// Application is what an Index recognises.
type Application struct {
	ID    int64
	Rules []Rule
}

// Package is what a rule looks at.
type Package struct {
	Source, Name, Version string
}

type compiled struct {
	app     int64
	pattern string // lower case
	glob    bool
	source  string
	rng     Range
}

func (c *compiled) match(p Package, lname string) bool {
	if c.source != "" && c.source != p.Source {
		return false
	}
	if c.glob {
		if !globMatch(c.pattern, lname) {
			return false
		}
	} else if c.pattern != lname {
		return false
	}
	return c.rng.Contains(p.Version)
}

// Index matches packages against the rules of many applications.
type Index struct {
	exact map[string][]*compiled
	// globs by the first byte of their literal prefix; wild holds those
	// that begin with a wildcard.
	globs map[byte][]*compiled
	wild  []*compiled
	apps  int
}

// NewIndex compiles the applications' rules; a bad rule is an error
// naming the application.
func NewIndex(apps []Application) (*Index, error) {
	ix := &Index{exact: map[string][]*compiled{}, globs: map[byte][]*compiled{}, apps: len(apps)}
	for _, a := range apps {
		for _, r := range a.Rules {
			if err := r.Validate(); err != nil {
				return nil, fmt.Errorf("application %d: %w", a.ID, err)
			}
			rng, _ := ParseRange(r.Versions)
			c := &compiled{app: a.ID, pattern: strings.ToLower(strings.TrimSpace(r.Package)), source: r.Source, rng: rng}
			if strings.ContainsAny(c.pattern, "*?") {
				c.glob = true
				if first := c.pattern[0]; first == '*' || first == '?' {
					ix.wild = append(ix.wild, c)
				} else {
					ix.globs[first] = append(ix.globs[first], c)
				}
			} else {
				ix.exact[c.pattern] = append(ix.exact[c.pattern], c)
			}
		}
	}
	return ix, nil
}

// Empty reports whether the index recognises nothing.
func (ix *Index) Empty() bool {
	return ix == nil || (len(ix.exact) == 0 && len(ix.globs) == 0 && len(ix.wild) == 0)
}

// Match returns the IDs of the applications p is, ascending, appended to
// dst.
func (ix *Index) Match(dst []int64, p Package) []int64 {
	if ix.Empty() {
		return dst
	}
	start := len(dst)
	lname := strings.ToLower(p.Name)
	for _, c := range ix.exact[lname] {
		if c.match(p, lname) {
			dst = append(dst, c.app)
		}
	}
	if lname != "" {
		for _, c := range ix.globs[lname[0]] {
			if c.match(p, lname) {
				dst = append(dst, c.app)
			}
		}
	}
	for _, c := range ix.wild {
		if c.match(p, lname) {
			dst = append(dst, c.app)
		}
	}
	got := dst[start:]
	slices.Sort(got)
	return append(dst[:start], slices.Compact(got)...)
}

// globMatch matches * and ? (on runes) without backtracking blow-up: the
// classic greedy algorithm with one saved star position.
func globMatch(pattern, name string) bool {
	p, n := []rune(pattern), []rune(name)
	pi, ni, star, mark := 0, 0, -1, 0
	for ni < len(n) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == n[ni]):
			pi++
			ni++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, ni
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			ni = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
