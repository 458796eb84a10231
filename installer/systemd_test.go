package installer

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// systemdAnalyze finds systemd-analyze (Debian's systemd package, which
// .ci/run installs when missing).
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian's systemd package provides it; .ci/run installs it): the units are not verified")
	}
	return p
}

// renderUnit writes the unit called name, starting an executable of the
// test's (systemd-analyze verify checks that ExecStart can run), to a
// folder of the test; it returns the unit's path.
func renderUnit(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, strings.TrimSuffix(name, ".service"))
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := Unit(name, bin)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Both units pass 'systemd-analyze verify' as install writes them.
func TestUnitsVerify(t *testing.T) {
	sa := systemdAnalyze(t)
	for _, name := range []string{"tally-agent.service", "tally-server.service"} {
		out, err := exec.Command(sa, "verify", "--man=no", renderUnit(t, name)).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
		}
	}
}

var exposure = regexp.MustCompile(`Overall exposure level for (\S+): (\d+\.\d+) (\S+)`)

// The README lists the 'systemd-analyze security' exposure of each unit as
// systemd computes it, and both are rated OK or better (below 5).
func TestUnitsSecurityScoresInREADME(t *testing.T) {
	sa := systemdAnalyze(t)
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tally-agent.service", "tally-server.service"} {
		out, err := exec.Command(sa, "security", "--offline=true", "--no-pager", renderUnit(t, name)).CombinedOutput()
		if err != nil {
			t.Fatalf("systemd-analyze security %s: %v\n%s", name, err, out)
		}
		m := exposure.FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("no exposure level in:\n%s", out)
		}
		if v, err := strconv.ParseFloat(m[2], 64); err != nil || v >= 5 {
			t.Errorf("%s: exposure %s %s", name, m[2], m[3])
		}
		row := "| `" + name + "` | " + m[2] + " " + m[3] + " |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README.md lacks the row %q", row)
		}
	}
}
