package sqlstore

import (
	"context"
	"flag"
	"path/filepath"
	"testing"

	"github.com/tallyhq/tally/server/store/pgtest"
)

// The tests that open their store with OpenForTest run on the backend
// -store names; make test runs them on both.
var testBackend = flag.String("store", "sqlite", "backend of the tests that open their store with OpenForTest: sqlite or postgres")

// PG is the PostgreSQL cluster this package's tests share (TestMain).
var PG pgtest.Shared

// OpenForTest opens a fresh, empty store on the backend -store names
// (fsync off on SQLite), closed at the end of the test.
func OpenForTest(t testing.TB, opts Options) *DB {
	t.Helper()
	var db *DB
	var err error
	switch *testBackend {
	case "sqlite":
		opts.NoSync, opts.SkipQuickCheck = true, true
		db, err = Open(filepath.Join(t.TempDir(), "test.db"), opts)
	case "postgres":
		db, err = OpenPostgres(context.Background(), PG.Cluster(t).NewDatabase(t), opts)
	default:
		t.Fatalf("-store %q: sqlite or postgres", *testBackend)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
