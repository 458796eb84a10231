// Package dpkg inventories Debian-family systems from dpkg's own database:
// /var/lib/dpkg/status, and the one-stanza-per-package files in
// /var/lib/dpkg/status.d/ that distroless images carry instead.
//
// A package counts as installed when the third word of its Status field is
// "installed", whatever the selection in front of it: "install ok
// installed" (dpkg-query's "ii") but also "hold ok installed" ("hi") and
// "deinstall ok installed" ("ri"), whose files are all on disk. Packages
// that are half-installed, unpacked only, or removed with their
// configuration files left ("rc") are not counted. A status.d stanza has no
// Status field and is installed by construction.
//
// Publisher is the name part of the Maintainer field, without the address:
// for distribution packages that is the distribution's team ("Ubuntu
// Developers"), which matches what rpm's Vendor reports on the other side;
// for third-party packages it is the vendor ("Microsoft Corporation"), which
// is what a license inventory wants to tell apart.
package dpkg

import (
	"bytes"
	"fmt"
	"strings"
)

// Entry is the part of one control stanza the inventory uses.
type Entry struct {
	Package      string
	Version      string // as dpkg writes it, epoch included ("1:2.30-1")
	Architecture string // "amd64", "all", ...
	MultiArch    string // "same", "foreign", "allowed" or ""
	Maintainer   string
	// Status is the Status field ("install ok installed"); empty in a
	// status.d stanza.
	Status string
	// Source and SourceVersion come from "Source: name (version)"; the
	// version is empty when it equals the binary package's.
	Source        string
	SourceVersion string
	// Line is the 1-based line of the stanza's first field.
	Line int
}

// Installed reports whether the package's files are installed.
func (e Entry) Installed() bool {
	if e.Status == "" {
		return true // status.d
	}
	f := strings.Fields(e.Status)
	return len(f) == 3 && f[2] == "installed"
}

// Publisher returns the Maintainer field without its e-mail address.
func (e Entry) Publisher() string {
	m := e.Maintainer
	if i := strings.IndexByte(m, '<'); i >= 0 {
		if name := strings.TrimSpace(m[:i]); name != "" {
			return name
		}
		return strings.TrimSpace(strings.Trim(m[i:], "<> \t"))
	}
	return strings.TrimSpace(m)
}

// Parse reads the stanzas of a dpkg status file or of one status.d file.
// It never fails as a whole: a stanza without a Package or Version field, or
// a line that is neither a field nor a continuation, is reported in skipped
// and the rest is kept.
func Parse(data []byte) (entries []Entry, skipped []error) {
	p := parser{intern: map[string]string{}}
	entries = make([]Entry, 0, bytes.Count(data, []byte("\nPackage:"))+1)
	var (
		cur     Entry
		started bool
		bad     bool
		line    int
		dropped int
	)
	skip := func(err error) {
		if len(skipped) < maxSkipped {
			skipped = append(skipped, err)
		} else {
			dropped++
		}
	}
	finish := func() {
		switch {
		case !started:
		case bad:
		case cur.Package == "":
			skip(fmt.Errorf("stanza at line %d: no Package field", cur.Line))
		case cur.Version == "" && cur.Installed():
			skip(fmt.Errorf("stanza at line %d (%s): no Version field", cur.Line, cur.Package))
		default:
			entries = append(entries, cur)
		}
		cur, started, bad = Entry{}, false, false
	}
	for len(data) > 0 {
		line++
		var l []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			l, data = data, nil
		}
		l = bytes.TrimSuffix(l, []byte{'\r'})
		if len(bytes.TrimSpace(l)) == 0 {
			finish()
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			continue // continuation of a multi-line field none of ours uses
		}
		if !started {
			started, cur.Line = true, line
		}
		colon := bytes.IndexByte(l, ':')
		if colon <= 0 {
			if !bad {
				skip(fmt.Errorf("stanza at line %d: line %d is not a field", cur.Line, line))
			}
			bad = true
			continue
		}
		name, value := l[:colon], bytes.TrimSpace(l[colon+1:])
		switch name[0] | 0x20 { // lower-case the first letter for a cheap dispatch
		case 'p':
			if bytes.EqualFold(name, []byte("Package")) {
				cur.Package = string(value)
			}
		case 'v':
			if bytes.EqualFold(name, []byte("Version")) {
				cur.Version = string(value)
			}
		case 'a':
			if bytes.EqualFold(name, []byte("Architecture")) {
				cur.Architecture = p.str(value)
			}
		case 'm':
			if bytes.EqualFold(name, []byte("Maintainer")) {
				cur.Maintainer = p.str(value)
			} else if bytes.EqualFold(name, []byte("Multi-Arch")) {
				cur.MultiArch = p.str(value)
			}
		case 's':
			if bytes.EqualFold(name, []byte("Status")) {
				cur.Status = p.str(value)
			} else if bytes.EqualFold(name, []byte("Source")) {
				src, ver := value, []byte(nil)
				if i := bytes.IndexByte(value, '('); i >= 0 {
					src = bytes.TrimSpace(value[:i])
					ver = bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(value[i+1:]), []byte(")")))
				}
				cur.Source, cur.SourceVersion = p.str(src), string(ver)
			}
		}
	}
	finish()
	if dropped > 0 {
		skipped = append(skipped, fmt.Errorf("%d more stanzas skipped", dropped))
	}
	return entries, skipped
}

// maxSkipped bounds the errors Parse returns: a hostile file of a million
// broken stanzas must not cost a million errors.
const maxSkipped = 100

// parser interns the values that repeat across stanzas (architectures,
// maintainers, statuses, source names), so a 1,000-package file costs a few
// allocations per package rather than one per field.
type parser struct {
	intern map[string]string
}

func (p *parser) str(b []byte) string {
	if s, ok := p.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(p.intern) < 4096 {
		p.intern[s] = s
	}
	return s
}
