// Package softwaretest builds system roots on disk for the software
// collectors' tests: a tree described as an fstest.MapFS, symbolic links
// (absolute ones too) included, written to a temporary directory and opened
// as a rootfs.FS, so discovery code runs against the real filesystem.
package softwaretest

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/tallyhq/tally/agent/software/rootfs"
)

// Dir writes files under a new temporary directory and returns it. A file
// whose Mode has fs.ModeSymlink becomes a link to its Data; fs.ModeDir, a
// directory; ModTime, when set, is applied.
func Dir(t testing.TB, files fstest.MapFS) string {
	t.Helper()
	dir := t.TempDir()
	for name, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case f.Mode&fs.ModeSymlink != 0:
			if err := os.Symlink(string(f.Data), p); err != nil {
				t.Fatal(err)
			}
			continue
		case f.Mode.IsDir():
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, f.Data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if !f.ModTime.IsZero() {
			if err := os.Chtimes(p, f.ModTime, f.ModTime); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// Root is Dir opened as a rootfs.FS, closed when the test ends.
func Root(t testing.TB, files fstest.MapFS) *rootfs.FS {
	t.Helper()
	fsys, err := rootfs.Open(Dir(t, files))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys
}
