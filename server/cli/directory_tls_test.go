package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/directory/slapdtest"
	"github.com/tallyhq/tally/server/servertest"
)

// Must hold: 'directory add --url ldaps://…' and '--start-tls' sync from a
// real slapd whose certificate the server trusts by --ldap-ca-file; a
// directory whose certificate another CA signs is refused at its sync with
// a sentence saying why, and no user changes.
func TestDirectoryOverTLS(t *testing.T) {
	ldap := slapdtest.Start(t, []slapdtest.User{{UID: "carol", OU: "people"}, {UID: "dave", OU: "people"}}, slapdtest.WithTLS())
	stranger := slapdtest.Start(t, []slapdtest.User{{UID: "erin", OU: "people"}}, slapdtest.WithTLS())
	srv := servertest.New(t, func(c *daemon.Config) { c.LDAPCAFile = ldap.CAFile })
	add := func(name, url string, extra ...string) {
		t.Helper()
		args := append([]string{"directory", "add", name, "--url", url, "--base-dn", slapdtest.Base, "--bind-dn", slapdtest.BindDN,
			"--password-file", ldap.PasswordFile, "--domain", strings.ToUpper(name)}, extra...)
		if out := adminStdout(t, srv, args...); !strings.Contains(out, "added directory "+name) {
			t.Fatal(out)
		}
	}
	add("ldaps", ldap.LDAPSURL)
	add("starttls", ldap.URL, "--start-tls")
	for _, name := range []string{"ldaps", "starttls"} {
		if out := adminStdout(t, srv, "directory", "sync", name); !strings.Contains(out, "2 users seen") {
			t.Fatalf("sync %s: %s", name, out)
		}
	}
	users := func() int {
		us, err := srv.Admin.Users(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return len(us)
	}
	// Both directories are the same slapd: its users merge by entryUUID.
	if n := users(); n != 2 {
		t.Fatalf("%d users after syncing both, want 2", n)
	}
	add("stranger", stranger.LDAPSURL)
	out, code := tryAdmin(t, srv, "directory", "sync", "stranger")
	if code == 0 || !strings.Contains(out, "not signed by a trusted CA") || !strings.Contains(out, "does not hold the CA that signs it") {
		t.Fatalf("sync of a directory another CA signs: exit %d: %s", code, out)
	}
	if n := users(); n != 2 {
		t.Fatalf("%d users after a refused sync, want 2", n)
	}
	if line := lineWith(adminStdout(t, srv, "directory", "list"), "stranger"); !strings.Contains(line, "not signed by a trusted CA") {
		t.Fatalf("directory list does not show why stranger's last sync failed: %s", line)
	}
}

func lineWith(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// serve refuses an --ldap-ca-file it cannot use, before it creates
// anything.
func TestServeRefusesBadLDAPCAFile(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{notPEM: "holds no PEM certificate", filepath.Join(dir, "missing.pem"): "no such file"} {
		data := filepath.Join(t.TempDir(), "new")
		_, stderr, code := run(t, time.Now(), "serve", "--data", data, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--ldap-ca-file", file)
		if code == 0 || !strings.Contains(stderr, "--ldap-ca-file") || !strings.Contains(stderr, want) {
			t.Errorf("serve --ldap-ca-file %s: exit %d, %q", file, code, stderr)
		}
		if _, err := os.Stat(data); !os.IsNotExist(err) {
			t.Errorf("serve --ldap-ca-file %s failed but created its data folder", file)
		}
	}
}
