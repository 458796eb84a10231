package dpkg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/tallyhq/tally/agent/software/rootfs"
	"github.com/tallyhq/tally/protocol"
)

// Database locations, relative to the system root.
const (
	StatusFile = "var/lib/dpkg/status"
	StatusDir  = "var/lib/dpkg/status.d"
	InfoDir    = "var/lib/dpkg/info"
)

// Source is the protocol.Package Source of every package found here.
const Source = "dpkg"

// Collect inventories the dpkg database of the system whose root is fsys.
// A system without one yields nothing and no error; a database present but
// unreadable is an error; skipped stanzas are problems.
func Collect(ctx context.Context, fsys fs.FS) (pkgs []protocol.Package, problems []string, err error) {
	var entries []Entry
	data, err := rootfs.ReadFile(fsys, StatusFile, rootfs.DefaultReadLimit)
	switch {
	case err == nil:
		var skipped []error
		entries, skipped = Parse(data)
		for _, e := range skipped {
			problems = append(problems, fmt.Sprintf("%s: %v", StatusFile, e))
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, nil, fmt.Errorf("read dpkg status: %w", err)
	}

	dirEntries, err := fs.ReadDir(fsys, StatusDir)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
	default:
		problems = append(problems, fmt.Sprintf("%s: %v", StatusDir, err))
	}
	for _, de := range dirEntries {
		name := de.Name()
		if strings.HasSuffix(name, ".md5sums") || strings.HasPrefix(name, ".") || de.IsDir() {
			continue
		}
		file := StatusDir + "/" + name
		data, err := rootfs.ReadFile(fsys, file, 1<<20)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", file, err))
			continue
		}
		more, skipped := Parse(data)
		for _, e := range skipped {
			problems = append(problems, fmt.Sprintf("%s: %v", file, e))
		}
		entries = append(entries, more...)
	}

	// Distroless images have no info directory: do not stat into it per package.
	fi, err := fs.Stat(fsys, InfoDir)
	hasInfo := err == nil && fi.IsDir()

	pkgs = make([]protocol.Package, 0, len(entries))
	seen := make(map[[3]string]bool, len(entries))
	for i, e := range entries {
		if i%256 == 0 && ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if !e.Installed() {
			continue
		}
		// status and status.d could both list a package.
		key := [3]string{e.Package, e.Architecture, e.Version}
		if seen[key] {
			continue
		}
		seen[key] = true
		var date int64
		if hasInfo {
			date = installDate(fsys, e)
		}
		pkgs = append(pkgs, protocol.Package{
			Name:        e.Package,
			Version:     e.Version,
			Arch:        e.Architecture,
			Publisher:   e.Publisher(),
			InstallDate: date,
			Source:      Source,
		})
	}
	return pkgs, problems, nil
}

// installDate is the modification time of the package's file list, which
// dpkg rewrites when it unpacks the package: the last install or upgrade.
// Multi-Arch: same packages' lists carry the architecture in their name.
func installDate(fsys fs.FS, e Entry) int64 {
	names := [2]string{e.Package + ".list", e.Package + ":" + e.Architecture + ".list"}
	if e.MultiArch == "same" {
		names[0], names[1] = names[1], names[0]
	}
	for _, n := range names {
		if fi, err := fs.Stat(fsys, InfoDir+"/"+n); err == nil && fi.Mode().IsRegular() {
			return fi.ModTime().Unix()
		}
	}
	return 0
}
