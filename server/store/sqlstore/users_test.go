package sqlstore_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/server/engine"
	"github.com/tallyhq/tally/server/housekeeping"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/license/licensetest"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

var userEpoch = time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)

type userEnv struct {
	db  *sqlstore.DB
	clk *clock.Manual
	iss *licensetest.Issuer
	ctx context.Context
	// secret enrolls the machines of the device tests (usersdevices_test.go).
	secret string
}

func openUsers(t testing.TB) *userEnv { return openUsersWith(t, nil) }

// openUsersWith opens a store deciding with eng (nil: the built-in
// catalog).
func openUsersWith(t testing.TB, eng *engine.Engine) *userEnv {
	t.Helper()
	iss := licensetest.NewIssuer(t)
	clk := clock.NewManual(userEpoch)
	db := sqlstore.OpenForTest(t, sqlstore.Options{Clock: clk, VerifyLicense: iss.Verify, Engine: eng})
	return &userEnv{db: db, clk: clk, iss: iss, ctx: context.Background()}
}

// userLicense imports a user license of product "inventory".
func (e *userEnv) userLicense(t licensetest.TB, id string, seats uint32) {
	t.Helper()
	li := e.iss.Import(t, license.Payload{ID: id, Product: "inventory", Seats: seats, Kind: license.KindUser, IssuedAt: userEpoch.Unix()})
	if _, err := e.db.ImportLicenses(e.ctx, []store.LicenseImport{li}, "test"); err != nil {
		t.Fatal(err)
	}
}

