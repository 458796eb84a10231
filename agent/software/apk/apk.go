// Package apk inventories Alpine Linux (and other apk-tools systems) from
// apk's installed database, /lib/apk/db/installed (or /usr/lib/apk/db/
// installed, where apk-tools 3 moved it).
//
// The database records no install time: t: is the package's build time, so
// InstallDate is left unknown (0) rather than reporting a build date as an
// install date. Publisher is the name part of the m: (maintainer) field, as
// the dpkg collector does with Maintainer.
package apk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/tallyhq/tally/agent/software/rootfs"
	"github.com/tallyhq/tally/protocol"
)

// Source is the protocol.Package Source of every package found here.
const Source = "apk"

// databases are where apk keeps its installed database, relative to the
// root; the first that exists is read.
var databases = [...]string{"lib/apk/db/installed", "usr/lib/apk/db/installed"}

// Entry is the part of one installed-database record the inventory uses.
type Entry struct {
	Name       string // P:
	Version    string // V:
	Arch       string // A:
	Maintainer string // m:
	Origin     string // o: the source package
	BuildTime  int64  // t: unix seconds
	Line       int    // 1-based line of the record's first field
}

// Publisher returns the maintainer without the e-mail address.
func (e Entry) Publisher() string {
	m := e.Maintainer
	if i := strings.IndexByte(m, '<'); i >= 0 {
		if name := strings.TrimSpace(m[:i]); name != "" {
			return name
		}
	}
	return strings.TrimSpace(m)
}

// Parse reads an installed database: records separated by blank lines,
// one "X:value" field per line. A record without P: or V: is reported in
// skipped; lines of other shapes are ignored, as apk ignores them.
func Parse(data []byte) (entries []Entry, skipped []error) {
	var (
		cur     Entry
		started bool
		line    int
		dropped int
	)
	finish := func() {
		switch {
		case !started:
		case cur.Name == "" || cur.Version == "":
			if len(skipped) < maxSkipped {
				skipped = append(skipped, fmt.Errorf("record at line %d: no P: or V: field", cur.Line))
			} else {
				dropped++
			}
		default:
			entries = append(entries, cur)
		}
		cur, started = Entry{}, false
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
		if len(l) == 0 {
			finish()
			continue
		}
		if !started {
			started, cur.Line = true, line
		}
		if len(l) < 2 || l[1] != ':' {
			continue
		}
		v := l[2:]
		switch l[0] {
		case 'P':
			cur.Name = string(v)
		case 'V':
			cur.Version = string(v)
		case 'A':
			cur.Arch = string(v)
		case 'm':
			cur.Maintainer = string(v)
		case 'o':
			cur.Origin = string(v)
		case 't':
			cur.BuildTime, _ = strconv.ParseInt(string(v), 10, 64)
		}
	}
	finish()
	if dropped > 0 {
		skipped = append(skipped, fmt.Errorf("%d more records skipped", dropped))
	}
	return entries, skipped
}

// maxSkipped bounds the errors Parse returns, whatever the input.
const maxSkipped = 100

// Collect inventories the apk database of the system whose root is fsys.
// A system without one yields nothing and no error.
func Collect(ctx context.Context, fsys fs.FS) (pkgs []protocol.Package, problems []string, err error) {
	for _, path := range databases {
		data, err := rootfs.ReadFile(fsys, path, rootfs.DefaultReadLimit)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read apk database: %w", err)
		}
		entries, skipped := Parse(data)
		for _, e := range skipped {
			problems = append(problems, fmt.Sprintf("%s: %v", path, e))
		}
		pkgs = make([]protocol.Package, 0, len(entries))
		for _, e := range entries {
			pkgs = append(pkgs, protocol.Package{
				Name:      e.Name,
				Version:   e.Version,
				Arch:      e.Arch,
				Publisher: e.Publisher(),
				Source:    Source,
			})
		}
		return pkgs, problems, ctx.Err()
	}
	return nil, nil, nil
}
