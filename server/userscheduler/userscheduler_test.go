package userscheduler_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/server/directory"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/license/licensetest"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
	"github.com/tallyhq/tally/server/userscheduler"
)

// memDir is a directory held in memory.
type memDir struct{ entries chan []store.DirectoryEntry }

func (m *memDir) List(context.Context) ([]store.DirectoryEntry, error) {
	es := <-m.entries
	m.entries <- es
	return es, nil
}

func (m *memDir) set(es []store.DirectoryEntry) { <-m.entries; m.entries <- es }

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The runner frees an expired token's seat once the injected clock passes
// its expiry, and syncs a directory on its interval: a user deleted there
// frees its seat with no task run by hand.
func TestRunnerFreesAtExpiryAndSyncs(t *testing.T) {
	ctx := context.Background()
	iss := licensetest.NewIssuer(t)
	clk := clock.NewManual(time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC))
	db, err := sqlstore.Open(filepath.Join(t.TempDir(), "t.db"), sqlstore.Options{Clock: clk, VerifyLicense: iss.Verify, NoSync: true, SkipQuickCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	li := iss.Import(t, license.Payload{ID: "U-1", Product: "inventory", Seats: 2, Kind: license.KindUser})
	if _, err := db.ImportLicenses(ctx, []store.LicenseImport{li}, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddDirectory(ctx, store.Directory{Name: "corp", URL: "ldap://x", BaseDN: "dc=x", Domain: "CORP", Interval: time.Hour}, "t"); err != nil {
		t.Fatal(err)
	}
	dir := &memDir{entries: make(chan []store.DirectoryEntry, 1)}
	dir.entries <- []store.DirectoryEntry{{GUID: "1", Name: "ann", External: "active"}, {GUID: "2", Name: "ben", External: "active"}}
	r := &userscheduler.Runner{Store: db, Clock: clk, Poll: 5 * time.Millisecond, Source: func(store.Directory) directory.Source { return dir }}
	r.Start()
	defer r.Stop()
	held := func() int {
		u, err := db.UserSeatUsage(ctx)
		if err != nil || len(u) != 1 {
			t.Fatal(u, err)
		}
		return u[0].Held
	}
	waitFor(t, "the first sync", func() bool { us, _ := db.Users(ctx); return len(us) == 2 })
	exp := clk.Now().Add(30 * time.Minute)
	for _, u := range []string{"ann", "ben"} {
		e := &exp
		if u == "ben" {
			e = nil
		}
		if _, err := db.AddCredential(ctx, store.NewCredential{User: u, Product: "inventory", Kind: "token", Expires: e}, "t"); err != nil {
			t.Fatal(err)
		}
	}
	if held() != 2 {
		t.Fatal(held())
	}
	clk.Advance(30 * time.Minute)
	waitFor(t, "ann's token to be cleared at its expiry", func() bool { return held() == 1 })

	dir.set([]store.DirectoryEntry{{GUID: "1", Name: "ann", External: "active"}})
	clk.Advance(30 * time.Minute)
	waitFor(t, "the scheduled sync to free ben's seat", func() bool { return held() == 0 })
	u, err := db.User(ctx, "ben")
	if err != nil || u.Status != "Deleted" || u.External != "deleted" {
		t.Fatalf("ben %+v %v", u, err)
	}
}