func (e *userEnv) held(t licensetest.TB) int {
	t.Helper()
	u, err := e.db.UserSeatUsage(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(u) == 0 {
		return 0
	}
	return u[0].Held
}

func (e *userEnv) addUser(t testing.TB, name string) {
	t.Helper()
	if _, err := e.db.AddUser(e.ctx, store.NewUser{Domain: "CORP", Name: name}, "test"); err != nil {
		t.Fatal(err)
	}
}

func (e *userEnv) cred(t testing.TB, user, kind string, expires *time.Time) store.UserCredential {
	t.Helper()
	c, err := e.db.AddCredential(e.ctx, store.NewCredential{User: user, Product: "inventory", Kind: kind, Expires: expires}, "test")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Two credentials consume one seat; a credential with no seat free is
// refused and stores nothing; the seat is freed with the last credential.
func TestUserSeatPerUser(t *testing.T) {
	e := openUsers(t)
	e.userLicense(t, "U-1", 1)
	e.addUser(t, "alice")
	e.addUser(t, "bob")
	tok := e.cred(t, `CORP\alice`, "token", nil)
	if !strings.HasPrefix(tok.Secret, "tut_") || !tok.Active {
		t.Fatalf("token %+v", tok)
	}
	qa := e.cred(t, "alice", "qa", nil)
	if h := e.held(t); h != 1 {
		t.Fatalf("held %d after two credentials, want 1", h)
	}
	_, err := e.db.AddCredential(e.ctx, store.NewCredential{User: "bob", Product: "inventory", Kind: "token"}, "test")
	if !errors.Is(err, store.ErrNoUserSeat) || !strings.Contains(err.Error(), "all 1 user seats are held") {
		t.Fatalf("bob's token: %v", err)
	}
	if cs, _ := e.db.Credentials(e.ctx, "bob", ""); len(cs) != 0 {
		t.Fatalf("refused token stored: %+v", cs)
	}
	if n, err := e.db.EndCredential(e.ctx, tok.ID, "revoked", "test"); err != nil || n != 0 {
		t.Fatalf("revoke one of two: freed %d, %v", n, err)
	}
	if n, err := e.db.EndCredential(e.ctx, qa.ID, "revoked", "test"); err != nil || n != 1 {
		t.Fatalf("revoke last: freed %d, %v", n, err)
	}
	if h := e.held(t); h != 0 {
		t.Fatalf("held %d", h)
	}
	e.cred(t, "bob", "certificate", nil)
	if n, err := e.db.SetUserStatus(e.ctx, "bob", "Disabled", "test"); err != nil || n != 1 {
		t.Fatalf("disable bob: freed %d, %v", n, err)
	}
	if n, err := e.db.SetUserStatus(e.ctx, "bob", "Active", "test"); err != nil || n != 0 || e.held(t) != 1 {
		t.Fatalf("enable bob: %d, %v, held %d", n, err, e.held(t))
	}
	// A used token records its last use.
	tok2 := e.cred(t, "bob", "token", nil)
	e.clk.Advance(time.Hour)
	used, err := e.db.UseToken(e.ctx, tok2.Secret)
	if err != nil || used.LastUsedAt == nil || !used.LastUsedAt.Equal(userEpoch.Add(time.Hour)) {
		t.Fatalf("use token: %+v %v", used, err)
	}
	if _, err := e.db.UseToken(e.ctx, "tut_nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	// The maintenance job counts user seats from their rows: no drift.
	rep, err := e.db.RunMaintenance(e.ctx, store.MaintenanceOptions{})
	if err != nil || len(rep.Drift) != 0 || len(rep.Repaired) != 0 {
		t.Fatalf("maintenance: %+v %v", rep, err)
	}
	ls, _ := e.db.Licenses(e.ctx)
	if len(ls) != 1 || ls[0].Held != 1 || ls[0].Kind != "user" {
		t.Fatalf("licenses %+v", ls)
	}
}

// No license at all: the refusal says what to import.
func TestUserSeatNoLicense(t *testing.T) {
	e := openUsers(t)
	e.addUser(t, "alice")
	_, err := e.db.AddCredential(e.ctx, store.NewCredential{User: "alice", Product: "inventory", Kind: "token"}, "test")
	if !errors.Is(err, store.ErrNoUserSeat) || !strings.Contains(err.Error(), "--kind user") {
		t.Fatal(err)
	}
}

// The sweep frees an expired token's seat at its expiry.
func TestExpiredTokenFreesSeatAtExpiry(t *testing.T) {
	e := openUsers(t)
	e.userLicense(t, "U-1", 1)
	e.addUser(t, "alice")
	exp := userEpoch.Add(time.Hour)
	e.cred(t, "alice", "token", &exp)
	next, ok, err := e.db.NextCredentialExpiry(e.ctx)
	if err != nil || !ok || !next.Equal(exp) {
		t.Fatalf("next expiry %v %v %v", next, ok, err)
	}
	e.clk.Advance(59 * time.Minute)
	if r, err := e.db.SweepUsers(e.ctx); err != nil || r.SeatsFreed != 0 || e.held(t) != 1 {
		t.Fatalf("early sweep: %+v %v", r, err)
	}
	e.clk.Advance(time.Minute)
	r, err := e.db.SweepUsers(e.ctx)
	if err != nil || r.SeatsFreed != 1 || e.held(t) != 0 {
		t.Fatalf("sweep at expiry: %+v %v held %d", r, err, e.held(t))
	}
	if _, ok, _ := e.db.NextCredentialExpiry(e.ctx); ok {
		t.Fatal("cleared token still due")
	}
}

// Bad input changes nothing and says why.
func TestUsersBadInput(t *testing.T) {
	e := openUsers(t)
	e.userLicense(t, "U-1", 1)
	past := userEpoch.Add(-time.Second)
	e.addUser(t, "pat")
	for name, f := range map[string]func() error{
		"control char": func() error { _, err := e.db.AddUser(e.ctx, store.NewUser{Name: "a\x00b"}, "t"); return err },
		"empty name":   func() error { _, err := e.db.AddUser(e.ctx, store.NewUser{Name: ""}, "t"); return err },
		"long name": func() error {
			_, err := e.db.AddUser(e.ctx, store.NewUser{Name: strings.Repeat("x", 300)}, "t")
			return err
		},
		"bad kind": func() error {
			_, err := e.db.AddCredential(e.ctx, store.NewCredential{User: "x", Product: "inventory", Kind: "pin"}, "t")
			return err
		},
		"past expiry": func() error {
			_, err := e.db.AddCredential(e.ctx, store.NewCredential{User: "pat", Product: "inventory", Kind: "token", Expires: &past}, "t")
			return err
		},
		"unknown product": func() error {
			_, err := e.db.AddCredential(e.ctx, store.NewCredential{User: "pat", Product: "nope", Kind: "token"}, "t")
			return err
		},
		"bad status": func() error { _, err := e.db.SetUserStatus(e.ctx, "pat", "Gone", "t"); return err },
		"bad task": func() error {
			_, err := e.db.Housekeeping(e.ctx, store.HousekeepingRun{Task: "reload-cache"}, "t")
			return err
		},
		"bad days": func() error {
			_, err := e.db.Housekeeping(e.ctx, store.HousekeepingRun{Task: housekeeping.DisableUnusedTokens, Days: -3}, "t")
			return err
		},
		"bad sync entry": func() error {
			if _, err := e.db.AddDirectory(e.ctx, store.Directory{Name: "d", URL: "ldap://x", BaseDN: "dc=x", Interval: time.Hour}, "t"); err != nil {
				return err
			}
			_, err := e.db.SyncDirectory(e.ctx, "d", []store.DirectoryEntry{{Name: "a\nb", External: "active"}}, "t")
			return err
		},
	} {
		if err := f(); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	if h := e.held(t); h != 0 {
		t.Fatalf("held %d", h)
	}
	if us, _ := e.db.Users(e.ctx); len(us) != 1 || us[0].Name != "pat" {
		t.Fatalf("users %+v", us)
	}
}

// Every task's dry run reports exactly what the real run then frees, and
// changes nothing.
func TestHousekeepingDryRunMatchesRun(t *testing.T) {
	e := openUsers(t)
	e.userLicense(t, "U-1", 10)
	if _, err := e.db.AddDirectory(e.ctx, store.Directory{Name: "corp", URL: "ldap://x", BaseDN: "dc=corp", Domain: "CORP", Interval: time.Hour}, "t"); err != nil {
		t.Fatal(err)
	}
	ent := func(name, ext, ou string, groups ...string) store.DirectoryEntry {
		return store.DirectoryEntry{GUID: "g-" + name, Name: name, DN: "uid=" + name + "," + ou, OU: ou, Groups: groups, External: ext, ExternalWhy: ext}
	}
	if _, err := e.db.SyncDirectory(e.ctx, "corp", []store.DirectoryEntry{
		ent("ann", "active", "ou=sales,dc=corp"), ent("ben", "disabled", "ou=sales,dc=corp", "staff"),
		ent("cid", "disabled", "ou=eng,dc=corp", "staff"), ent("dot", "active", "ou=eng,dc=corp"),
	}, "t"); err != nil {
		t.Fatal(err)
	}
	soon := userEpoch.Add(time.Hour)
	for _, u := range []string{"ann", "ben", "cid", "dot"} {
		e.cred(t, `CORP\`+u, "token", nil)
	}
	e.cred(t, "ann", "token", &soon)
	e.clk.Advance(100 * 24 * time.Hour)
	e.cred(t, "dot", "qa", nil) // dot keeps a seat through the unused-token task
	for _, run := range []store.HousekeepingRun{
		{Task: housekeeping.ReleaseDisabledAccounts, OU: "ou=sales,dc=corp", Group: "staff"},
		{Task: housekeeping.ClearExpiredTokens},
		{Task: housekeeping.DisableUnusedTokens, Days: 90},
		{Task: housekeeping.ClearDeletedUsers},
	} {
		before := e.held(t)
		dry := run
		dry.DryRun = true
		d, err := e.db.Housekeeping(e.ctx, dry, "t")
		if err != nil {
			t.Fatal(err)
		}
		if e.held(t) != before {
			t.Fatalf("%s: dry run changed seats", run.Task)
		}
		r, err := e.db.Housekeeping(e.ctx, run, "t")
		if err != nil {
			t.Fatal(err)
		}
		d.DryRun = false
		if !reflect.DeepEqual(d, r) {
			t.Fatalf("%s: dry run %+v, run %+v", run.Task, d, r)
		}
		if before-e.held(t) != r.SeatsFreed {
			t.Fatalf("%s: says %d freed, held went %d → %d", run.Task, r.SeatsFreed, before, e.held(t))
		}
		t.Logf("%s: %+v", run.Task, r)
	}
	// ben (sales, staff) released; cid (eng) kept; ann and cid lost their
	// unused tokens; dot keeps a seat through Q&A.
	rep, err := e.db.UsersUseLicense(e.ctx, "inventory")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range rep {
		got[r.User] = r.Consumes
	}
	want := map[string]bool{`CORP\ann`: false, `CORP\ben`: false, `CORP\cid`: false, `CORP\dot`: true}
	if !reflect.DeepEqual(got, want) || e.held(t) != 1 {
		t.Fatalf("report %+v", rep)
	}
}

// A user deleted from the directory frees its seat at the sync that finds
// it gone, and the report lists it by its last known name.
func TestSyncDeletedUserFreesSeat(t *testing.T) {
	e := openUsers(t)
	e.userLicense(t, "U-1", 1)
	if _, err := e.db.AddDirectory(e.ctx, store.Directory{Name: "corp", URL: "ldap://x", BaseDN: "dc=corp", Domain: "CORP", Interval: time.Hour}, "t"); err != nil {
		t.Fatal(err)
	}
	ann := store.DirectoryEntry{GUID: "G1", Name: "ann", Display: "Ann", External: "active"}
	if _, err := e.db.SyncDirectory(e.ctx, "corp", []store.DirectoryEntry{ann}, "t"); err != nil {
		t.Fatal(err)
	}
	e.cred(t, `CORP\ann`, "token", nil)
	r, err := e.db.SyncDirectory(e.ctx, "corp", nil, "t")
	if err != nil || r.Deleted != 1 || r.SeatsFreed != 1 || e.held(t) != 0 {
		t.Fatalf("sync: %+v %v", r, err)
	}
	rep, _ := e.db.UsersUseLicense(e.ctx, "")
	if len(rep) != 1 || rep[0].User != `CORP\ann` || rep[0].External != "deleted from directory" || rep[0].Status != "Deleted" {
		t.Fatalf("report %+v", rep)
	}
}

// A user license that expires grants nothing: its seats move to another
// license with room, or are freed, so seats held stay within seats granted.
func TestExpiredUserLicenseSeats(t *testing.T) {
	e := openUsers(t)
	exp := userEpoch.Add(time.Hour)
	for _, p := range []license.Payload{
		{ID: "U-SOON", Product: "inventory", Seats: 1, Kind: license.KindUser, IssuedAt: userEpoch.Unix(), Expires: exp.Unix()},
		{ID: "U-LONG", Product: "inventory", Seats: 1, Kind: license.KindUser, IssuedAt: userEpoch.Unix()},
	} {
		if _, err := e.db.ImportLicenses(e.ctx, []store.LicenseImport{e.iss.Import(t, p)}, "t"); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"ann", "ben", "cat"} {
		e.addUser(t, u)
	}
	e.cred(t, "ann", "token", nil) // on U-SOON, the license that expires first
	ben := e.cred(t, "ben", "token", nil)
	if _, err := e.db.EndCredential(e.ctx, ben.ID, "revoked", "t"); err != nil {
		t.Fatal(err)
	}
	next, ok, _ := e.db.NextCredentialExpiry(e.ctx)
	if !ok || next.Unix() != exp.Unix() {
		t.Fatalf("next %v %v", next, ok)
	}
	e.clk.Set(exp.Add(time.Second))
	r, err := e.db.SweepUsers(e.ctx)
	if err != nil || r.SeatsFreed != 0 || len(r.Items) != 1 || !strings.Contains(r.Items[0].Action, "moved") {
		t.Fatalf("move: %+v %v", r, err)
	}
	u, _ := e.db.UserSeatUsage(e.ctx)
	if u[0].Held != 1 || u[0].Granted != 1 {
		t.Fatalf("usage %+v", u)
	}
	if _, err := e.db.AddCredential(e.ctx, store.NewCredential{User: "cat", Product: "inventory", Kind: "token"}, "t"); !errors.Is(err, store.ErrNoUserSeat) {
		t.Fatalf("cat: %v", err)
	}
}

// Removing a user license moves its seats to another with room, or frees
// them.
func TestRemoveUserLicense(t *testing.T) {
	e := openUsers(t)
	e.userLicense(t, "U-A", 1)
	e.userLicense(t, "U-B", 1)
	e.addUser(t, "ann")
	e.addUser(t, "ben")
	e.cred(t, "ann", "token", nil)
	e.cred(t, "ben", "token", nil)
	ch, err := e.db.RemoveLicense(e.ctx, "U-A", "t")
	if err != nil || !strings.Contains(ch.Message, "0 seats moved to other licenses, 1 freed") {
		t.Fatalf("%+v %v", ch, err)
	}
	if h := e.held(t); h != 1 {
		t.Fatalf("held %d", h)
	}
}
