package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyhq/tally/installer"
)

// tally-server install --root writes the binary, the serve flags, the unit
// and the data folder (0700), enabled for the next boot, and writes no
// passwd entry; the server runs on that data folder; uninstall keeps the
// database and the identity, install again finds them, and only --purge
// removes them, leaving the root empty.
func TestServerInstallUninstallInRoot(t *testing.T) {
	serverBin, _ := binaries(t)
	root := t.TempDir()
	out, code := runBin(t, serverBin, "install", "--root", root, "--listen", "0.0.0.0:4433", "--advertise", "tally.example.com:4433")
	if code != 0 || !strings.Contains(out, "no user was created") || !strings.Contains(out, "--root: no service was started") {
		t.Fatalf("install: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/passwd")); !os.IsNotExist(err) {
		t.Fatalf("install --root wrote a passwd file: %v", err)
	}
	data := filepath.Join(root, installer.ServerData)
	if fi, err := os.Stat(data); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data folder: %v", err)
	}
	if fi, err := os.Stat(filepath.Dir(data)); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("/var/lib under the root: %v", err)
	}
	env, _ := os.ReadFile(filepath.Join(root, installer.ServerEnv))
	if !strings.Contains(string(env), "TALLY_SERVER_ARGS=--listen 0.0.0.0:4433 --advertise tally.example.com:4433\n") {
		t.Fatalf("server.env:\n%s", env)
	}
	unit, _ := os.ReadFile(filepath.Join(root, installer.ServerUnit))
	if !strings.Contains(string(unit), "ExecStart="+installer.ServerBinary+" serve --data "+installer.ServerData) || !strings.Contains(string(unit), "User=tally") {
		t.Fatalf("unit:\n%s", unit)
	}
	if l, err := os.Readlink(filepath.Join(root, installer.ServerWants)); err != nil || l != installer.ServerUnit {
		t.Fatalf("not enabled: %q %v", l, err)
	}

	p := startServerBinary(t, filepath.Join(root, installer.ServerBinary), data)
	fp := p.Fingerprint()
	p.terminate(t)

	if out, code := runBin(t, serverBin, "uninstall", "--root", root); code != 0 || !strings.Contains(out, "Kept "+data) {
		t.Fatalf("uninstall: exit %d\n%s", code, out)
	}
	for p := range treeOf(t, root) {
		if !strings.HasPrefix(p, "var") {
			t.Errorf("%s left after the uninstall", p)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "tally.db")); err != nil {
		t.Fatalf("the database went without --purge: %v", err)
	}
	if out, code := runBin(t, serverBin, "uninstall", "--root", root); code != 0 || !strings.Contains(out, "Kept "+data) {
		t.Fatalf("uninstall twice: exit %d\n%s", code, out)
	}

	if out, code := runBin(t, serverBin, "install", "--root", root); code != 0 || !strings.Contains(out, "Installed") {
		t.Fatalf("install again: exit %d\n%s", code, out)
	}
	env, _ = os.ReadFile(filepath.Join(root, installer.ServerEnv))
	if !strings.Contains(string(env), "TALLY_SERVER_ARGS=\n") {
		t.Fatalf("server.env after an install without flags:\n%s", env)
	}
	p = startServerBinary(t, filepath.Join(root, installer.ServerBinary), data)
	if p.Fingerprint() != fp {
		t.Fatalf("the identity changed across uninstall and install: %s, was %s", p.Fingerprint(), fp)
	}
	p.terminate(t)
	if out, code := runBin(t, serverBin, "uninstall", "--root", root); code != 0 {
		t.Fatalf("uninstall: exit %d\n%s", code, out)
	}
	// --purge after a plain uninstall: the data goes, and the folders the
	// first install created.
	if out, code := runBin(t, serverBin, "uninstall", "--purge", "--root", root); code != 0 || !strings.Contains(out, "are gone") {
		t.Fatalf("uninstall --purge: exit %d\n%s", code, out)
	}
	if left := treeOf(t, root); len(left) > 0 {
		t.Fatalf("left under the root: %v", left)
	}
	for _, bad := range [][]string{{"--listen", "nohost"}, {"--admin", "127.0.0.1:8080 --pprof x"}, {"--advertise", "h:$X"}, {"--root", filepath.Join(root, "none")}} {
		out, code := runBin(t, serverBin, append([]string{"install", "--root", root}, bad...)...)
		if code != 2 {
			t.Errorf("install %v: exit %d\n%s", bad, code, out)
		}
		if left := treeOf(t, root); len(left) > 0 {
			t.Fatalf("install %v left %v", bad, left)
		}
	}
}
