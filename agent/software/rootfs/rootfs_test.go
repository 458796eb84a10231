package rootfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
)

// tree builds a root for the tests:
//
//	etc/os-release            "inside"
//	abs -> /etc               (absolute: must mean root/etc)
//	up -> ../../../../etc     (climbs past the root: clamped to root/etc)
//	chain -> abs/../abs/os-release
//	loop -> loop
//	dangling -> /nowhere
//	d/link-to-parent -> ..
func tree(t *testing.T) (*FS, string) {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "etc"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "d"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "etc/os-release"), []byte("inside"), 0o644))
	must(os.Symlink("/etc", filepath.Join(dir, "abs")))
	must(os.Symlink("../../../../etc", filepath.Join(dir, "up")))
	must(os.Symlink("abs/../abs/os-release", filepath.Join(dir, "chain")))
	must(os.Symlink("loop", filepath.Join(dir, "loop")))
	must(os.Symlink("/nowhere", filepath.Join(dir, "dangling")))
	must(os.Symlink("..", filepath.Join(dir, "d/link-to-parent")))
	fsys, err := Open(dir)
	must(err)
	t.Cleanup(func() { fsys.Close() })
	return fsys, dir
}

func TestConfinedResolution(t *testing.T) {
	fsys, _ := tree(t)
	for name, want := range map[string]string{
		"abs/os-release":                  "etc/os-release",
		"up/os-release":                   "etc/os-release",
		"chain":                           "etc/os-release",
		"d/link-to-parent/etc/os-release": "etc/os-release",
		"d/link-to-parent/abs/os-release": "etc/os-release",
		"etc":                             "etc",
		".":                               ".",
	} {
		got, err := fsys.Resolve(name)
		if err != nil || got != want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", name, got, err, want)
		}
		if name == "." || name == "etc" {
			continue
		}
		data, err := fsys.ReadFile(name)
		if err != nil || string(data) != "inside" {
			t.Errorf("ReadFile(%q) = %q, %v", name, data, err)
		}
	}
	if _, err := fsys.ReadFile("loop"); !errors.Is(err, syscall.ELOOP) {
		t.Errorf("loop: %v, want ELOOP", err)
	}
	if _, err := fsys.ReadFile("dangling"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dangling: %v, want ErrNotExist", err)
	}
	if _, err := fsys.Stat("etc/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	for _, bad := range []string{"/etc", "../etc", "etc/../etc", ""} {
		if _, err := fsys.Open(bad); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Open(%q): %v, want ErrInvalid", bad, err)
		}
	}
	fi, err := fsys.Lstat("abs")
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat(abs) = %v, %v", fi, err)
	}
	if target, err := fsys.ReadLink("abs"); err != nil || target != "/etc" {
		t.Errorf("ReadLink(abs) = %q, %v", target, err)
	}
}

func TestFSConformance(t *testing.T) {
	_, dir := tree(t)
	// fstest walks every name; links that loop or dangle cannot be opened,
	// so test the regular part of the tree through a sub-root.
	sub, err := Open(filepath.Join(dir, "etc"))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := fstest.TestFS(sub, "os-release"); err != nil {
		t.Error(err)
	}
}

func TestReadFileLimit(t *testing.T) {
	m := fstest.MapFS{"f": {Data: []byte(strings.Repeat("x", 100))}}
	if _, err := ReadFile(m, "f", 99); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the limit: %v", err)
	}
	if data, err := ReadFile(m, "f", 100); err != nil || len(data) != 100 {
		t.Errorf("at the limit: %d bytes, %v", len(data), err)
	}
}

func TestDirCache(t *testing.T) {
	fsys, dir := tree(t)
	for i := 0; i < 2*maxCachedRoots; i++ {
		sub := filepath.Join(dir, "many", strings.Repeat("d", i+1))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, "f"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		name := "many/" + strings.Repeat("d", i+1) + "/f"
		if _, err := fsys.Stat(name); err != nil {
			t.Fatal(err)
		}
		if _, err := fsys.Stat(name); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(fsys.roots); n > maxCachedRoots {
		t.Errorf("%d directory handles cached", n)
	}
}
