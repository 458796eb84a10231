package directory_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/server/directory"
	"github.com/tallyhq/tally/server/directory/slapdtest"
	"github.com/tallyhq/tally/server/housekeeping"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/license/licensetest"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

type env struct {
	db  *sqlstore.DB
	src *directory.LDAP
	ctx context.Context
}

func setup(t *testing.T, srv *slapdtest.Server, seats uint32) *env {
	t.Helper()
	iss := licensetest.NewIssuer(t)
	db, err := sqlstore.Open(filepath.Join(t.TempDir(), "t.db"), sqlstore.Options{Clock: clock.NewManual(time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)),
		VerifyLicense: iss.Verify, NoSync: true, SkipQuickCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	li := iss.Import(t, license.Payload{ID: "U-1", Product: "inventory", Seats: seats, Kind: license.KindUser})
	if _, err := db.ImportLicenses(ctx, []store.LicenseImport{li}, "t"); err != nil {
		t.Fatal(err)
	}
	d := store.Directory{Name: "corp", URL: srv.URL, BaseDN: slapdtest.Base, BindDN: slapdtest.BindDN, PasswordFile: srv.PasswordFile, Domain: "EXAMPLE"}
	if err := directory.Check(&d); err != nil {
		t.Fatal(err)
	}
	if d, err = db.AddDirectory(ctx, d, "t"); err != nil {
		t.Fatal(err)
	}
	return &env{db: db, src: &directory.LDAP{Dir: d, Timeout: 10 * time.Second}, ctx: ctx}
}

func (e *env) sync(t *testing.T) store.SyncResult {
	t.Helper()
	r, err := directory.Sync(e.ctx, e.db, "corp", e.src, "t")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *env) held(t *testing.T) int {
	t.Helper()
	u, err := e.db.UserSeatUsage(e.ctx)
	if err != nil || len(u) != 1 {
		t.Fatal(u, err)
	}
	return u[0].Held
}

// Users are synced from a real slapd; one deleted there frees its seat at
// the next sync; ones disabled there are released by the housekeeping rule
// within its filters.
func TestSyncWithSlapd(t *testing.T) {
	alice := slapdtest.User{UID: "alice", OU: "people", Groups: []string{"staff"}}
	bob := slapdtest.User{UID: "bob", OU: "people", Groups: []string{"staff"}}
	carol := slapdtest.User{UID: "carol", OU: "eng", Groups: []string{"staff"}}
	dave := slapdtest.User{UID: "dave", OU: "people", Locked: true}
	srv := slapdtest.Start(t, []slapdtest.User{alice, bob, carol, dave})
	e := setup(t, srv, 3)

	if r := e.sync(t); r.Added != 4 || r.Seen != 4 {
		t.Fatalf("first sync: %+v", r)
	}
	us, err := e.db.Users(e.ctx)
	if err != nil || len(us) != 4 {
		t.Fatalf("users %+v %v", us, err)
	}
	for _, u := range us {
		if !strings.HasPrefix(u.Key, "guid:") || u.Domain != "EXAMPLE" || u.Directory != "corp" || u.Status != "Active" {
			t.Errorf("user %+v", u)
		}
		wantExt := "active"
		if u.Name == "dave" {
			wantExt = "disabled"
		}
		if u.External != wantExt {
			t.Errorf("%s: external %q, want %q (%s)", u.Name, u.External, wantExt, u.ExternalWhy)
		}
		if u.Name == "bob" && (u.OU != "ou=people,dc=example,dc=org" || len(u.Groups) != 1 || u.Groups[0] != "staff") {
			t.Errorf("bob %+v", u)
		}
	}
	if r := e.sync(t); r.Added != 0 || r.Updated != 0 || r.Deleted != 0 {
		t.Fatalf("unchanged sync: %+v", r)
	}
	for _, u := range []string{`EXAMPLE\alice`, "bob", "carol"} {
		if _, err := e.db.AddCredential(e.ctx, store.NewCredential{User: u, Product: "inventory", Kind: "token"}, "t"); err != nil {
			t.Fatal(err)
		}
	}
	if h := e.held(t); h != 3 {
		t.Fatalf("held %d", h)
	}

	srv.Delete(t, alice)
	if r := e.sync(t); r.Deleted != 1 || r.SeatsFreed != 1 || e.held(t) != 2 {
		t.Fatalf("sync after delete: %+v, held %d", r, e.held(t))
	}
	rep, err := e.db.UsersUseLicense(e.ctx, "inventory")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rep {
		if r.User == `EXAMPLE\alice` {
			found = r.External == "deleted from directory" && !r.Consumes
		}
	}
	if !found {
		t.Fatalf("alice not reported as deleted from directory: %+v", rep)
	}

	srv.Lock(t, bob)
	srv.Lock(t, carol)
	if r := e.sync(t); r.Updated != 2 || e.held(t) != 2 {
		t.Fatalf("sync after lock: %+v held %d", r, e.held(t))
	}
	run := store.HousekeepingRun{Task: housekeeping.ReleaseDisabledAccounts, Domain: "example", OU: "ou=people", Group: "staff"}
	res, err := e.db.Housekeeping(e.ctx, run, "t")
	if err != nil || res.SeatsFreed != 1 || len(res.Items) != 1 || res.Items[0].User != `EXAMPLE\bob` || e.held(t) != 1 {
		t.Fatalf("release: %+v %v held %d", res, err, e.held(t))
	}
	// carol (ou=eng) was outside the filter; a run without OU takes her.
	run.OU = ""
	if res, err = e.db.Housekeeping(e.ctx, run, "t"); err != nil || res.SeatsFreed != 1 || e.held(t) != 0 {
		t.Fatalf("release all: %+v %v", res, err)
	}
}

// A paged search lists 2,000 users where the bind account may read 500
// per search.
func TestPagedSearch2000(t *testing.T) {
	var us []slapdtest.User
	for i := range 2000 {
		us = append(us, slapdtest.User{UID: fmt.Sprintf("u%04d", i), OU: "people"})
	}
	srv := slapdtest.Start(t, us)
	e := setup(t, srv, 1)
	e.src.PageSize = 300
	// Unpaged, the directory refuses to return them all.
	c, err := ldap.DialURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(slapdtest.BindDN, slapdtest.Password); err != nil {
		t.Fatal(err)
	}
	_, err = c.Search(ldap.NewSearchRequest(slapdtest.Base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, directory.DefaultFilter, []string{"uid"}, nil))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		t.Fatalf("unpaged search: %v, want size limit exceeded", err)
	}
	if r := e.sync(t); r.Seen != 2000 || r.Added != 2000 {
		t.Fatalf("paged sync: %+v", r)
	}
}

