package sqlstore_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
	"github.com/tallyhq/tally/server/store/storetest"
)

// The SQLite backend passes the store conformance suite.
func TestConformance(t *testing.T) {
	latest := latestMigration(t)
	storetest.Run(t, func(t testing.TB, cfg storetest.Config) storetest.Backend {
		file := filepath.Join(t.TempDir(), "tally.db")
		// fsync is off: the suite checks logic, not durability, and runs
		// the writer's group commit all the same.
		opts := sqlstore.Options{Clock: cfg.Clock, VerifyLicense: cfg.VerifyLicense, RecordKey: cfg.RecordKey, NoSync: true, SkipQuickCheck: true}
		return reopenable(t, func() (*sqlstore.DB, error) { return sqlstore.Open(file, opts) }, latest)
	})
}

// latestMigration is the highest number among the migration files.
func latestMigration(t *testing.T) int {
	entries, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	latest := 0
	for _, e := range entries {
		v, _, _ := strings.Cut(e.Name(), "_")
		if n, err := strconv.Atoi(v); err == nil && strings.HasSuffix(e.Name(), ".sql") {
			latest = max(latest, n)
		}
	}
	if latest == 0 {
		t.Fatal("no migration files")
	}
	return latest
}

// reopenable is the suite's backend over a store that open opens (again
// at each Reopen), with the schema version latest.
func reopenable(t testing.TB, open func() (*sqlstore.DB, error), latest int) storetest.Backend {
	t.Helper()
	openT := func(t testing.TB) *sqlstore.DB {
		t.Helper()
		db, err := open()
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	db := openT(t)
	return storetest.Backend{
		Store: db,
		Reopen: func(t testing.TB) store.Store {
			if err := db.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			db = openT(t)
			return db
		},
		SchemaVersion: func(ctx context.Context, s store.Store) (int, error) { return s.(*sqlstore.DB).SchemaVersion(ctx) },
		Latest:        latest,
	}
}
