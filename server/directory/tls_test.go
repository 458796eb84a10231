package directory_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyhq/tally/server/directory"
	"github.com/tallyhq/tally/server/directory/slapdtest"
	"github.com/tallyhq/tally/server/store"
)

// tlsEnv is a directory of a slapd serving TLS, reached as set.
func tlsEnv(t *testing.T, srv *slapdtest.Server, set func(d *store.Directory, src *directory.LDAP)) *env {
	t.Helper()
	e := setup(t, srv, 5)
	set(&e.src.Dir, e.src)
	if err := directory.Check(&e.src.Dir); err != nil {
		t.Fatal(err)
	}
	return e
}

// Must hold: users are synced over ldaps:// and over StartTLS from a real
// slapd whose certificate is signed by the CA the directory is given.
func TestSyncOverTLS(t *testing.T) {
	srv := slapdtest.Start(t, []slapdtest.User{{UID: "alice", OU: "people"}, {UID: "bob", OU: "people", Locked: true}}, slapdtest.WithTLS())
	for name, set := range map[string]func(d *store.Directory, src *directory.LDAP){
		"ldaps": func(d *store.Directory, src *directory.LDAP) { d.URL, src.CAFile = srv.LDAPSURL, srv.CAFile },
		"StartTLS": func(d *store.Directory, src *directory.LDAP) {
			d.StartTLS, src.CAFile = true, srv.CAFile
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := tlsEnv(t, srv, set)
			if r := e.sync(t); r.Seen != 2 || r.Added != 2 {
				t.Fatalf("sync over %s: %+v", name, r)
			}
			u, err := e.db.User(e.ctx, `EXAMPLE\bob`)
			if err != nil || u.External != "disabled" {
				t.Fatalf("bob over %s: %+v %v", name, u, err)
			}
		})
	}
}

// Must hold: a directory whose certificate is not signed by the CA given
// (another CA, or none: the system's) is refused with a sentence that says
// what to do, over ldaps:// and StartTLS, and the sync changes no user; a
// CA file that cannot be read or holds no certificate is refused too.
func TestSyncRefusesWrongCA(t *testing.T) {
	srv := slapdtest.Start(t, []slapdtest.User{{UID: "alice", OU: "people"}}, slapdtest.WithTLS())
	dir := t.TempDir()
	other := slapdtest.NewCA(t, dir, "other-ca")
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("-----BEGIN NOTHING-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The directory is synced once with the right CA; every refused sync
	// after must leave alice as she is.
	e := tlsEnv(t, srv, func(d *store.Directory, src *directory.LDAP) { d.URL, src.CAFile = srv.LDAPSURL, srv.CAFile })
	e.sync(t)
	for _, tc := range []struct {
		name     string
		url      string
		startTLS bool
		caFile   string
		want     string
		untrusts bool
	}{
		{"ldaps, another CA", srv.LDAPSURL, false, other.File, "does not hold the CA that signs it", true},
		{"StartTLS, another CA", srv.URL, true, other.File, "does not hold the CA that signs it", true},
		{"ldaps, the system's CAs", srv.LDAPSURL, false, "", "give the CA that signs it with --ca-file", true},
		{"StartTLS, the system's CAs", srv.URL, true, "", "give the CA that signs it with --ca-file", true},
		{"a CA file that is not there", srv.LDAPSURL, false, filepath.Join(dir, "missing.pem"), "read the directory's CA file", false},
		{"a CA file without a certificate", srv.LDAPSURL, false, notPEM, "holds no PEM certificate", false},
		{"a host name the certificate does not name", strings.Replace(srv.LDAPSURL, "127.0.0.1", "localhost", 1), false, srv.CAFile, "host name", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := e.db.Events(e.ctx, store.EventFilter{})
			src := *e.src
			src.Dir.URL, src.Dir.StartTLS, src.CAFile = tc.url, tc.startTLS, tc.caFile
			_, err := directory.Sync(e.ctx, e.db, "corp", &src, "t")
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, directory.ErrUntrusted) != tc.untrusts {
				t.Fatalf("sync: %v, want %q (untrusted %v)", err, tc.want, tc.untrusts)
			}
			us, _ := e.db.Users(e.ctx)
			after, _ := e.db.Events(e.ctx, store.EventFilter{})
			ds, _ := e.db.Directories(e.ctx)
			if len(us) != 1 || us[0].Status != "Active" || len(after) != len(before) {
				t.Fatalf("a refused sync changed users %+v or events", us)
			}
			if !strings.Contains(ds[0].LastResult, tc.want) {
				t.Fatalf("the directory's last result %q does not say why", ds[0].LastResult)
			}
		})
	}
}
