//go:build linux

package collect

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"strings"

	"github.com/shirou/gopsutil/v3/host"

	"github.com/tallyhq/tally/protocol"
)

// hostInfo fills the host fields from /etc/os-release and /proc. It does
// not use host.Info, whose platform detection starts /usr/bin/lsb_release
// (a Python script, slow to start) on systems without /etc/lsb-release.
func hostInfo(ctx context.Context, b *protocol.BasicInventory) error {
	b.Hostname, _ = os.Hostname()
	b.OS = runtime.GOOS
	rel := osRelease("/etc/os-release")
	if len(rel) == 0 {
		rel = osRelease("/usr/lib/os-release")
	}
	b.Platform, b.PlatformVersion = rel["ID"], rel["VERSION_ID"]
	b.PlatformFamily = family(rel["ID"], rel["ID_LIKE"])
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	var err error
	b.KernelVersion, err = host.KernelVersionWithContext(ctx)
	keep(err)
	b.Arch, err = host.KernelArch()
	keep(err)
	if sys, role, err := host.VirtualizationWithContext(ctx); err == nil && role == "guest" {
		b.Virtualization = sys
	}
	bt, err := host.BootTimeWithContext(ctx)
	keep(err)
	b.BootTime = int64(bt)
	return firstErr
}

// osRelease parses an os-release(5) file.
func osRelease(path string) map[string]string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		out[k] = strings.Trim(v, `"'`)
	}
	return out
}

func family(id, like string) string {
	words := append([]string{id}, strings.Fields(like)...)
	for _, w := range words {
		switch w {
		case "debian", "ubuntu":
			return "debian"
		case "rhel", "centos", "fedora":
			if w == "fedora" && id == "fedora" {
				return "fedora"
			}
			return "rhel"
		case "suse", "opensuse", "sles":
			return "suse"
		case "alpine", "arch", "gentoo", "slackware":
			return w
		}
	}
	return id
}