// Settings that cannot work are refused before anything is stored.
func TestCheckRefusesBadSettings(t *testing.T) {
	for _, d := range []store.Directory{
		{Name: "x", URL: "http://h", BaseDN: "dc=x"},
		{Name: "x", URL: "ldap://", BaseDN: "dc=x"},
		{Name: "x", URL: "ldaps://h", BaseDN: "dc=x", StartTLS: true},
		{Name: "x", URL: "ldap://h", BaseDN: "not a dn"},
		{Name: "x", URL: "ldap://h", BaseDN: "dc=x", Filter: "(uid=a"},
		{Name: "x", URL: "ldap://h", BaseDN: "dc=x", BindDN: "cn=a,dc=x"},
		{Name: "x\x00", URL: "ldap://h", BaseDN: "dc=x"},
		{Name: "x", URL: "ldap://h", BaseDN: "dc=x", Interval: time.Second},
	} {
		if err := directory.Check(&d); !errors.Is(err, directory.ErrConfig) {
			t.Errorf("%+v: %v", d, err)
		}
	}
}

// A directory that cannot be reached changes no user and says why.
func TestSyncUnreachable(t *testing.T) {
	srv := slapdtest.Start(t, []slapdtest.User{{UID: "a", OU: "people"}})
	e := setup(t, srv, 1)
	e.sync(t)
	bad := *e.src
	bad.Password = "wrong"
	if _, err := directory.Sync(e.ctx, e.db, "corp", &bad, "t"); err == nil || !strings.Contains(err.Error(), "bind") {
		t.Fatalf("wrong password: %v", err)
	}
	us, _ := e.db.Users(e.ctx)
	ds, _ := e.db.Directories(e.ctx)
	if len(us) != 1 || us[0].Status != "Active" || !strings.HasPrefix(ds[0].LastResult, "failed: ") {
		t.Fatalf("users %+v, directory %+v", us, ds)
	}
}
