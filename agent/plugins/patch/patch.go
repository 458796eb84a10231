// Package patch is the patch plug-in: each cycle it asks the server for the
// patch catalog (the minimum versions it publishes), compares the
// installed packages against it, posts what is below its minimum as a
// patch scan, and asks for the update packages of those. It reports; it
// installs nothing.
package patch

import (
	"context"
	"fmt"
	"sort"

	"github.com/tallyhq/tally/agent/plugins"
	"github.com/tallyhq/tally/protocol"
)

// Name, Version and BuildDate identify this build of the plug-in.
const (
	Name      = "patch"
	Version   = "7.1.0"
	BuildDate = "2026-11-25"
)

func init() {
	plugins.Register(plugins.Registration{Info: info, New: func() plugins.Plugin { return &Plugin{} }})
}

var info = plugins.Info{
	Name:      Name,
	Version:   Version,
	BuildDate: BuildDate,
	Summary:   "compares installed packages with the server's patch catalog and posts what is out of date",
	Stopped:   "patch scans are not made (only the package request that qualifies for a seat is sent)",
}

// Plugin is the patch plug-in.
type Plugin struct {
	missing []string // package names below their minimum at the last scan
	// Updates is how many update packages the server listed at the last
	// scan.
	Updates int
}

// Info describes the plug-in.
func (*Plugin) Info() plugins.Info { return info }

// Run scans, or, while the product is refused, only sends the package
// request (a qualifying post of patch 6.x) so that a freed seat is taken.
func (p *Plugin) Run(ctx context.Context, env plugins.Env) error {
	if !env.Online() {
		return nil // the catalog is needed first
	}
	if env.Status().Stopped() {
		return env.Call(ctx, protocol.KindPackageRequest, &protocol.PackageRequest{Plugin: env.Plugin(), Names: p.missing}, &protocol.PackageResponse{})
	}
	var cat protocol.CatalogResponse
	if err := env.Call(ctx, protocol.KindCatalogRequest, &protocol.PluginRequest{Plugin: env.Plugin()}, &cat); err != nil {
		return err
	}
	if refused(cat.Verdicts) {
		return nil // recorded: the plug-in is stopped until a seat is free
	}
	pkgs, err := env.Software(ctx)
	if err != nil {
		return fmt.Errorf("read installed packages: %w", err)
	}
	scan := Scan(pkgs, cat.Minimums)
	scan.CatalogVersion = cat.Version
	if err := env.Post(protocol.KindPluginData, &protocol.PluginDataRequest{Plugin: env.Plugin(), PatchScan: &scan}); err != nil {
		return err
	}
	p.missing = p.missing[:0]
	for _, f := range scan.Missing {
		p.missing = append(p.missing, f.Name)
	}
	if len(p.missing) == 0 {
		return nil
	}
	var pk protocol.PackageResponse
	if err := env.Call(ctx, protocol.KindPackageRequest, &protocol.PackageRequest{Plugin: env.Plugin(), Names: p.missing}, &pk); err != nil {
		return err
	}
	p.Updates = len(pk.Packages)
	env.Logger().Info("patch scan", "scanned", scan.Scanned, "below_minimum", len(scan.Missing), "updates_listed", len(pk.Packages))
	return nil
}

func refused(vs []protocol.ProductVerdict) bool {
	for _, v := range vs {
		if v.Verdict.Discarded() {
			return true
		}
	}
	return false
}

// Scan compares the installed packages with the minimum versions: a
// package below the minimum of its name (and source, when the minimum
// names one) is missing a patch. Several installed versions of one name
// (several architectures) are each judged.
func Scan(installed []protocol.Package, minimums []protocol.MinimumVersion) protocol.PatchScan {
	byName := make(map[string][]protocol.MinimumVersion, len(minimums))
	for _, m := range minimums {
		byName[m.Name] = append(byName[m.Name], m)
	}
	scan := protocol.PatchScan{Scanned: uint32(len(installed))}
	seen := map[[2]string]bool{}
	for _, p := range installed {
		for _, m := range byName[p.Name] {
			if m.Source != "" && m.Source != p.Source {
				continue
			}
			if CompareVersions(p.Version, m.Version) < 0 && !seen[[2]string{p.Name, p.Version}] {
				seen[[2]string{p.Name, p.Version}] = true
				scan.Missing = append(scan.Missing, protocol.PatchFinding{Name: p.Name, Installed: p.Version, Minimum: m.Version})
			}
		}
	}
	sort.Slice(scan.Missing, func(i, j int) bool {
		a, b := scan.Missing[i], scan.Missing[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Installed < b.Installed
	})
	return scan
}
