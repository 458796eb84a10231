package rpm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/tallyhq/tally/agent/software/rootfs"
	"github.com/tallyhq/tally/protocol"
)

// qaLine is one package of an rpm -qa --queryformat fixture, fields
// separated by U+00B6: EPOCH¶NAME¶VERSION¶RELEASE¶ARCH¶SOURCERPM¶SIZE¶
// LICENSE¶VENDOR¶SUMMARY¶SIGMD5.
func parseQA(t *testing.T, name string) []protocol.Package {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []protocol.Package
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		f := strings.Split(line, "¶")
		if len(f) != 11 {
			t.Fatalf("%s: %d fields in %q", name, len(f), line)
		}
		if f[1] == "gpg-pubkey" {
			continue // skipped by design
		}
		v := f[2] + "-" + f[3]
		if f[0] != "" {
			v = f[0] + ":" + v
		}
		pkgs = append(pkgs, protocol.Package{Name: f[1], Version: v, Arch: f[4], Publisher: f[8], Source: Source})
	}
	return pkgs
}

func key(p protocol.Package) string {
	return fmt.Sprintf("%s %s %s %q", p.Name, p.Version, p.Arch, p.Publisher)
}

func compare(t *testing.T, got, want []protocol.Package) {
	t.Helper()
	var g, w []string
	for _, p := range got {
		g = append(g, key(p))
		if p.InstallDate < 1e9 {
			t.Errorf("%s: install date %d", p.Name, p.InstallDate)
		}
	}
	for _, p := range want {
		w = append(w, key(p))
	}
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		for _, k := range g {
			if !slices.Contains(w, k) {
				t.Errorf("extra: %s", k)
			}
		}
		for _, k := range w {
			if !slices.Contains(g, k) {
				t.Errorf("missing: %s", k)
			}
		}
	}
}

func mapFS(t *testing.T, files map[string]string) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	for dst, src := range files {
		data, err := os.ReadFile(filepath.Join("testdata", src))
		if err != nil {
			t.Fatal(err)
		}
		m[dst] = &fstest.MapFile{Data: data}
	}
	return m
}

func TestCollectFixtures(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []protocol.Package
	}{
		{"sqlite amazonlinux2023", map[string]string{"var/lib/rpm/rpmdb.sqlite": "sqlite/amazonlinux2023/rpmdb.sqlite"},
			parseQA(t, "sqlite/amazonlinux2023/rpm-qa.txt")},
		{"sqlite in sysimage", map[string]string{"usr/lib/sysimage/rpm/rpmdb.sqlite": "sqlite/amazonlinux2023/rpmdb.sqlite"},
			parseQA(t, "sqlite/amazonlinux2023/rpm-qa.txt")},
		{"ndb sle15", map[string]string{"var/lib/rpm/Packages.db": "ndb/sle15-bci/Packages.db"},
			parseQA(t, "ndb/sle15-bci/rpm-qa.txt")},
		{"sqlite preferred to an old bdb", map[string]string{
			"var/lib/rpm/rpmdb.sqlite": "sqlite/amazonlinux2023/rpmdb.sqlite",
			"var/lib/rpm/Packages":     "bdb/centos-dive/Packages"},
			parseQA(t, "sqlite/amazonlinux2023/rpm-qa.txt")},
		{"bdb dive", map[string]string{"var/lib/rpm/Packages": "bdb/centos-dive/Packages"},
			[]protocol.Package{{Name: "dive", Version: "0.9.2-1", Arch: "x86_64", Source: Source}}},
		{"bdb libuuid", map[string]string{"var/lib/rpm/Packages": "bdb/rhel8-libuuid/Packages"},
			[]protocol.Package{{Name: "libuuid", Version: "2.32.1-42.el8_8", Arch: "x86_64", Publisher: "Red Hat, Inc.", Source: Source}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkgs, problems, err := Collect(context.Background(), mapFS(t, tt.files))
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) != 0 {
				t.Errorf("problems: %q", problems)
			}
			compare(t, pkgs, tt.want)
		})
	}
}

func TestCollectAbsent(t *testing.T) {
	pkgs, problems, err := Collect(context.Background(), fstest.MapFS{"var/lib/rpm/other": {}})
	if err != nil || pkgs != nil || problems != nil {
		t.Errorf("got %v %v %v", pkgs, problems, err)
	}
}

func TestCollectCorrupt(t *testing.T) {
	for _, path := range []string{"var/lib/rpm/rpmdb.sqlite", "var/lib/rpm/Packages.db", "var/lib/rpm/Packages"} {
		_, _, err := Collect(context.Background(), fstest.MapFS{path: {Data: bytes.Repeat([]byte("junk"), 2000)}})
		if err == nil {
			t.Errorf("%s: junk read without error", path)
		}
	}
}

func TestHeaderEVR(t *testing.T) {
	for _, tt := range []struct {
		h    Header
		want string
	}{
		{Header{Version: "1.0", Release: "1"}, "1.0-1"},
		{Header{Version: "1.0", Release: "1", HasEpoch: true}, "0:1.0-1"},
		{Header{Version: "3.0.8", Release: "1.amzn2023", Epoch: 1, HasEpoch: true}, "1:3.0.8-1.amzn2023"},
	} {
		if got := tt.h.EVR(); got != tt.want {
			t.Errorf("%+v: EVR %q, want %q", tt.h, got, tt.want)
		}
	}
}

// TestCollectWAL reads a database whose log holds a committed transaction
// (package 4 removed, package 6 added), from a real directory, and checks
// that reading creates no -shm or -wal file.
func TestCollectWAL(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "var/lib/rpm")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"rpmdb.sqlite", "rpmdb.sqlite-wal"} {
		data, err := os.ReadFile(filepath.Join("testdata/wal", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	fsys, err := rootfs.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()

	// The names the fixture's headers 3 to 6 carry, read from its source.
	src, err := os.Open("testdata/sqlite/amazonlinux2023/rpmdb.sqlite")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	all, _, err := Read(context.Background(), SQLite, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	names := func(hs []Header) []string {
		var n []string
		for _, h := range hs {
			n = append(n, h.Name)
		}
		return n
	}
	want := []string{all[2].Name, all[4].Name, all[5].Name}

	pkgs, problems, err := Collect(context.Background(), fsys)
	if err != nil || len(problems) != 0 {
		t.Fatal(err, problems)
	}
	var got []string
	for _, p := range pkgs {
		got = append(got, p.Name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q (all: %q)", got, want, names(all[:6]))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("directory now holds %d files, want the 2 it had", len(entries))
	}
}
