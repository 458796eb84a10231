package packaging_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/installer/packaging"
)

// The binaries and packages are built once per test binary: each build
// links a whole binary, seconds on a quiet machine and far more on a busy
// one.
var (
	buildOnce sync.Once
	built     *builds
	buildErr  error
	workDir   string
)

// builds are the packages the tests inspect and install.
type builds struct {
	AgentDeb, AgentDebNewer, AgentRPM, ServerDeb, ServerRPM string
	MSI, AgentTarball, MacLayout                            string
	Out                                                     string
	AgentBin                                                string // the linux/amd64 agent of 1.0.0
}

func TestMain(m *testing.M) {
	code := m.Run()
	if workDir != "" {
		os.RemoveAll(workDir)
	}
	os.Exit(code)
}

// goBuild builds pkg for goos/amd64 with buildinfo's version set to
// version, into bin/GOOS-amd64.
func goBuild(bin, goos, pkg, name, version string, cgo bool) error {
	out := filepath.Join(bin, goos+"-amd64", name)
	cmd := exec.Command("go", "build", "-trimpath", "-o", out,
		"-ldflags", "-s -w -X github.com/tallyhq/tally/common/buildinfo.version="+version, pkg)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED="+map[bool]string{true: "1", false: "0"}[cgo])
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for %s: %v\n%s", pkg, goos, err, b)
	}
	return nil
}

func packages(t *testing.T) *builds {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binaries and packages; skipped with -short")
	}
	buildOnce.Do(func() {
		workDir, buildErr = os.MkdirTemp("", "tally-packages-")
		if buildErr != nil {
			return
		}
		built, buildErr = buildAll(workDir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

func buildAll(dir string) (*builds, error) {
	older, newer := filepath.Join(dir, "bin-1.0.0"), filepath.Join(dir, "bin-1.0.1")
	steps := []func() error{
		func() error { return goBuild(older, "linux", "./agent/cmd/tally-agent", "tally-agent", "1.0.0", false) },
		func() error { return goBuild(newer, "linux", "./agent/cmd/tally-agent", "tally-agent", "1.0.1", false) },
		func() error {
			return goBuild(older, "linux", "./server/cmd/tally-server", "tally-server", "1.0.0", true)
		},
		func() error {
			return goBuild(older, "windows", "./agent/cmd/tally-agent", "tally-agent.exe", "1.0.0", false)
		},
		func() error {
			return goBuild(older, "darwin", "./agent/cmd/tally-agent", "tally-agent", "1.0.0", false)
		},
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, err
		}
	}
	out := filepath.Join(dir, "dist")
	o := packaging.Options{Version: "1.0.0", Bin: older, Out: out, MTime: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)}
	b := &builds{Out: out, AgentBin: filepath.Join(older, "linux-amd64", "tally-agent")}
	for _, x := range []struct {
		dst *string
		t   packaging.Target
	}{
		{&b.AgentDeb, packaging.Target{Product: packaging.Agent, OS: "linux", Arch: "amd64", Format: "deb"}},
		{&b.AgentRPM, packaging.Target{Product: packaging.Agent, OS: "linux", Arch: "amd64", Format: "rpm"}},
		{&b.ServerDeb, packaging.Target{Product: packaging.Server, OS: "linux", Arch: "amd64", Format: "deb"}},
		{&b.ServerRPM, packaging.Target{Product: packaging.Server, OS: "linux", Arch: "amd64", Format: "rpm"}},
		{&b.AgentTarball, packaging.Target{Product: packaging.Agent, OS: "linux", Arch: "amd64", Format: "tar.gz"}},
		{&b.MSI, packaging.Target{Product: packaging.Agent, OS: "windows", Arch: "amd64", Format: "msi"}},
		{&b.MacLayout, packaging.Target{Product: packaging.Agent, OS: "darwin", Arch: "amd64", Format: "pkg-layout"}},
	} {
		p, err := o.Build(x.t)
		if err != nil {
			return nil, err
		}
		*x.dst = p
	}
	o.Version, o.Bin = "1.0.1", newer
	p, err := o.Build(packaging.Target{Product: packaging.Agent, OS: "linux", Arch: "amd64", Format: "deb"})
	if err != nil {
		return nil, err
	}
	b.AgentDebNewer = p
	return b, nil
}

// run runs a command and returns its combined output; a failure is fatal.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// need skips nothing: a tool the tests need is installed by .ci/run, so
// its absence is a failure that says which package provides it.
func need(t *testing.T, tool, debianPackage string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Fatalf("%s not found: install Debian's %s (.ci/run does)", tool, debianPackage)
	}
}

func contains(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !bytes.Contains([]byte(text), []byte(w)) {
			t.Errorf("%s lacks %q:\n%s", what, w, text)
		}
	}
}
