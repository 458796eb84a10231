package cli_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3"

	"github.com/tallyhq/tally/common/exitcode"
	"github.com/tallyhq/tally/server/cli"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

// runData runs an admin command that finds the server through its data
// folder, as on the server host.
func runData(t *testing.T, srv *servertest.Server, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	m := &cli.Main{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
	code := m.Run(context.Background(), append(args, "--data", srv.Dir().Path))
	return out.String(), code
}

// runToken runs an admin command with a token of its own.
func runToken(t *testing.T, srv *servertest.Server, token string, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	m := &cli.Main{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
	code := m.Run(context.Background(), append(args, "--admin-url", srv.Addresses().AdminURL, "--token", token))
	return out.String(), code
}

// The admins commands add, list, issue and revoke tokens, set passwords
// and remove admins; a token is shown once and works with its admin's
// role; bad input exits 2 and changes nothing.
func TestAdminsCommands(t *testing.T) {
	srv := servertest.New(t)
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("a long enough password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(t.TempDir(), "short")
	os.WriteFile(short, []byte("short\n"), 0o600)
	for _, args := range [][]string{
		{"admins", "add", "Olga!", "--role", "viewer"},
		{"admins", "add", "olga", "--role", "superuser"},
		{"admins", "add", "olga"},
		{"admins", "add", "olga", "--role", "viewer", "--password-file", short},
		{"admins", "add", "olga", "--role", "viewer", "--password-file", filepath.Join(t.TempDir(), "none")},
		{"admins", "passwd", "olga"},
		{"admins", "token", "issue"},
	} {
		if out, code := runData(t, srv, args...); code != exitcode.Usage {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, out)
		}
	}
	if out, _ := runData(t, srv, "admins", "list"); strings.Contains(out, "olga") {
		t.Fatalf("bad input added an admin:\n%s", out)
	}
	if out, code := runData(t, srv, "admins", "add", "olga", "--role", "viewer", "--password-file", pw); code != 0 || !strings.Contains(out, "Added admin olga (viewer)") {
		t.Fatalf("add: %d %s", code, out)
	}
	if out, code := runData(t, srv, "admins", "add", "olga", "--role", "admin"); code != 1 || !strings.Contains(out, "exists already") {
		t.Fatalf("add twice: %d %s", code, out)
	}
	out, code := runData(t, srv, "admins", "token", "issue", "olga", "--label", "script")
	tok := regexp.MustCompile(`tly_[A-Za-z0-9_-]{43}`).FindString(out)
	id := regexp.MustCompile(`\bt-[a-z0-9]+\b`).FindString(out)
	if code != 0 || tok == "" || id == "" {
		t.Fatalf("token issue: %d %s", code, out)
	}
	if out, code := runToken(t, srv, tok, "computers", "list"); code != 0 {
		t.Fatalf("olga's token reads: %d %s", code, out)
	}
	if out, code := runToken(t, srv, tok, "secrets", "create", "--name", "x"); code != exitcode.Refused || !strings.Contains(out, "olga has the role viewer") {
		t.Fatalf("olga's token creates a secret: %d %s", code, out)
	}
	out, _ = runData(t, srv, "admins", "list")
	if !regexp.MustCompile(`olga\s+viewer\s+yes\s+1\s`).MatchString(out) || !regexp.MustCompile(`admin\s+admin\s+no\s+1\s`).MatchString(out) {
		t.Fatalf("admins list:\n%s", out)
	}
	if out, _ := runData(t, srv, "admins", "list", "--tokens"); !strings.Contains(out, id) || !strings.Contains(out, "script") || strings.Contains(out, tok) {
		t.Fatalf("admins list --tokens:\n%s", out)
	}
	if out, code := runData(t, srv, "admins", "passwd", "olga", "--password-file", pw); code != 0 {
		t.Fatalf("passwd: %d %s", code, out)
	}
	if out, code := runData(t, srv, "admins", "token", "revoke", id); code != 0 || !strings.Contains(out, "Revoked token "+id+" of olga") {
		t.Fatalf("revoke: %d %s", code, out)
	}
	if out, code := runToken(t, srv, tok, "computers", "list"); code != exitcode.Refused {
		t.Fatalf("a revoked token still reads: %d %s", code, out)
	}
	if out, code := runData(t, srv, "admins", "remove", "admin"); code != 1 || !strings.Contains(out, "last admin of role admin") {
		t.Fatalf("removing the last admin: %d %s", code, out)
	}
	if out, code := runData(t, srv, "admins", "remove", "olga"); code != 0 {
		t.Fatalf("remove: %d %s", code, out)
	}
	ev, err := srv.Admin.Events(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range ev {
		if strings.HasPrefix(e.Kind, "admin.") {
			if e.Actor != store.FirstAdmin {
				t.Errorf("%s by %q, want the first admin", e.Kind, e.Actor)
			}
			kinds = append(kinds, e.Kind)
		}
	}
	want := []string{store.EventAdminAdded, store.EventTokenIssued, store.EventAdminPassword, store.EventTokenRevoked, store.EventAdminRemoved}
	if strings.Join(kinds, " ") != strings.Join(want, " ") {
		t.Fatalf("admin events %v, want %v", kinds, want)
	}
}

// A server upgraded from before named admins keeps working: at its first
// start its data folder's token becomes the token of an admin named admin
// with role admin, and the commands that read it go on working.
func TestUpgradeMakesTheTokenTheFirstAdmins(t *testing.T) {
	dir := t.TempDir()
	srv := servertest.New(t, servertest.WithDataDir(dir))
	token := srv.Identity().Token
	srv.Stop()
	// The database as migration 11 leaves one a server before it wrote:
	// no admins, no tokens, no sessions (later migrations stay applied).
	db, err := sql.Open("sqlite3", filepath.Join(dir, datadir.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DELETE FROM admin_sessions`, `DELETE FROM admin_tokens`, `DELETE FROM admins`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	srv = servertest.New(t, servertest.WithDataDir(dir))
	if srv.Identity().Token != token {
		t.Fatal("the data folder's token changed")
	}
	if out, code := runData(t, srv, "computers", "list"); code != 0 {
		t.Fatalf("computers list with the data folder's token: %d %s", code, out)
	}
	p, err := srv.Admin.Whoami(context.Background())
	if err != nil || p.Name != "admin" || p.RoleName != "admin" {
		t.Fatalf("whoami: %+v %v", p, err)
	}
	if out, _ := runData(t, srv, "admins", "list"); !regexp.MustCompile(`(?m)^admin\s+admin\s+no\s+1\s`).MatchString(out) {
		t.Fatalf("admins list:\n%s", out)
	}
	// Deleting the token file and restarting rotates the token, as it
	// did before named admins: the old one stops working.
	srv.Stop()
	if err := os.Remove(filepath.Join(dir, datadir.TokenFile)); err != nil {
		t.Fatal(err)
	}
	srv = servertest.New(t, servertest.WithDataDir(dir))
	if srv.Identity().Token == token {
		t.Fatal("no new token made")
	}
	if out, code := runData(t, srv, "computers", "list"); code != 0 {
		t.Fatalf("computers list with the new token: %d %s", code, out)
	}
	if out, code := runToken(t, srv, token, "computers", "list"); code != exitcode.Refused {
		t.Fatalf("the old token still works: %d %s", code, out)
	}
}

// Session flags out of range stop serve with a usage error before the data
// folder is made.
func TestServeRefusesBadSessionFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--session-idle", "0s"},
		{"--session-max", "-1h"},
		{"--session-idle", "2h", "--session-max", "1h"},
		{"--session-idle", "soon"},
	} {
		data := filepath.Join(t.TempDir(), "data")
		var out bytes.Buffer
		m := &cli.Main{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
		code := m.Run(context.Background(), append([]string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"}, args...))
		if code != exitcode.Usage || !strings.Contains(out.String(), "--session-") {
			t.Errorf("%v: exit %d\n%s", args, code, out.String())
		}
		if _, err := os.Stat(data); !os.IsNotExist(err) {
			t.Errorf("%v: the data folder was made", args)
		}
	}
}
