// Package software inventories the software installed on a system: it runs
// every package-database collector (dpkg, rpm, apk, snap, Flatpak, the
// Windows registry, macOS applications and receipts) whose database exists
// under a root, and merges what they find into one sorted list.
//
// The root is "/" for the running system, or another directory holding a
// system's tree: a chroot, a mounted container image, the host's root seen
// from inside a container. Every path is resolved inside the root, absolute
// symbolic links included (see rootfs), so a hostile image cannot make the
// agent read the host's files. The Windows registry is read only when root
// is the running system's own root: an offline image's hives are not parsed.
package software

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/tallyhq/tally/agent/software/apk"
	"github.com/tallyhq/tally/agent/software/dpkg"
	"github.com/tallyhq/tally/agent/software/flatpak"
	"github.com/tallyhq/tally/agent/software/macos"
	"github.com/tallyhq/tally/agent/software/rootfs"
	"github.com/tallyhq/tally/agent/software/rpm"
	"github.com/tallyhq/tally/agent/software/snap"
	"github.com/tallyhq/tally/agent/software/windows"
	"github.com/tallyhq/tally/protocol"
)

// Result is one inventory.
type Result struct {
	// Packages is sorted by source, name, arch, then version.
	Packages []protocol.Package
	// Problems are what was not inventoried and why: a database present but
	// unreadable, records skipped. Each starts with the collector's name.
	Problems []string
}

// maxProblemsPerCollector keeps a damaged database from flooding a report.
const maxProblemsPerCollector = 20

// collector is one package-database reader.
type collector struct {
	name    string
	collect func(context.Context, fs.FS) ([]protocol.Package, []string, error)
	// liveOnly collectors read the running system, not files under root.
	liveOnly bool
}

func collectors() []collector {
	return []collector{
		{name: "dpkg", collect: dpkg.Collect},
		{name: "rpm", collect: rpm.Collect},
		{name: "apk", collect: apk.Collect},
		{name: "snap", collect: snap.Collect},
		{name: "flatpak", collect: flatpak.Collect},
		{name: "macos", collect: macos.Collect},
		{name: "windows-registry", liveOnly: true, collect: func(ctx context.Context, _ fs.FS) ([]protocol.Package, []string, error) {
			return windows.Collect(ctx)
		}},
	}
}

// Collect inventories the system whose filesystem root is root. A
// collector whose database is absent is skipped; one whose database cannot
// be read adds a problem. Only a root that cannot be opened, or ctx ending,
// is an error.
func Collect(ctx context.Context, root string) (Result, error) {
	fsys, err := rootfs.Open(root)
	if err != nil {
		return Result{}, fmt.Errorf("software inventory: %w", err)
	}
	defer fsys.Close()
	live := isLiveRoot(root)

	var res Result
	for _, c := range collectors() {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		if c.liveOnly && !live {
			if runtime.GOOS == "windows" {
				res.Problems = append(res.Problems, c.name+": not read: "+root+" is not the running system's root")
			}
			continue
		}
		pkgs, problems, err := c.collect(ctx, fsys)
		if err != nil {
			if ctx.Err() != nil {
				return Result{}, ctx.Err()
			}
			problems = append(problems, err.Error())
		}
		if len(problems) > maxProblemsPerCollector {
			more := len(problems) - maxProblemsPerCollector
			problems = append(problems[:maxProblemsPerCollector], fmt.Sprintf("and %d more", more))
		}
		for _, p := range problems {
			res.Problems = append(res.Problems, c.name+": "+p)
		}
		res.Packages = append(res.Packages, pkgs...)
	}
	Sort(res.Packages)
	return res, nil
}

// Sort sorts packages by source, name, arch, then version: the order of
// Result.Packages.
func Sort(pkgs []protocol.Package) {
	// Every field takes part, so the order is total and a plain sort is
	// deterministic.
	slices.SortFunc(pkgs, func(a, b protocol.Package) int {
		return cmp.Or(
			strings.Compare(a.Source, b.Source),
			strings.Compare(a.Name, b.Name),
			strings.Compare(a.Arch, b.Arch),
			strings.Compare(a.Version, b.Version),
			strings.Compare(a.Publisher, b.Publisher),
			cmp.Compare(a.InstallDate, b.InstallDate),
		)
	})
}

// isLiveRoot reports whether root is the running system's own root
// directory.
func isLiveRoot(root string) bool {
	sys := "/"
	if runtime.GOOS == "windows" {
		sys = os.Getenv("SystemDrive") + `\`
		if sys == `\` {
			sys = `C:\`
		}
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return false
	}
	a, err := os.Stat(abs)
	if err != nil {
		return false
	}
	b, err := os.Stat(sys)
	if err != nil {
		return false
	}
	return os.SameFile(a, b)
}
