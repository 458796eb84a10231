package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
)

// 'tally-agent uninstall --package' is the contract with the packages'
// removal scripts: the goodbye frees the seats; the data folder stays
// unless --purge-data; a server that cannot be reached fails the removal
// (exit 4) and removes nothing, unless --force.
func TestAgentUninstallPackageMode(t *testing.T) {
	_, agentBin := binaries(t)
	addr := freeUDPAddr(t)
	data := t.TempDir()
	srv := servertest.New(t, servertest.WithDataDir(data), listenOn(addr))
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 2})
	dir := filepath.Join(t.TempDir(), "agent")
	if out, code := runBin(t, agentBin, "enroll", "--server", srv.Addr(), "--fingerprint", srv.Fingerprint(), "--secret", srv.Secret,
		"--machine-id", "package-mode", "--data", dir); code != 0 {
		t.Fatalf("enroll: %s", out)
	}
	if out, code := runBin(t, agentBin, "plugin", "install", "monitor", "--data", dir); code != 0 {
		t.Fatalf("plugin install: %s", out)
	}
	if out, code := runBin(t, agentBin, "run", "--once", "--data", dir); code != 0 {
		t.Fatalf("run --once: %s", out)
	}

	if out, code := runBin(t, agentBin, "uninstall", "--purge-data", "--data", dir); code != 2 {
		t.Fatalf("--purge-data without --package: exit %d, %s", code, out)
	}
	srv.Stop()
	stop := refuseQUIC(t, addr)
	out, code := runBin(t, agentBin, "uninstall", "--package", "--purge-data", "--data", dir)
	if code != 4 || !strings.Contains(out, "nothing was removed") {
		t.Fatalf("uninstall --package with the server down: exit %d, %s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "enrollment.json")); err != nil {
		t.Fatalf("the data folder changed with the server down: %v", err)
	}
	stop()

	srv = servertest.New(t, servertest.WithDataDir(data), listenOn(addr))
	out, code = runBin(t, agentBin, "uninstall", "--package", "--data", dir)
	if code != 0 || !strings.Contains(out, "freed 1 seats") || !strings.Contains(out, "Kept the data folder") {
		t.Fatalf("uninstall --package: exit %d, %s", code, out)
	}
	if u := usageOf(t, srv, "monitor"); u.Consumed != 0 {
		t.Fatalf("monitor consumed %d after the package's removal", u.Consumed)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("--package removed the data folder: %v", err)
	}
	// The purge after it: the key is retired, the server holds nothing,
	// the data folder goes.
	out, code = runBin(t, agentBin, "uninstall", "--package", "--purge-data", "--data", dir)
	if code != 0 || !strings.Contains(out, "already freed") {
		t.Fatalf("uninstall --package --purge-data: exit %d, %s", code, out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("--purge-data left the data folder: %v", err)
	}
	// A package never configured: nothing to tell, exit 0.
	out, code = runBin(t, agentBin, "uninstall", "--package", "--data", filepath.Join(t.TempDir(), "never"))
	if code != 0 || !strings.Contains(out, "Not enrolled") {
		t.Fatalf("uninstall --package of an agent never enrolled: exit %d, %s", code, out)
	}
	noDrift(t, srv)
}
