// Package snap inventories snaps: from each mounted snap's meta/snap.yaml
// under /snap (or /var/lib/snapd/snap, where Fedora and Arch mount them),
// and, for a caller that can ask snapd, from its REST API's /v2/snaps
// answer.
//
// snap.yaml is read with a tiny parser for the few top-level fields needed
// (name, version, type, architectures) rather than a YAML library. The
// file carries no publisher, so file-based packages have none; snapd's API
// has it. InstallDate is the modification time of the revision's .snap file
// under /var/lib/snapd/snaps, which snapd writes when it installs or
// refreshes it.
//
// In a root that is not a running system (an image, a disk), the snaps'
// squashfs files are not mounted and their snap.yaml cannot be read: those
// snaps are reported as a problem, not as packages without a version.
package snap

import (
	"bytes"
	"fmt"
	"strings"
)

// Meta is the part of a snap.yaml the inventory uses.
type Meta struct {
	Name          string
	Version       string
	Type          string // app, base, core, gadget, kernel, os, snapd
	Architectures []string
}

// ParseYAML reads the top-level scalar fields of a snap.yaml, and the
// architectures list in block ("- amd64") or flow ("[amd64, arm64]") form.
// Anything nested or multi-line is skipped. It fails only when name is
// missing.
func ParseYAML(data []byte) (Meta, error) {
	var m Meta
	inArch := false
	for len(data) > 0 {
		var l []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			l, data = data, nil
		}
		l = bytes.TrimRight(l, " \t\r")
		if len(l) == 0 || l[0] == '#' {
			continue
		}
		if l[0] == ' ' || l[0] == '\t' || l[0] == '-' {
			if item := bytes.TrimLeft(l, " \t"); inArch && bytes.HasPrefix(item, []byte("-")) {
				if a := scalar(item[1:]); a != "" {
					m.Architectures = append(m.Architectures, a)
				}
			}
			continue
		}
		inArch = false
		colon := bytes.IndexByte(l, ':')
		if colon <= 0 {
			continue
		}
		key, value := string(l[:colon]), l[colon+1:]
		switch key {
		case "name":
			m.Name = scalar(value)
		case "version":
			m.Version = scalar(value)
		case "type":
			m.Type = scalar(value)
		case "architectures":
			v := bytes.TrimSpace(value)
			if len(v) == 0 {
				inArch = true
			} else if v[0] == '[' {
				v = bytes.TrimSuffix(bytes.TrimPrefix(v, []byte("[")), []byte("]"))
				for _, a := range bytes.Split(v, []byte(",")) {
					if s := scalar(a); s != "" {
						m.Architectures = append(m.Architectures, s)
					}
				}
			} else {
				m.Architectures = append(m.Architectures, scalar(v))
			}
		}
	}
	if m.Name == "" {
		return m, fmt.Errorf("snap.yaml: no name")
	}
	return m, nil
}

// scalar decodes a one-line YAML scalar: plain (with a trailing " #"
// comment removed), 'single-quoted' or "double-quoted".
func scalar(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ""
	}
	switch b[0] {
	case '\'':
		if end := bytes.LastIndexByte(b, '\''); end > 0 {
			return strings.ReplaceAll(string(b[1:end]), "''", "'")
		}
	case '"':
		if end := bytes.LastIndexByte(b, '"'); end > 0 {
			return unescape(b[1:end])
		}
	case '|', '>':
		return "" // a block scalar: its lines follow, indented
	}
	if i := bytes.Index(b, []byte(" #")); i >= 0 {
		b = bytes.TrimSpace(b[:i])
	}
	return string(b)
}

// unescape handles the common escapes of a double-quoted scalar.
func unescape(b []byte) string {
	if bytes.IndexByte(b, '\\') < 0 {
		return string(b)
	}
	var s strings.Builder
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 == len(b) {
			s.WriteByte(b[i])
			continue
		}
		i++
		switch b[i] {
		case 'n':
			s.WriteByte('\n')
		case 't':
			s.WriteByte('\t')
		default:
			s.WriteByte(b[i])
		}
	}
	return s.String()
}
