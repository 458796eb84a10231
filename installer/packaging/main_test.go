package packaging_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyhq/tally/installer/packaging"
)

// A wrong command line exits 2 with a sentence naming the mistake, and
// writes nothing.
func TestMkpkgRefusesBadInput(t *testing.T) {
	bin := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{}, 2, "--version is required"},
		{[]string{"--bin", bin}, 2, "version"},
		{[]string{"--version", "1.0 0", "--bin", bin}, 2, "version \"1.0 0\""},
		{[]string{"--version", "v1.0.0", "--bin", bin}, 2, "a digit first"},
		{[]string{"--version", "1.0-1", "--bin", bin}, 2, "a digit first"},
		{[]string{"--version", strings.Repeat("1", 65), "--bin", bin}, 2, "at most 64"},
		{[]string{"--version", "1.0.0", "--bin", bin, "--only", "zip"}, 2, "--only \"zip\""},
		{[]string{"--version", "1.0.0", "--bin", bin, "--mtime", "-5"}, 2, "--mtime"},
		{[]string{"--version", "1.0.0", "--bin", bin, "extra"}, 2, "extra"},
		{[]string{"--version", "1.0.0", "--bin", bin, "--colour"}, 2, "--colour"},
		{[]string{"--version", "1.0.0", "--bin", bin}, 1, "no package built"},
		{[]string{"--help"}, 0, "wixl"},
	} {
		out := filepath.Join(t.TempDir(), "dist")
		var stdout, stderr strings.Builder
		code := packaging.Main(append(c.args, "--out", out), &stdout, &stderr)
		if code != c.code || !strings.Contains(stdout.String()+stderr.String(), c.want) {
			t.Errorf("mkpkg %q: exit %d, want %d with %q:\n%s%s", c.args, code, c.code, c.want, stdout.String(), stderr.String())
		}
		if entries, _ := os.ReadDir(out); len(entries) > 0 {
			t.Errorf("mkpkg %q wrote %v", c.args, entries)
		}
	}
}

// The MSI's ProductVersion is the version's first three numbers, within
// Windows Installer's bounds.
func TestMsiVersion(t *testing.T) {
	for in, want := range map[string]string{
		"1.2.3": "1.2.3", "0.0.0+git812.a200132": "0.0.0", "1.4": "1.4.0", "2~rc1": "2.0.0",
		"255.255.65535": "255.255.65535", "1.2.3+4.gabc": "1.2.3",
	} {
		if got, err := packaging.MsiVersion(in); err != nil || got != want {
			t.Errorf("MsiVersion(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"256.0.0", "1.256.0", "1.0.65536", "x1", ""} {
		if got, err := packaging.MsiVersion(bad); err == nil {
			t.Errorf("MsiVersion(%q) = %q, want an error", bad, got)
		}
	}
}

// A target that is not a package of this project is refused.
func TestBuildRefusesUnknownTargets(t *testing.T) {
	bin := t.TempDir()
	for _, d := range []string{"linux-amd64", "windows-amd64"} {
		if err := os.MkdirAll(filepath.Join(bin, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(bin, "linux-amd64", "tally-server"), []byte("x"), 0o755)
	os.WriteFile(filepath.Join(bin, "windows-amd64", "tally-agent.exe"), []byte("x"), 0o755)
	o := packaging.Options{Version: "1.0.0", Bin: bin, Out: t.TempDir()}
	for _, tg := range []packaging.Target{
		{Product: packaging.Server, OS: "linux", Arch: "amd64", Format: "msi"},
		{Product: packaging.Agent, OS: "windows", Arch: "amd64", Format: "deb"},
		{Product: packaging.Server, OS: "linux", Arch: "amd64", Format: "zip"},
	} {
		if p, err := o.Build(tg); err == nil {
			t.Errorf("%s built %s", tg, p)
		}
	}
}
