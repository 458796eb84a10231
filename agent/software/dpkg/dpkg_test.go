package dpkg

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/tallyhq/tally/agent/software/rootfs"
	"github.com/tallyhq/tally/protocol"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseFixtures(t *testing.T) {
	tests := []struct {
		file      string
		stanzas   int
		installed int
	}{
		{"status/ubuntu-10.10-desktop.status", 1278, 1278},
		{"status/ubuntu-18.04-base.status", 91, 90},
		{"status/postgresql-small.status", 3, 3},
		{"status.d/debian-misc/dash", 1, 1},
		{"status.d/debian-misc/netbase", 1, 1},
		{"status.d/distroless-debian11-arm64/libsqlite3-0", 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			entries, skipped := Parse(readFixture(t, tt.file))
			if len(skipped) != 0 {
				t.Errorf("skipped: %v", skipped)
			}
			if len(entries) != tt.stanzas {
				t.Errorf("got %d stanzas, want %d", len(entries), tt.stanzas)
			}
			n := 0
			for _, e := range entries {
				if e.Installed() {
					n++
				}
				if e.Package == "" || e.Version == "" || e.Architecture == "" {
					t.Errorf("incomplete entry %+v", e)
				}
			}
			if n != tt.installed {
				t.Errorf("got %d installed, want %d", n, tt.installed)
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	entries, _ := Parse(readFixture(t, "status/postgresql-small.status"))
	var found bool
	for _, e := range entries {
		if e.Package == "postgresql-client" {
			found = e.Source == "postgresql-common"
			if e.SourceVersion != "200+deb10u5" {
				t.Errorf("source version = %q", e.SourceVersion)
			}
		}
	}
	if !found {
		t.Error("postgresql-client: Source: postgresql-common (200+deb10u5) not parsed")
	}

	entries, _ = Parse(readFixture(t, "status/ubuntu-10.10-desktop.status"))
	want := map[string]Entry{
		"gcalctool": {Version: "5.32.0-0ubuntu4", Architecture: "i386"},
		"libxfont1": {Version: "1:1.4.2-1", Architecture: "i386"},
	}
	for _, e := range entries {
		if w, ok := want[e.Package]; ok {
			if e.Version != w.Version || e.Architecture != w.Architecture {
				t.Errorf("%s = %s %s, want %s %s", e.Package, e.Version, e.Architecture, w.Version, w.Architecture)
			}
			delete(want, e.Package)
		}
	}
	for name := range want {
		t.Errorf("%s not found", name)
	}
	var epoch bool
	for _, e := range entries {
		if strings.Contains(e.Version, ":") {
			epoch = true
		}
	}
	if !epoch {
		t.Error("no version with an epoch kept")
	}
}

func TestParseEdgeCases(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     []string // Package=Version/Arch/Status-installed
		nSkipped int
	}{
		{"empty", "", nil, 0},
		{"crlf and case", "package: a\r\nVERSION: 1\r\nArchitecture: amd64\r\nStatus: install ok installed\r\n", []string{"a=1/amd64/true"}, 0},
		{"continuation", "Package: a\nDescription: x\n more\n .\n\tmore\nVersion: 1:2-3\nStatus: hold ok installed\n", []string{"a=1:2-3//true"}, 0},
		{"config files only", "Package: a\nVersion: 1\nStatus: deinstall ok config-files\n", []string{"a=1//false"}, 0},
		{"half installed", "Package: a\nVersion: 1\nStatus: install reinstreq half-installed\n", []string{"a=1//false"}, 0},
		{"not installed without version", "Package: a\nStatus: purge ok not-installed\n", []string{"a=//false"}, 0},
		{"no package", "Version: 1\n\nPackage: b\nVersion: 2\n", []string{"b=2//true"}, 1},
		{"installed without version", "Package: a\nStatus: install ok installed\n", nil, 1},
		{"garbage line", "Package: a\nthis is not a field\nVersion: 1\n\nPackage: b\nVersion: 2\n", []string{"b=2//true"}, 1},
		{"many blank lines", "\n\n\nPackage: a\nVersion: 1\n\n\n \n\t\nPackage: b\nVersion: 2", []string{"a=1//true", "b=2//true"}, 0},
		{"binary junk", "\x00\x01\x02:\xff\n\xfe", nil, 1},
		{"colon first", ":x\n", nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, skipped := Parse([]byte(tt.in))
			var got []string
			for _, e := range entries {
				got = append(got, e.Package+"="+e.Version+"/"+e.Architecture+"/"+map[bool]string{true: "true", false: "false"}[e.Installed()])
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if len(skipped) != tt.nSkipped {
				t.Errorf("skipped %v, want %d", skipped, tt.nSkipped)
			}
		})
	}
}

func TestParseHugeLine(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("Package: big\nVersion: 1\nDescription: ")
	b.Write(bytes.Repeat([]byte("x"), 10<<20))
	b.WriteString("\nMaintainer: ")
	b.Write(bytes.Repeat([]byte("y"), 1<<20))
	b.WriteString("\n\nPackage: small\nVersion: 2\n")
	entries, skipped := Parse(b.Bytes())
	if len(entries) != 2 || len(skipped) != 0 {
		t.Fatalf("got %d entries, %v", len(entries), skipped)
	}
	if len(entries[0].Maintainer) != 1<<20 {
		t.Errorf("maintainer length %d", len(entries[0].Maintainer))
	}
}

func TestPublisher(t *testing.T) {
	for in, want := range map[string]string{
		"Ubuntu Developers <ubuntu-devel-discuss@lists.ubuntu.com>": "Ubuntu Developers",
		"<root@localhost>":      "root@localhost",
		"Microsoft Corporation": "Microsoft Corporation",
		"":                      "",
	} {
		if got := (Entry{Maintainer: in}).Publisher(); got != want {
			t.Errorf("Publisher(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCollectMapFS(t *testing.T) {
	mtime := time.Unix(1700000000, 0)
	fsys := fstest.MapFS{
		"var/lib/dpkg/status": {Data: []byte(
			"Package: libc6\nStatus: install ok installed\nMaintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>\nArchitecture: amd64\nMulti-Arch: same\nVersion: 2.36-9\n\n" +
				"Package: libc6\nStatus: install ok installed\nArchitecture: i386\nMulti-Arch: same\nVersion: 2.36-9\n\n" +
				"Package: old\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1\n\n" +
				"Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2-1\n\n" +
				"Version: 1\n")},
		"var/lib/dpkg/info/libc6:amd64.list":         {ModTime: mtime},
		"var/lib/dpkg/info/bash.list":                {ModTime: mtime.Add(time.Hour)},
		"var/lib/dpkg/status.d/dash":                 {Data: readFixture(t, "status.d/debian-misc/dash")},
		"var/lib/dpkg/status.d/libsqlite3-0":         {Data: readFixture(t, "status.d/distroless-debian11-arm64/libsqlite3-0")},
		"var/lib/dpkg/status.d/libsqlite3-0.md5sums": {Data: readFixture(t, "status.d/distroless-debian11-arm64/libsqlite3-0.md5sums")},
		"var/lib/dpkg/status.d/bash":                 {Data: []byte("Package: bash\nArchitecture: amd64\nVersion: 5.2-1\n")},
	}
	pkgs, problems, err := Collect(context.Background(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || !strings.Contains(problems[0], "no Package field") {
		t.Errorf("problems = %q", problems)
	}
	want := []protocol.Package{
		{Name: "libc6", Version: "2.36-9", Arch: "amd64", Publisher: "GNU Libc Maintainers", InstallDate: mtime.Unix(), Source: "dpkg"},
		{Name: "libc6", Version: "2.36-9", Arch: "i386", Source: "dpkg"},
		{Name: "bash", Version: "5.2-1", Arch: "amd64", InstallDate: mtime.Unix() + 3600, Source: "dpkg"},
		{Name: "dash", Version: "0.5.8-2.4", Arch: "amd64", Publisher: "Gerrit Pape", Source: "dpkg"},
		{Name: "libsqlite3-0", Version: "3.34.1-3", Arch: "arm64", Publisher: "Laszlo Boszormenyi (GCS)", Source: "dpkg"},
	}
	if len(pkgs) != len(want) {
		t.Fatalf("got %d packages %+v, want %d", len(pkgs), pkgs, len(want))
	}
	for i := range want {
		if pkgs[i] != want[i] {
			t.Errorf("package %d = %+v, want %+v", i, pkgs[i], want[i])
		}
	}
}

func TestCollectAbsent(t *testing.T) {
	pkgs, problems, err := Collect(context.Background(), fstest.MapFS{})
	if err != nil || len(pkgs) != 0 || len(problems) != 0 {
		t.Errorf("got %v %v %v", pkgs, problems, err)
	}
}

// TestCollectThisMachine compares the collector with dpkg-query on the
// machine running the test.
func TestCollectThisMachine(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("dpkg-query not installed: not a dpkg system")
	}
	if _, err := os.Stat("/" + StatusFile); err != nil {
		t.Skipf("no dpkg database: %v", err)
	}
	out, err := exec.Command("dpkg-query", "-W", "-f", "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n").Output()
	if err != nil {
		t.Fatalf("dpkg-query: %v", err)
	}
	want := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 4 || len(f[0]) < 2 {
			t.Fatalf("unexpected dpkg-query line %q", sc.Text())
		}
		// "ii" lines, and "hi"/"ri" ones: the second letter is the status.
		if f[0][1] == 'i' {
			want[f[1]+"\t"+f[2]+"\t"+f[3]] = true
		}
	}
	fsys, err := rootfs.Open("/")
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	pkgs, problems, err := Collect(context.Background(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 0 {
		t.Errorf("problems: %q", problems)
	}
	got := map[string]bool{}
	dated := 0
	for _, p := range pkgs {
		got[p.Name+"\t"+p.Version+"\t"+p.Arch] = true
		if p.InstallDate > 0 {
			dated++
		}
	}
	for k := range want {
		if !got[k] {
			t.Errorf("dpkg-query lists %q, collector does not", k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("collector lists %q, dpkg-query does not", k)
		}
	}
	if len(pkgs) != len(want) {
		t.Errorf("got %d packages, dpkg-query %d", len(pkgs), len(want))
	}
	if dated < len(pkgs)*9/10 {
		t.Errorf("only %d of %d packages have an install date", dated, len(pkgs))
	}
	t.Logf("%d packages, as dpkg-query", len(pkgs))
}

func BenchmarkParseUbuntuDesktop(b *testing.B) {
	data := readFixture(b, "status/ubuntu-10.10-desktop.status")
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		entries, _ := Parse(data)
		if len(entries) != 1278 {
			b.Fatal(len(entries))
		}
	}
}

func TestParseSkippedBounded(t *testing.T) {
	entries, skipped := Parse(bytes.Repeat([]byte("x\n\n"), 100000))
	if len(entries) != 0 || len(skipped) != maxSkipped+1 || skipped[maxSkipped].Error() != "99900 more stanzas skipped" {
		t.Errorf("%d entries, %d skipped, last %v", len(entries), len(skipped), skipped[len(skipped)-1])
	}
}
