// Package macos inventories macOS software: application bundles (each
// Contents/Info.plist) in /Applications and in every user's ~/Applications,
// one folder level deep ("/Applications/Utilities/X.app"), and the installer
// receipts pkgutil keeps in /var/db/receipts.
//
// Discovery reads files only, through an fs.FS, so it is built and tested
// on every platform; Collect runs it on macOS. An application's Name is its
// CFBundleDisplayName, else CFBundleName, else the bundle's folder name; its
// Version CFBundleShortVersionString, else CFBundleVersion. Info.plist names
// no publisher and no install time, so both are left empty. Bundles inside
// bundles (helpers, plug-ins) are not listed.
package macos

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/tallyhq/tally/agent/software/macos/plist"
	"github.com/tallyhq/tally/agent/software/rootfs"
	"github.com/tallyhq/tally/protocol"
)

// Sources of the packages found here.
const (
	SourceApp     = "macos-app"
	SourcePkgutil = "macos-pkgutil"
)

// maxPlist bounds the property lists read.
const maxPlist = 16 << 20

const receiptsDir = "var/db/receipts"

// App is the part of an application's Info.plist the inventory uses.
type App struct {
	BundleID     string // CFBundleIdentifier
	Name         string // CFBundleName
	DisplayName  string // CFBundleDisplayName
	ShortVersion string // CFBundleShortVersionString
	Version      string // CFBundleVersion
}

// ParseInfoPlist reads an application's Info.plist, XML or binary.
func ParseInfoPlist(data []byte) (App, error) {
	m, err := dict(data)
	if err != nil {
		return App{}, err
	}
	return App{
		BundleID:     str(m, "CFBundleIdentifier"),
		Name:         str(m, "CFBundleName"),
		DisplayName:  str(m, "CFBundleDisplayName"),
		ShortVersion: str(m, "CFBundleShortVersionString"),
		Version:      str(m, "CFBundleVersion"),
	}, nil
}

// Package returns the inventory package of an application whose bundle is
// named bundle ("Google Chrome.app").
func (a App) Package(bundle string) protocol.Package {
	name := a.DisplayName
	if name == "" {
		name = a.Name
	}
	if name == "" {
		name = strings.TrimSuffix(bundle, ".app")
	}
	version := a.ShortVersion
	if version == "" {
		version = a.Version
	}
	return protocol.Package{Name: name, Version: version, Source: SourceApp}
}

// Receipt is the part of a pkgutil receipt the inventory uses.
type Receipt struct {
	PackageID   string
	Version     string
	InstallDate time.Time
}

// ParseReceipt reads a receipt from /var/db/receipts/<id>.plist.
func ParseReceipt(data []byte) (Receipt, error) {
	m, err := dict(data)
	if err != nil {
		return Receipt{}, err
	}
	r := Receipt{PackageID: str(m, "PackageIdentifier"), Version: str(m, "PackageVersion")}
	if d, ok := m["InstallDate"].(time.Time); ok {
		r.InstallDate = d
	}
	if r.PackageID == "" {
		return r, errors.New("receipt: no PackageIdentifier")
	}
	return r, nil
}

// Package returns the inventory package of a receipt.
func (r Receipt) Package() protocol.Package {
	p := protocol.Package{Name: r.PackageID, Version: r.Version, Source: SourcePkgutil}
	if !r.InstallDate.IsZero() {
		p.InstallDate = r.InstallDate.Unix()
	}
	return p
}

func dict(data []byte) (map[string]any, error) {
	v, err := plist.Decode(data)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: top-level %T, not a dict", plist.ErrCorrupt, v)
	}
	return m, nil
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return strings.TrimSpace(s)
}

// Scan inventories the applications and receipts of the macOS system whose
// root is fsys. A system with neither yields nothing and no error.
func Scan(ctx context.Context, fsys fs.FS) (pkgs []protocol.Package, problems []string, err error) {
	dirs := []string{"Applications"}
	users, _ := fs.ReadDir(fsys, "Users")
	for _, u := range users {
		if u.IsDir() && u.Name() != "Shared" && !strings.HasPrefix(u.Name(), ".") {
			dirs = append(dirs, path.Join("Users", u.Name(), "Applications"))
		}
	}
	for _, dir := range dirs {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		pkgs, problems = scanApps(fsys, dir, 1, pkgs, problems)
	}

	receipts, err := fs.ReadDir(fsys, receiptsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		problems = append(problems, fmt.Sprintf("%s: %v", receiptsDir, err))
	}
	for _, e := range receipts {
		if !strings.HasSuffix(e.Name(), ".plist") || e.IsDir() {
			continue // .bom files sit beside the receipts
		}
		file := path.Join(receiptsDir, e.Name())
		data, err := rootfs.ReadFile(fsys, file, maxPlist)
		if err == nil {
			var r Receipt
			if r, err = ParseReceipt(data); err == nil {
				pkgs = append(pkgs, r.Package())
				continue
			}
		}
		problems = append(problems, fmt.Sprintf("%s: %v", file, err))
	}
	return pkgs, problems, nil
}

// scanApps lists the bundles in dir, descending into plain folders up to
// depth more levels.
func scanApps(fsys fs.FS, dir string, depth int, pkgs []protocol.Package, problems []string) ([]protocol.Package, []string) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			problems = append(problems, fmt.Sprintf("%s: %v", dir, err))
		}
		return pkgs, problems
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !e.IsDir() && e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		if !strings.HasSuffix(name, ".app") {
			if depth > 0 && e.IsDir() {
				pkgs, problems = scanApps(fsys, path.Join(dir, name), depth-1, pkgs, problems)
			}
			continue
		}
		file := path.Join(dir, name, "Contents/Info.plist")
		data, err := rootfs.ReadFile(fsys, file, maxPlist)
		if errors.Is(err, fs.ErrNotExist) {
			continue // an alias, or a bundle without Info.plist (iOS-style wrappers)
		}
		if err == nil {
			var a App
			if a, err = ParseInfoPlist(data); err == nil {
				pkgs = append(pkgs, a.Package(name))
				continue
			}
		}
		problems = append(problems, fmt.Sprintf("%s: %v", file, err))
	}
	return pkgs, problems
}
