package packaging

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// WixSource is the WiX source of the agent's .msi, as embedded.
func WixSource() ([]byte, error) { return fs.ReadFile(sources, "wix/tally-agent.wxs") }

var leadingNumbers = regexp.MustCompile(`^([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?`)

// MsiVersion is the ProductVersion Windows Installer compares on an
// upgrade: the first three numbers of version (MAJOR.MINOR.BUILD, at most
// 255.255.65535); what follows them (+git812.…) it cannot order.
func MsiVersion(version string) (string, error) {
	m := leadingNumbers.FindStringSubmatch(version)
	if m == nil {
		return "", fmt.Errorf("version %q does not start with a number", version)
	}
	limits := []int{255, 255, 65535}
	out := ""
	for i, s := range m[1:] {
		n := 0
		if s != "" {
			var err error
			if n, err = strconv.Atoi(s); err != nil || n > limits[i] {
				return "", fmt.Errorf("version %q: an MSI version's numbers are at most 255.255.65535", version)
			}
		}
		if i > 0 {
			out += "."
		}
		out += strconv.Itoa(n)
	}
	return out, nil
}

// msi runs wixl on the embedded WiX source in a staging folder holding the
// binary as tally-agent.exe (wixl resolves sources relative to it).
func (o Options) msi(t Target, bin string) (string, error) {
	mv, err := MsiVersion(o.Version)
	if err != nil {
		return "", err
	}
	wixl, err := exec.LookPath("wixl")
	if err != nil {
		return "", fmt.Errorf("%s: wixl not found (Debian package wixl, from msitools): %w", t, err)
	}
	stage, err := os.MkdirTemp(o.Out, ".stage-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	src, err := WixSource()
	if err != nil {
		return "", err
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(stage, "tally-agent.wxs"), src, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(stage, "tally-agent.exe"), exe, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(o.Out, fmt.Sprintf("%s_%s_%s_%s.msi", t.Product, o.Version, t.OS, t.Arch))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, wixl, "--arch", "x64", "-D", "Version="+o.Version, "-D", "MsiVersion="+mv,
		"-o", "agent.msi", "tally-agent.wxs")
	cmd.Dir = stage
	var msgs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &msgs, &msgs
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: wixl: %w: %s", t, err, bytes.TrimSpace(msgs.Bytes()))
	}
	if err := os.Rename(filepath.Join(stage, "agent.msi"), out); err != nil {
		return "", err
	}
	return out, nil
}
