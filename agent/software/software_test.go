package software

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/tallyhq/tally/agent/software/dpkg"
	"github.com/tallyhq/tally/agent/software/softwaretest"
	"github.com/tallyhq/tally/protocol"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

const ubuntuDesktop = "dpkg/testdata/status/ubuntu-10.10-desktop.status"

func TestCollectMixedRoot(t *testing.T) {
	root := softwaretest.Dir(t, fstest.MapFS{
		"var/lib/dpkg/status":              {Data: fixture(t, "dpkg/testdata/status/ubuntu-18.04-base.status")},
		"lib/apk/db/installed":             {Data: fixture(t, "apk/testdata/alpine-3.16-base/installed")},
		"usr/lib/sysimage/rpm/Packages.db": {Data: fixture(t, "rpm/testdata/ndb/sle15-bci/Packages.db")},
		"var/lib/rpm":                      {Data: []byte("../../usr/lib/sysimage/rpm"), Mode: os.ModeSymlink},
		"snap/core/current":                {Data: []byte("16928"), Mode: os.ModeSymlink},
		"snap/core/16928/meta/snap.yaml":   {Data: fixture(t, "snap/testdata/core-snap.yaml")},
		"var/lib/flatpak/app/org.gimp.GIMP/x86_64/stable/active/metadata":                                         {Data: []byte("[Application]\nname=org.gimp.GIMP\n")},
		"var/lib/flatpak/app/org.gimp.GIMP/x86_64/stable/active/export/share/metainfo/org.gimp.GIMP.metainfo.xml": {Data: fixture(t, "flatpak/testdata/org.gimp.GIMP.metainfo.xml")},
		"lib/apk/db/junk": {Data: []byte("x")},
	})
	res, err := Collect(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) != 0 {
		t.Errorf("problems: %q", res.Problems)
	}
	count := map[string]int{}
	for _, p := range res.Packages {
		count[p.Source]++
	}
	want := map[string]int{"dpkg": 90, "apk": 14, "rpm": 36, "snap": 1, "flatpak": 1}
	for s, n := range want {
		if count[s] != n {
			t.Errorf("%s: %d packages, want %d", s, count[s], n)
		}
	}
	if !slices.IsSortedFunc(res.Packages, func(a, b protocol.Package) int {
		return strings.Compare(a.Source+"\x00"+a.Name+"\x00"+a.Arch+"\x00"+a.Version, b.Source+"\x00"+b.Name+"\x00"+b.Arch+"\x00"+b.Version)
	}) {
		t.Error("packages not sorted by source, name, arch, version")
	}
	again, err := Collect(context.Background(), root)
	if err != nil || !slices.Equal(again.Packages, res.Packages) {
		t.Errorf("second collection differs (%v)", err)
	}
}

func TestCollectEmptyRoot(t *testing.T) {
	res, err := Collect(context.Background(), t.TempDir())
	if err != nil || len(res.Packages) != 0 || len(res.Problems) != 0 {
		t.Errorf("got %+v, %v", res, err)
	}
	if _, err := Collect(context.Background(), filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing root: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Collect(ctx, t.TempDir()); err == nil {
		t.Error("cancelled: no error")
	}
}

// TestCollectConfined plants links that point out of the root, at a
// database outside it: nothing outside may be read.
func TestCollectConfined(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "status")
	if err := os.WriteFile(secret, []byte("Package: host-secret\nVersion: 1\nStatus: install ok installed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel("/", secret)
	if err != nil {
		t.Fatal(err)
	}
	for name, files := range map[string]fstest.MapFS{
		"absolute link to a host file": {"var/lib/dpkg/status": {Data: []byte(secret), Mode: os.ModeSymlink}},
		"dot-dot link past the root":   {"var/lib/dpkg/status": {Data: []byte("../../../../../../../../../../" + rel), Mode: os.ModeSymlink}},
		"absolute link to a host dir":  {"var/lib/dpkg": {Data: []byte(outside), Mode: os.ModeSymlink}},
		"link to the host's own dpkg":  {"var/lib/dpkg": {Data: []byte("/var/lib/dpkg"), Mode: os.ModeSymlink}},
		"link loop":                    {"var/lib/dpkg/status": {Data: []byte("status"), Mode: os.ModeSymlink}},
	} {
		t.Run(name, func(t *testing.T) {
			root := softwaretest.Dir(t, files)
			res, err := Collect(context.Background(), root)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Packages) != 0 {
				t.Errorf("read %d packages from outside the root: %v", len(res.Packages), res.Packages[0])
			}
		})
	}
	// The same links make sense inside the root, and are followed there.
	root := softwaretest.Dir(t, fstest.MapFS{
		"var/lib/dpkg/status": {Data: []byte(secret), Mode: os.ModeSymlink},
		rel:                   {Data: []byte("Package: inside\nVersion: 2\nStatus: install ok installed\n")},
	})
	res, err := Collect(context.Background(), root)
	if err != nil || len(res.Packages) != 1 || res.Packages[0].Name != "inside" {
		t.Errorf("absolute link inside the root: %+v, %v", res, err)
	}
}

func TestProblemsCapped(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 50; i++ {
		b.WriteString("Version: 1\n\n")
	}
	root := softwaretest.Dir(t, fstest.MapFS{"var/lib/dpkg/status": {Data: []byte(b.String())}})
	res, err := Collect(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) != maxProblemsPerCollector+1 || res.Problems[maxProblemsPerCollector] != "dpkg: and 30 more" {
		t.Errorf("%d problems, last %q", len(res.Problems), res.Problems[len(res.Problems)-1])
	}
}

// TestCollectThisMachine inventories the machine running the test and
// compares its dpkg part with dpkg-query.
func TestCollectThisMachine(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("dpkg-query not installed: not a dpkg system")
	}
	start := time.Now()
	res, err := Collect(context.Background(), "/")
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("dpkg-query", "-W", "-f", "${db:Status-Abbrev}\n").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, l := range strings.Split(string(out), "\n") {
		if len(l) >= 2 && l[1] == 'i' {
			want++
		}
	}
	got := 0
	for _, p := range res.Packages {
		if p.Source == dpkg.Source {
			got++
		}
	}
	if got != want {
		t.Errorf("%d dpkg packages, dpkg-query lists %d", got, want)
	}
	t.Logf("%d packages (%d dpkg) in %v; problems %q", len(res.Packages), got, took, res.Problems)
}

// BenchmarkCollectUbuntuDesktop collects a root holding the 1,278-package
// Ubuntu 10.10 desktop status file and one info/<pkg>.list per package.
func BenchmarkCollectUbuntuDesktop(b *testing.B) {
	data := fixture(b, ubuntuDesktop)
	files := fstest.MapFS{"var/lib/dpkg/status": {Data: data}}
	entries, _ := dpkg.Parse(data)
	for _, e := range entries {
		files["var/lib/dpkg/info/"+e.Package+".list"] = &fstest.MapFile{Data: []byte("/.\n")}
	}
	root := softwaretest.Dir(b, files)
	b.ReportAllocs()
	for b.Loop() {
		res, err := Collect(context.Background(), root)
		if err != nil || len(res.Packages) != 1278 || len(res.Problems) != 0 {
			b.Fatalf("%d packages, %q, %v", len(res.Packages), res.Problems, err)
		}
		if res.Packages[0].InstallDate == 0 {
			b.Fatal("no install date")
		}
	}
}

// BenchmarkCollectLiveRoot inventories the machine running the benchmark.
func BenchmarkCollectLiveRoot(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Collect(context.Background(), "/"); err != nil {
			b.Fatal(err)
		}
	}
}
