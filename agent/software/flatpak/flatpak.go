// Package flatpak inventories Flatpak applications, system-wide
// (/var/lib/flatpak) and per user (~/.local/share/flatpak under /home and
// /root), from each deployed branch's "active" directory: the metadata key
// file gives the application ID, the AppStream metainfo the version (its
// newest release) and the developer, reported as Publisher.
//
// Runtimes (/var/lib/flatpak/runtime) are not listed: they are platform
// libraries shared by applications, the way a distribution's libraries are
// not what an application inventory is for. InstallDate is the modification
// time of the deployment's "deploy" file, written when flatpak deploys it.
// An application without metainfo is listed with an empty version.
package flatpak

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/tallyhq/tally/agent/software/rootfs"
	"github.com/tallyhq/tally/protocol"
)

// Source is the protocol.Package Source of every package found here.
const Source = "flatpak"

// maxFile bounds the metadata and metainfo files read.
const maxFile = 4 << 20

// Metadata is the part of a deployment's metadata key file used here.
type Metadata struct {
	Name    string // [Application] name: the application ID
	Runtime string // [Application] runtime
}

// ParseMetadata reads a flatpak metadata key file (INI-like: [Group],
// key=value, # comments).
func ParseMetadata(data []byte) (Metadata, error) {
	var m Metadata
	group := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxFile)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || l[0] == '#' || l[0] == ';':
		case l[0] == '[':
			group = strings.TrimSuffix(l[1:], "]")
		case group == "Application":
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "name":
				m.Name = strings.TrimSpace(v)
			case "runtime":
				m.Runtime = strings.TrimSpace(v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return m, fmt.Errorf("read metadata: %w", err)
	}
	if m.Name == "" {
		return m, errors.New("metadata: no [Application] name")
	}
	return m, nil
}

// Metainfo is the part of an AppStream metainfo (or older appdata) file
// used here.
type Metainfo struct {
	ID          string
	Name        string // the untranslated <name>
	Developer   string
	Version     string // of the first <release>, the newest by AppStream's rule
	ReleaseDate string
}

type langText struct {
	Lang  string `xml:"lang,attr"`
	Value string `xml:",chardata"`
}

type component struct {
	ID            string     `xml:"id"`
	Names         []langText `xml:"name"`
	DeveloperName []langText `xml:"developer_name"`
	Developer     struct {
		Names []langText `xml:"name"`
	} `xml:"developer"`
	Releases struct {
		Release []struct {
			Version string `xml:"version,attr"`
			Date    string `xml:"date,attr"`
		} `xml:"release"`
	} `xml:"releases"`
}

// untranslated returns the text without xml:lang.
func untranslated(ts []langText) string {
	for _, t := range ts {
		if t.Lang == "" {
			return strings.TrimSpace(t.Value)
		}
	}
	return ""
}

// ParseMetainfo reads an AppStream metainfo file.
func ParseMetainfo(data []byte) (Metainfo, error) {
	var c component
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = false
	if err := d.Decode(&c); err != nil {
		return Metainfo{}, fmt.Errorf("decode metainfo: %w", err)
	}
	m := Metainfo{ID: strings.TrimSpace(c.ID), Name: untranslated(c.Names), Developer: untranslated(c.DeveloperName)}
	if m.Developer == "" {
		m.Developer = untranslated(c.Developer.Names)
	}
	if len(c.Releases.Release) > 0 {
		m.Version, m.ReleaseDate = c.Releases.Release[0].Version, c.Releases.Release[0].Date
	}
	return m, nil
}

// installations lists the flatpak installations of the system whose root
// is fsys: the system one, then each user's.
func installations(fsys fs.FS) []string {
	dirs := []string{"var/lib/flatpak", "root/.local/share/flatpak"}
	homes, _ := fs.ReadDir(fsys, "home")
	for _, h := range homes {
		if h.IsDir() || h.Type()&fs.ModeSymlink != 0 {
			dirs = append(dirs, path.Join("home", h.Name(), ".local/share/flatpak"))
		}
	}
	return dirs
}

// Collect inventories the Flatpak applications of the system whose root is
// fsys. A system without Flatpak yields nothing and no error.
func Collect(ctx context.Context, fsys fs.FS) (pkgs []protocol.Package, problems []string, err error) {
	for _, inst := range installations(fsys) {
		apps, err := fs.ReadDir(fsys, path.Join(inst, "app"))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				problems = append(problems, fmt.Sprintf("%s/app: %v", inst, err))
			}
			continue
		}
		for _, app := range apps {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			id := app.Name()
			archs, _ := fs.ReadDir(fsys, path.Join(inst, "app", id))
			for _, arch := range archs {
				if !arch.IsDir() || arch.Name() == "current" {
					continue
				}
				branches, _ := fs.ReadDir(fsys, path.Join(inst, "app", id, arch.Name()))
				for _, branch := range branches {
					active := path.Join(inst, "app", id, arch.Name(), branch.Name(), "active")
					p, err := deployment(fsys, active, id, arch.Name())
					if errors.Is(err, fs.ErrNotExist) {
						continue // not deployed
					}
					if err != nil {
						problems = append(problems, fmt.Sprintf("%s: %v", active, err))
						continue
					}
					pkgs = append(pkgs, p)
				}
			}
		}
	}
	return pkgs, problems, nil
}

// deployment reads one deployed branch.
func deployment(fsys fs.FS, active, id, arch string) (protocol.Package, error) {
	data, err := rootfs.ReadFile(fsys, path.Join(active, "metadata"), maxFile)
	if err != nil {
		return protocol.Package{}, err
	}
	md, err := ParseMetadata(data)
	if err != nil {
		return protocol.Package{}, err
	}
	p := protocol.Package{Name: md.Name, Arch: arch, Source: Source}
	if mi, ok := metainfo(fsys, active, id); ok {
		p.Version, p.Publisher = mi.Version, mi.Developer
	}
	if fi, err := fs.Stat(fsys, path.Join(active, "deploy")); err == nil {
		p.InstallDate = fi.ModTime().Unix()
	}
	return p, nil
}

// metainfo finds and reads the application's metainfo: under files/share
// where the application installs it, or under export/share.
func metainfo(fsys fs.FS, active, id string) (Metainfo, bool) {
	var candidates []string
	for _, dir := range []string{"files/share/metainfo", "files/share/appdata", "export/share/metainfo"} {
		for _, ext := range []string{".metainfo.xml", ".appdata.xml"} {
			candidates = append(candidates, path.Join(active, dir, id+ext))
		}
	}
	// Any other metainfo exported, for an ID that differs in case or suffix.
	if extra, err := fs.Glob(fsys, path.Join(active, "export/share/metainfo/*.xml")); err == nil {
		candidates = append(candidates, extra...)
	}
	for _, c := range candidates {
		data, err := rootfs.ReadFile(fsys, c, maxFile)
		if err != nil {
			continue
		}
		mi, err := ParseMetainfo(data)
		if err != nil || (mi.ID != "" && !strings.EqualFold(strings.TrimSuffix(mi.ID, ".desktop"), id)) {
			continue
		}
		return mi, true
	}
	return Metainfo{}, false
}
