// Package packaging builds Tally's release packages from built binaries:
// .deb and .rpm of both binaries for Linux (nfpm, as a library), .tar.gz
// archives, the agent's Windows .msi (wixl, from Debian's msitools) and the
// payload folder of its macOS .pkg (pkgbuild does not run on Linux). The
// maintainer scripts and the WiX source are embedded, so one binary
// (installer/cmd/mkpkg) and the tests build the same packages.
package packaging

import (
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

//go:embed scripts wix
var sources embed.FS

// The two products, which are also the binaries' and the packages' names.
const (
	Agent  = "tally-agent"
	Server = "tally-server"
)

// Options say what to package and where.
type Options struct {
	// Version of the packages: a digit first, then digits, letters and
	// . + ~ (what both dpkg and rpm order correctly), e.g. 1.4.0 or
	// 0.0.0+git812.a200132.
	Version string
	// Bin holds the binaries, one folder per platform:
	// Bin/linux-amd64/tally-agent, Bin/windows-amd64/tally-agent.exe, …
	Bin string
	// Out receives the packages.
	Out string
	// MTime is every packaged file's time, so that a build is reproducible;
	// zero means the Unix epoch.
	MTime time.Time
}

var versionRE = regexp.MustCompile(`^[0-9][0-9A-Za-z.+~]{0,63}$`)

func (o Options) check() error {
	if !versionRE.MatchString(o.Version) {
		return fmt.Errorf("version %q: want a digit first, then digits, letters and . + ~ (at most 64), e.g. 1.4.0 or 0.0.0+git812", o.Version)
	}
	if o.Bin == "" || o.Out == "" {
		return errors.New("the binaries' folder and the output folder are both needed")
	}
	return nil
}

func (o Options) mtime() time.Time {
	if o.MTime.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return o.MTime.UTC()
}

// binary is the path of product's binary for goos/goarch, and whether it
// was built.
func (o Options) binary(product, goos, goarch string) (string, bool) {
	name := product
	if goos == "windows" {
		name += ".exe"
	}
	p := filepath.Join(o.Bin, goos+"-"+goarch, name)
	st, err := os.Stat(p)
	return p, err == nil && st.Mode().IsRegular()
}

// Target is one package to build.
type Target struct {
	Product string // Agent or Server
	OS      string // linux, windows, darwin
	Arch    string // amd64, arm64
	Format  string // deb, rpm, tar.gz, msi, pkg-layout
}

func (t Target) String() string {
	return fmt.Sprintf("%s %s/%s %s", t.Product, t.OS, t.Arch, t.Format)
}

// Targets lists every package Build makes: for Linux amd64 and arm64 a
// .deb, an .rpm and a .tar.gz of both binaries, the agent's .msi for
// Windows amd64, its .pkg payload folder and a .tar.gz for macOS.
func Targets() []Target {
	var ts []Target
	for _, arch := range []string{"amd64", "arm64"} {
		for _, p := range []string{Agent, Server} {
			for _, f := range []string{"deb", "rpm", "tar.gz"} {
				ts = append(ts, Target{p, "linux", arch, f})
			}
		}
	}
	ts = append(ts, Target{Agent, "windows", "amd64", "msi"}, Target{Agent, "windows", "amd64", "tar.gz"})
	for _, arch := range []string{"amd64", "arm64"} {
		ts = append(ts, Target{Agent, "darwin", arch, "pkg-layout"}, Target{Agent, "darwin", arch, "tar.gz"})
	}
	return ts
}

// ErrNoBinary is returned for a target whose binary was not built (the
// arm64 server needs a C cross-compiler).
var ErrNoBinary = errors.New("binary not built")

// Build makes one package and returns its path.
func (o Options) Build(t Target) (string, error) {
	if err := o.check(); err != nil {
		return "", err
	}
	bin, ok := o.binary(t.Product, t.OS, t.Arch)
	if !ok {
		return "", fmt.Errorf("%s: %w (%s)", t, ErrNoBinary, bin)
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return "", err
	}
	switch {
	case t.Format == "deb" || t.Format == "rpm":
		if t.OS != "linux" {
			break
		}
		return o.linux(t, bin)
	case t.Format == "tar.gz":
		return o.archive(t, bin)
	case t.Format == "msi" && t.OS == "windows" && t.Product == Agent:
		return o.msi(t, bin)
	case t.Format == "pkg-layout" && t.OS == "darwin" && t.Product == Agent:
		return o.macLayout(t, bin)
	}
	return "", fmt.Errorf("%s: no such package", t)
}
