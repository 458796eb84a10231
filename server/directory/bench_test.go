package directory_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/server/directory"
	"github.com/tallyhq/tally/server/directory/slapdtest"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/license/licensetest"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

// BenchmarkSync50k compares listing 50,000 users from slapd (the baseline:
// what the directory costs) with a whole sync (listing and merge), a
// re-sync with nothing changed, and the users-use-license report with
// 10,000 of them holding a token. See docs/PERFORMANCE.md.
func BenchmarkSync50k(b *testing.B) {
	const n = 50_000
	var us []slapdtest.User
	for i := range n {
		us = append(us, slapdtest.User{UID: fmt.Sprintf("u%05d", i), OU: fmt.Sprintf("ou%d", i%20), Groups: []string{fmt.Sprintf("g%d", i%50)}})
	}
	start := time.Now()
	srv := slapdtest.Start(b, us)
	b.Logf("slapadd and start of %d users: %s", n, time.Since(start).Round(time.Millisecond))
	ctx := context.Background()
	iss := licensetest.NewIssuer(b)
	db, err := sqlstore.Open(filepath.Join(b.TempDir(), "b.db"), sqlstore.Options{Clock: clock.System{}, VerifyLicense: iss.Verify, SkipQuickCheck: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	li := iss.Import(b, license.Payload{ID: "U-1", Product: "inventory", Seats: n, Kind: license.KindUser})
	if _, err := db.ImportLicenses(ctx, []store.LicenseImport{li}, "b"); err != nil {
		b.Fatal(err)
	}
	d := store.Directory{Name: "corp", URL: srv.URL, BaseDN: slapdtest.Base, BindDN: slapdtest.BindDN, PasswordFile: srv.PasswordFile, Domain: "EX"}
	if err := directory.Check(&d); err != nil {
		b.Fatal(err)
	}
	if _, err := db.AddDirectory(ctx, d, "b"); err != nil {
		b.Fatal(err)
	}
	src := &directory.LDAP{Dir: d, Timeout: time.Minute}
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		es, err := src.List(ctx)
		if err != nil || len(es) != n {
			b.Fatal(len(es), err)
		}
		list := time.Since(t0)
		t0 = time.Now()
		if _, err := db.SyncDirectory(ctx, "corp", es, "b"); err != nil {
			b.Fatal(err)
		}
		merge := time.Since(t0)
		t0 = time.Now()
		if _, err := directory.Sync(ctx, db, "corp", src, "b"); err != nil {
			b.Fatal(err)
		}
		resync := time.Since(t0)
		b.Logf("list %s, first merge %s, re-sync (list + merge, nothing changed) %s", list.Round(time.Millisecond), merge.Round(time.Millisecond), resync.Round(time.Millisecond))
	}
	b.StopTimer()
	for i := range 10_000 {
		if _, err := db.AddCredential(ctx, store.NewCredential{User: fmt.Sprintf(`EX\u%05d`, i*5), Product: "inventory", Kind: "token"}, "b"); err != nil {
			b.Fatal(err)
		}
	}
	for range 3 {
		t0 := time.Now()
		rows, err := db.UsersUseLicense(ctx, "inventory")
		if err != nil || len(rows) != n {
			b.Fatal(len(rows), err)
		}
		b.Logf("users-use-license report, %d users, 10,000 holding a token: %s", len(rows), time.Since(t0).Round(time.Millisecond))
	}
}
