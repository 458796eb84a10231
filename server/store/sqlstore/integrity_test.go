package sqlstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

// zeroPage overwrites page n (from 1) of a closed database file with zeros,
// as a failed disk sector would.
func zeroPage(t *testing.T, file string, n int64) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const pageSize = 4096
	if _, err := f.WriteAt(make([]byte, pageSize), (n-1)*pageSize); err != nil {
		t.Fatal(err)
	}
}

// A database with a zeroed page is refused at open with a message that
// says how to restore it, and check-db's check finds it; a sound one
// passes both.
func TestDamagedDatabaseRefusedAtOpen(t *testing.T) {
	s := newSigner(t)
	file := filepath.Join(t.TempDir(), "tally.db")
	f := openSeatFleet(t, file, s)
	if _, err := f.db.ImportLicenses(context.Background(), []store.LicenseImport{s.issue(t, license.Payload{ID: "L-m", Product: "monitor", Seats: 50, IssuedAt: 1})}, "test"); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		f.post(t, f.enroll(t))
	}
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := sqlstore.CheckFile(context.Background(), file, sqlstore.Options{VerifyLicense: s.verify})
	if err != nil || !rep.OK() {
		t.Fatalf("a sound database: %+v %v", rep, err)
	}
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	pages := st.Size() / 4096
	if pages < 8 {
		t.Fatalf("only %d pages", pages)
	}
	zeroPage(t, file, pages-2) // a page of the newest rows

	_, err = sqlstore.Open(file, sqlstore.Options{NoSync: true})
	if !errors.Is(err, store.ErrDamaged) {
		t.Fatalf("open a damaged database: %v", err)
	}
	for _, want := range []string{"integrity check", "from a backup", "sqlite3 " + file + " .recover", "check-db", "server.key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the message lacks %q:\n%v", want, err)
		}
	}
	rep, err = sqlstore.CheckFile(context.Background(), file, sqlstore.Options{})
	if err != nil || len(rep.Integrity) == 0 {
		t.Fatalf("check-db's check of a damaged database: %+v %v", rep, err)
	}
}

// A seat invariant broken on disk (a counter flipped) is found by the
// read-only check, which changes nothing.
func TestCheckFileFindsSeatDrift(t *testing.T) {
	s := newSigner(t)
	file := filepath.Join(t.TempDir(), "tally.db")
	f := openSeatFleet(t, file, s)
	if _, err := f.db.ImportLicenses(context.Background(), []store.LicenseImport{s.issue(t, license.Payload{ID: "L-m", Product: "monitor", Seats: 3, IssuedAt: 1})}, "test"); err != nil {
		t.Fatal(err)
	}
	f.post(t, f.enroll(t))
	f.db.Close()
	editRow(t, file, `UPDATE licenses SET held = 0, seats = 9`)
	rep, err := sqlstore.CheckFile(context.Background(), file, sqlstore.Options{VerifyLicense: s.verify})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Integrity) > 0 || len(rep.Invariants) != 2 {
		t.Fatalf("findings: %+v", rep)
	}
	if n := countRows(t, file, `SELECT held FROM licenses`); n != 0 {
		t.Fatal("the check changed the database")
	}
}
