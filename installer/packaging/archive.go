package packaging

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tallyhq/tally/installer"
)

// archive writes PRODUCT_VERSION_OS_ARCH.tar.gz: one folder holding the
// binary and its service definition (the systemd unit, or the launchd job
// on macOS), owned by root, with fixed times.
func (o Options) archive(t Target, bin string) (string, error) {
	base := fmt.Sprintf("%s_%s_%s_%s", t.Product, o.Version, t.OS, t.Arch)
	out := filepath.Join(o.Out, base+".tar.gz")
	exe, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	entries := []struct {
		name string
		mode int64
		body []byte
	}{{filepath.Base(bin), 0o755, exe}}
	var service string
	switch {
	case t.OS == "linux":
		service = "systemd/" + t.Product + ".service"
	case t.OS == "darwin" && t.Product == Agent:
		service = "launchd/" + launchdJob + ".plist"
	}
	if service != "" {
		b, err := fs.ReadFile(installer.Files, service)
		if err != nil {
			return "", err
		}
		entries = append(entries, struct {
			name string
			mode int64
			body []byte
		}{filepath.Base(service), 0o644, b})
	}
	err = writeAtomically(out, func(f *os.File) error {
		gz := gzip.NewWriter(f)
		tw := tar.NewWriter(gz)
		mt := o.mtime()
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: base + "/", Mode: 0o755, ModTime: mt, Uname: "root", Gname: "root"}); err != nil {
			return err
		}
		for _, e := range entries {
			h := &tar.Header{Typeflag: tar.TypeReg, Name: base + "/" + e.name, Mode: e.mode, Size: int64(len(e.body)), ModTime: mt, Uname: "root", Gname: "root"}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if _, err := tw.Write(e.body); err != nil {
				return err
			}
		}
		if err := tw.Close(); err != nil {
			return err
		}
		return gz.Close()
	})
	if err != nil {
		return "", fmt.Errorf("%s: %w", t, err)
	}
	return out, nil
}
