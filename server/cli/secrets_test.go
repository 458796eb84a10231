package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyhq/tally/server/cli"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/servertest"
)

// tryAdmin runs an admin command that may fail.
func tryAdmin(t *testing.T, srv *servertest.Server, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	m := &cli.Main{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
	code := m.Run(context.Background(), append(args, "--admin-url", srv.Addresses().AdminURL, "--token", srv.Identity().Token))
	return out.String(), code
}

// enroll-info prints the secret asked for by name or ID, and refuses a
// revoked one; the data folder's enroll-secret file never holds a revoked
// secret: revoking it puts another active one there, or removes the file.
func TestEnrollInfoSecretAndTheSecretFile(t *testing.T) {
	srv := servertest.New(t)
	file := filepath.Join(srv.Dir().Path, datadir.SecretFile)
	held := func() string {
		b, err := os.ReadFile(file)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	initial := held()
	if initial == "" || initial != srv.Secret {
		t.Fatalf("enroll-secret file %q, want the first secret %q", initial, srv.Secret)
	}
	siteB := adminStdout(t, srv, "secrets", "create", "--name", "site-b")
	adminStdout(t, srv, "secrets", "create", "--name", "site-c")
	if out := adminStdout(t, srv, "enroll-info", "--secret", "initial", "--command"); !strings.Contains(out, "--secret "+initial) {
		t.Fatalf("enroll-info --secret initial: %s", out)
	}
	ss, err := srv.Admin.Secrets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var siteBID, siteBValue, initialID string
	for _, s := range ss {
		switch s.Name {
		case "site-b":
			siteBID, siteBValue = s.ID, s.Value
		case "initial":
			initialID = s.ID
		}
	}
	if !strings.Contains(siteB, siteBValue) {
		t.Fatalf("secrets create printed %q", siteB)
	}
	if out := adminStdout(t, srv, "enroll-info", "--secret", siteBID, "--command"); !strings.Contains(out, "--secret "+siteBValue) {
		t.Fatalf("enroll-info --secret %s (by ID): %s", siteBID, out)
	}

	adminStdout(t, srv, "secrets", "revoke", initialID)
	if h := held(); h == "" || h == initial {
		t.Fatalf("after revoking the first secret the file holds %q", h)
	}
	out, code := tryAdmin(t, srv, "enroll-info", "--secret", "initial")
	if code == 0 || !strings.Contains(out, "was revoked") || strings.Contains(out, initial) {
		t.Fatalf("enroll-info --secret of a revoked secret: exit %d, %q", code, out)
	}
	if out, code := tryAdmin(t, srv, "enroll-info", "--secret", "nosuch"); code == 0 || !strings.Contains(out, "secrets list") {
		t.Fatalf("enroll-info --secret nosuch: exit %d, %q", code, out)
	}
	if out := adminStdout(t, srv, "enroll-info"); strings.Contains(out, initial) {
		t.Fatalf("enroll-info prints a revoked secret: %s", out)
	}

	for _, s := range ss {
		if s.Name != "initial" {
			adminStdout(t, srv, "secrets", "revoke", s.ID)
		}
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("no secret can enroll, but the file still holds %q", held())
	}
}

// enroll-info prints the install line, the package-manager commands and
// the agent.conf to drop, with this server's address, fingerprint and
// secret; --install-command prints the install line alone.
func TestEnrollInfoInstallAndPackages(t *testing.T) {
	srv := servertest.New(t)
	out := adminStdout(t, srv, "enroll-info")
	line := "tally-agent install --server " + srv.Addresses().Advertise + " --fingerprint " + srv.Fingerprint() + " --secret " + srv.Secret
	for _, want := range []string{line, "apt-get install ./tally-agent_", "dnf install ./tally-agent-",
		"server = " + srv.Addresses().Advertise, "fingerprint = " + srv.Fingerprint(), "plugins = inventory",
		"tally-agent install --secret " + srv.Secret, "tally-agent enroll --server"} {
		if !strings.Contains(out, want) {
			t.Errorf("enroll-info lacks %q:\n%s", want, out)
		}
	}
	if got := strings.TrimSpace(adminStdout(t, srv, "enroll-info", "--install-command")); got != line {
		t.Fatalf("--install-command: %q, want %q", got, line)
	}
}
