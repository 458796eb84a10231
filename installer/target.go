package installer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Target is the system an install writes to: Root "/" is this machine;
// any other root is a folder holding a system's tree (a test, an image
// being built), under which every path goes and in which no service is
// started.
type Target struct {
	Root string
}

// NewTarget checks that root is an existing folder; "" means "/".
func NewTarget(root string) (Target, error) {
	if root == "" || root == "/" {
		return System, nil
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return Target{}, fmt.Errorf("--root %s: %w", root, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return Target{}, fmt.Errorf("--root %s: %w", root, err)
	}
	if !fi.IsDir() {
		return Target{}, fmt.Errorf("--root %s: not a folder", root)
	}
	return Target{Root: abs}, nil
}

// System is this machine itself.
var System = Target{Root: "/"}

// IsSystem reports whether the target is this machine itself.
func (t Target) IsSystem() bool { return t.Root == "/" || t.Root == "" }

// Path is where the installed system's absolute path p is on this
// machine: p under the root. A relative p, or one that climbs out with
// "..", is a programming error and panics, since it would write outside
// the root.
func (t Target) Path(p string) string {
	if t.IsSystem() {
		return p
	}
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		panic(fmt.Sprintf("installer: %q is not a clean absolute path", p))
	}
	return filepath.Join(t.Root, p)
}

// SystemdRunning reports whether services can be started here: the target
// is this machine and systemd is its init (sd_booted's test).
func (t Target) SystemdRunning() bool {
	if !t.IsSystem() {
		return false
	}
	fi, err := os.Stat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// Systemctl runs systemctl; its output is part of the error.
func Systemctl(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "systemctl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// Unit returns the embedded unit called name (tally-agent.service,
// tally-server.service) running the binary at bin instead of the
// packages' /usr/bin one.
func Unit(name, bin string) ([]byte, error) {
	b, err := fs.ReadFile(Files, "systemd/"+name)
	if err != nil {
		return nil, err
	}
	packaged := PackagedAgentBinary
	if strings.HasPrefix(name, "tally-server") {
		packaged = PackagedServerBinary
	}
	if !bytes.Contains(b, []byte(packaged+" ")) {
		return nil, fmt.Errorf("unit %s does not start %s", name, packaged)
	}
	return bytes.ReplaceAll(b, []byte(packaged+" "), []byte(bin+" ")), nil
}

// exists reports whether p exists (a dangling symlink counts).
func exists(p string) (bool, error) {
	_, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}
