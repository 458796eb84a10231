package packaging

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
	"github.com/goreleaser/nfpm/v2/rpm"

	"github.com/tallyhq/tally/installer"
)

// UnitDir is where the packages put the systemd units: systemd reads it on
// every distribution, with or without a merged /usr.
const UnitDir = "/usr/lib/systemd/system"

var descriptions = map[string]string{
	Agent: "Tally endpoint agent\n" +
		"Posts this machine's inventory and licensed plug-ins to a Tally license\n" +
		"server. The service stays disabled until 'tally-agent install' enrolls\n" +
		"the agent (server, fingerprint and plug-ins may come from\n" +
		"/etc/tally/agent.conf). Removing the package tells the server, which\n" +
		"frees every seat the machine holds; upgrading it does not.",
	Server: "Tally license server\n" +
		"Takes agents' inventory posts over QUIC, decides licenses at once and\n" +
		"frees seats when machines are retired, deleted or uninstalled.",
}

// scripts names, per format, the maintainer scripts in scripts/PRODUCT/ that
// go in each slot of nfpm.Scripts (pre-install, post-install, pre-remove,
// post-remove).
var scripts = map[string]map[string][4]string{
	Agent: {
		"deb": {"", "postinst", "prerm", "postrm"},
		"rpm": {"", "post.rpm", "preun.rpm", "postun.rpm"},
	},
	Server: {
		"deb": {"preinst", "postinst", "prerm", "postrm"},
		"rpm": {"pre.rpm", "post.rpm", "preun.rpm", "postun.rpm"},
	},
}

// Script returns the maintainer script as packaged: the file's shebang and
// header, then the product's common.sh, then the rest of the file.
func Script(product, name string) ([]byte, error) {
	dir := path.Join("scripts", strings.TrimPrefix(product, "tally-"))
	body, err := fs.ReadFile(sources, path.Join(dir, name))
	if err != nil {
		return nil, err
	}
	common, err := fs.ReadFile(sources, path.Join(dir, "common.sh"))
	if err != nil {
		return nil, err
	}
	// The header comment and "set -e" stay first; common.sh only defines.
	head, rest, ok := bytes.Cut(body, []byte("set -e\n"))
	if !ok {
		return nil, fmt.Errorf("script %s/%s lacks 'set -e'", product, name)
	}
	var b bytes.Buffer
	b.Write(head)
	b.WriteString("set -e\n\n")
	b.Write(common)
	b.WriteString("\n")
	b.Write(rest)
	return b.Bytes(), nil
}

func (o Options) linux(t Target, bin string) (string, error) {
	stage, err := os.MkdirTemp(o.Out, ".stage-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)

	unitName := t.Product + ".service"
	unit, err := fs.ReadFile(installer.Files, "systemd/"+unitName)
	if err != nil {
		return "", err
	}
	unitPath := filepath.Join(stage, unitName)
	if err := os.WriteFile(unitPath, unit, 0o644); err != nil {
		return "", err
	}
	mt := o.mtime()
	root := func(mode os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode, MTime: mt}
	}
	info := &nfpm.Info{
		Name:          t.Product,
		Arch:          t.Arch,
		Platform:      "linux",
		Version:       o.Version,
		VersionSchema: "none",
		Release:       "1",
		Section:       "admin",
		Priority:      "optional",
		Maintainer:    "Tally <tally@tallyhq.invalid>",
		Vendor:        "Tally",
		Homepage:      "https://github.com/tallyhq/tally",
		License:       "Proprietary",
		MTime:         mt,
		Overridables: nfpm.Overridables{
			Contents: files.Contents{
				{Source: bin, Destination: "/usr/bin/" + t.Product, FileInfo: root(0o755)},
				{Source: unitPath, Destination: UnitDir + "/" + unitName, FileInfo: root(0o644)},
			},
		},
	}
	info.Description = descriptions[t.Product]
	info.RPM.Summary, _, _ = strings.Cut(info.Description, "\n")
	slots := []*string{&info.Scripts.PreInstall, &info.Scripts.PostInstall, &info.Scripts.PreRemove, &info.Scripts.PostRemove}
	for i, name := range scripts[t.Product][t.Format] {
		if name == "" {
			continue
		}
		b, err := Script(t.Product, name)
		if err != nil {
			return "", err
		}
		p := filepath.Join(stage, name)
		if err := os.WriteFile(p, b, 0o755); err != nil {
			return "", err
		}
		*slots[i] = p
	}
	info = nfpm.WithDefaults(info)
	if err := info.Validate(); err != nil {
		return "", fmt.Errorf("%s: %w", t, err)
	}
	var p nfpm.Packager = deb.Default
	if t.Format == "rpm" {
		p = rpm.DefaultRPM
	}
	out := filepath.Join(o.Out, p.ConventionalFileName(info))
	if err := writeAtomically(out, func(f *os.File) error { return p.Package(info, f) }); err != nil {
		return "", fmt.Errorf("%s: %w", t, err)
	}
	return out, nil
}

// writeAtomically writes path through a temporary file renamed into place,
// so that a failed build leaves no truncated package behind.
func writeAtomically(path string, write func(*os.File) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
