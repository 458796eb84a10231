package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
)

// tally-agent uninstall tells the server, which frees every seat at once
// (the failure of seed 000 was an agent uninstalled before retirement);
// then the data folder goes.
func TestAgentUninstallFreesEverySeat(t *testing.T) {
	_, agentBin := binaries(t)
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 2})
	dir := filepath.Join(t.TempDir(), "agent")
	if out, code := runBin(t, agentBin, "enroll", "--server", srv.Addr(), "--fingerprint", srv.Fingerprint(), "--secret", srv.Secret,
		"--machine-id", "uninstall-test", "--data", dir); code != 0 {
		t.Fatalf("enroll: %s", out)
	}
	if out, code := runBin(t, agentBin, "plugin", "install", "monitor", "--data", dir); code != 0 {
		t.Fatalf("plugin install: %s", out)
	}
	if out, code := runBin(t, agentBin, "run", "--once", "--data", dir); code != 0 {
		t.Fatalf("run --once: %s", out)
	}
	if u := usageOf(t, srv, "monitor"); u.Consumed != 1 {
		t.Fatalf("monitor consumed %d before the uninstall", u.Consumed)
	}
	out, code := runBin(t, agentBin, "uninstall", "--data", dir)
	if code != 0 || !strings.Contains(out, "freed 1 seats") {
		t.Fatalf("uninstall: exit %d, %s", code, out)
	}
	if u := usageOf(t, srv, "monitor"); u.Consumed != 0 {
		t.Fatalf("monitor consumed %d after the uninstall", u.Consumed)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the data folder is still there: %v", err)
	}
	cs, _ := srv.Admin.Computers(context.Background())
	if len(cs) != 1 || cs[0].NodeID != "" {
		t.Fatalf("the computer's key is still live: %+v", cs)
	}
}
