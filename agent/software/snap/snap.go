package snap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/tallyhq/tally/agent/software/rootfs"
	"github.com/tallyhq/tally/protocol"
)

// Source is the protocol.Package Source of every package found here.
const Source = "snap"

// mountDirs are where snapd mounts snaps: /snap, or /var/lib/snapd/snap on
// distributions whose policy forbids /snap (where /snap may link to it).
var mountDirs = [...]string{"snap", "var/lib/snapd/snap"}

const snapsDir = "var/lib/snapd/snaps"

// Collect inventories the snaps of the system whose root is fsys. A
// system without snapd yields nothing and no error.
func Collect(ctx context.Context, fsys fs.FS) (pkgs []protocol.Package, problems []string, err error) {
	seen := map[string]bool{} // instance/revision: /snap may link to the other
	var unmounted []string
	for _, dir := range mountDirs {
		entries, err := fs.ReadDir(fsys, dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", dir, err))
			continue
		}
		for _, e := range entries {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			instance := e.Name()
			if !e.IsDir() || instance == "bin" || strings.HasPrefix(instance, ".") {
				continue
			}
			current := path.Join(dir, instance, "current")
			rev, err := fs.ReadLink(fsys, current)
			if err != nil {
				continue // not a snap's directory
			}
			rev = path.Base(rev)
			if seen[instance+"/"+rev] {
				continue
			}
			seen[instance+"/"+rev] = true
			yamlPath := path.Join(current, "meta/snap.yaml")
			data, err := rootfs.ReadFile(fsys, yamlPath, 1<<20)
			if errors.Is(err, fs.ErrNotExist) {
				unmounted = append(unmounted, instance)
				continue
			}
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", yamlPath, err))
				continue
			}
			m, err := ParseYAML(data)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", yamlPath, err))
				continue
			}
			p := protocol.Package{Name: m.Name, Version: m.Version, Arch: arch(m.Architectures), Source: Source}
			if instance != m.Name {
				p.Name = instance // a parallel install ("name_key")
			}
			if fi, err := fs.Stat(fsys, path.Join(snapsDir, instance+"_"+rev+".snap")); err == nil {
				p.InstallDate = fi.ModTime().Unix()
			}
			pkgs = append(pkgs, p)
		}
	}
	if len(unmounted) > 0 {
		problems = append(problems, fmt.Sprintf("%d snaps not mounted, versions unknown, not listed: %s", len(unmounted), strings.Join(unmounted, ", ")))
	}
	return pkgs, problems, nil
}

// arch is what the inventory reports for a snap's architectures: snapd
// takes an absent list to mean "all".
func arch(archs []string) string {
	if len(archs) == 0 {
		return "all"
	}
	return strings.Join(archs, ",")
}

// apiResponse is the part of snapd's GET /v2/snaps answer used here.
type apiResponse struct {
	Type   string `json:"type"`
	Result []struct {
		Name        string `json:"name"`
		Version     string `json:"version"`
		InstallDate string `json:"install-date"`
		Status      string `json:"status"`
		Publisher   struct {
			DisplayName string `json:"display-name"`
			Username    string `json:"username"`
		} `json:"publisher"`
	} `json:"result"`
}

// ParseAPI reads snapd's answer to GET /v2/snaps (what `snap list` shows).
// It has no architecture; it has the publisher, which snap.yaml lacks.
func ParseAPI(data []byte) ([]protocol.Package, error) {
	var r apiResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decode snapd /v2/snaps: %w", err)
	}
	if r.Type != "sync" {
		return nil, fmt.Errorf("snapd /v2/snaps: response of type %q", r.Type)
	}
	pkgs := make([]protocol.Package, 0, len(r.Result))
	for _, s := range r.Result {
		if s.Name == "" {
			continue
		}
		p := protocol.Package{Name: s.Name, Version: s.Version, Publisher: s.Publisher.DisplayName, Source: Source}
		if p.Publisher == "" {
			p.Publisher = s.Publisher.Username
		}
		if t, err := time.Parse(time.RFC3339Nano, s.InstallDate); err == nil {
			p.InstallDate = t.Unix()
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}
