package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/common/exitcode"
	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/directory/slapdtest"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
)

// The per-user workflow from the command line: users, a directory synced
// from a real slapd, a token refused when no seat is free, the seat freed
// by the server at the token's expiry, housekeeping and the report.
func TestUsersWorkflow(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC))
	srv := servertest.New(t, servertest.WithClock(clk), func(c *daemon.Config) { c.ExpiryPoll = 10 * time.Millisecond })
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{ID: "U-1", Product: "inventory", Seats: 1, Kind: license.KindUser})
	ldap := slapdtest.Start(t, []slapdtest.User{{UID: "carol", OU: "people"}, {UID: "dave", OU: "people", Locked: true}})

	adminStdout(t, srv, "users", "add", `CORP\alice`, "--display", "Alice")
	adminStdout(t, srv, "users", "add", "bob")
	out := adminStdout(t, srv, "directory", "add", "corp", "--url", ldap.URL, "--base-dn", slapdtest.Base, "--bind-dn", slapdtest.BindDN,
		"--password-file", ldap.PasswordFile, "--domain", "EXAMPLE")
	if !strings.Contains(out, "added directory corp") {
		t.Fatal(out)
	}
	if out = adminStdout(t, srv, "directory", "sync", "corp"); !strings.Contains(out, "2 users seen") {
		t.Fatal(out)
	}
	if out = adminStdout(t, srv, "users", "list"); !strings.Contains(out, `EXAMPLE\dave`) || !strings.Contains(out, "locked (pwdAccountLockedTime") {
		t.Fatal(out)
	}
	if out = adminStdout(t, srv, "users", "token", "issue", "alice", "--product", "inventory", "--expires", "2026-12-06T10:00:00Z"); !strings.Contains(out, "token (shown once): tut_") {
		t.Fatal(out)
	}
	out, code := tryAdmin(t, srv, "users", "token", "issue", "bob", "--product", "inventory")
	if code == 0 || !strings.Contains(out, "all 1 user seats are held") {
		t.Fatalf("exit %d: %s", code, out)
	}
	if out = adminStdout(t, srv, "housekeeping", "run", "clear-expired-tokens", "--dry-run"); !strings.Contains(out, "would free (dry run, nothing changed) 0 seats") {
		t.Fatal(out)
	}
	clk.Advance(time.Hour)
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, err := srv.Admin.UserSeats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(s) == 1 && s[0].Held == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the seat was not freed at the token's expiry: %+v", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	adminStdout(t, srv, "users", "token", "issue", "bob", "--product", "inventory")
	out = adminStdout(t, srv, "report", "users-use-license", "--product", "inventory")
	if !strings.Contains(out, "inventory: 1 of 1 user seats held") || !strings.Contains(out, "Active with 1 token") {
		t.Fatal(out)
	}
	if out = adminStdout(t, srv, "report", "users-use-license", "--csv"); !strings.HasPrefix(out, "USER,PRODUCT,INTERNAL,EXTERNAL,TOKENS,Q&A,CERTIFICATES,DEVICES,CONSUMES") {
		t.Fatal(out)
	}
	if out = adminStdout(t, srv, "users", "token", "list", "alice"); !strings.Contains(out, "ended: expired") {
		t.Fatal(out)
	}
	if out = adminStdout(t, srv, "users", "disable", "bob"); !strings.Contains(out, "1 seats freed") {
		t.Fatal(out)
	}
}

// Wrong command lines are usage errors (exit 2) and change nothing.
func TestUsersBadCommandLines(t *testing.T) {
	srv := servertest.New(t)
	adminStdout(t, srv, "users", "add", "alice")
	for _, args := range [][]string{
		{"users", "token", "issue", "alice"},
		{"users", "token", "issue", "alice", "--product", "inventory", "--expires", "someday"},
		{"users", "token", "revoke", "x"},
		{"users", "add", "a\x01b"},
		{"users", "credential", "add", "alice", "--kind", "pin", "--product", "inventory"},
		{"housekeeping", "run", "reload-system-cache"},
		{"housekeeping", "run", "disable-unused-tokens", "--days", "0"},
		{"directory", "add", "x", "--url", "http://h", "--base-dn", "dc=x"},
		{"directory", "add", "x", "--url", "ldap://h", "--base-dn", "dc=x", "--filter", "(uid="},
		{"report", "users-use-license", "--json", "--csv"},
	} {
		out, code := tryAdmin(t, srv, args...)
		if code != exitcode.Usage {
			t.Errorf("%q: exit %d, want %d: %s", args, code, exitcode.Usage, out)
		}
	}
	// Hostile API bodies are refused the same way.
	err := srv.Admin.Do(context.Background(), "POST", "/api/v1/users", map[string]any{"name": "x", "admin": true}, nil)
	if err == nil || !strings.Contains(err.Error(), "unknown field") {
		t.Fatalf("unknown field: %v", err)
	}
	if us, _ := srv.Admin.Users(context.Background()); len(us) != 1 {
		t.Fatalf("users %+v", us)
	}
}
