package sqlstore_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/tallyhq/tally/server/store/sqlstore"
	"github.com/tallyhq/tally/server/store/storetest"
)

func TestMain(m *testing.M) { sqlstore.PG.Main(m) }

// The PostgreSQL backend passes the store conformance suite, each part on
// a database of its own in one real cluster.
func TestConformancePostgres(t *testing.T) {
	storetest.Run(t, func(t testing.TB, cfg storetest.Config) storetest.Backend {
		url := sqlstore.PG.Cluster(t).NewDatabase(t)
		opts := sqlstore.Options{Clock: cfg.Clock, VerifyLicense: cfg.VerifyLicense, RecordKey: cfg.RecordKey}
		return reopenable(t, func() (*sqlstore.DB, error) { return sqlstore.OpenPostgres(context.Background(), url, opts) }, latestPGMigration(t))
	})
}

// latestPGMigration is the highest number among the PostgreSQL migrations.
func latestPGMigration(t testing.TB) int {
	entries, err := os.ReadDir("pgmigrations")
	if err != nil {
		t.Fatal(err)
	}
	latest := 0
	for _, e := range entries {
		v, _, _ := strings.Cut(e.Name(), "_")
		if n, err := strconv.Atoi(v); err == nil {
			latest = max(latest, n)
		}
	}
	return latest
}

// Every SQLite migration from the PostgreSQL baseline on has a PostgreSQL
// migration of the same number, so both schemas stay the same and
// migrate copies table by table.
func TestMigrationsMatchAcrossBackends(t *testing.T) {
	pgNums := map[int]bool{}
	entries, err := os.ReadDir("pgmigrations")
	if err != nil {
		t.Fatal(err)
	}
	base := 0
	for _, e := range entries {
		v, _, _ := strings.Cut(e.Name(), "_")
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("pgmigrations/%s: name must start with a number", e.Name())
		}
		pgNums[n] = true
		if base == 0 || n < base {
			base = n
		}
	}
	if latest := latestMigration(t); latestPGMigration(t) != latest {
		t.Errorf("latest PostgreSQL migration %d, latest SQLite migration %d: add pgmigrations/%04d_….sql", latestPGMigration(t), latest, latest)
	}
	sqliteEntries, _ := os.ReadDir("migrations")
	for _, e := range sqliteEntries {
		v, _, _ := strings.Cut(e.Name(), "_")
		if n, err := strconv.Atoi(v); err == nil && n > base && !pgNums[n] {
			t.Errorf("migrations/%s has no PostgreSQL counterpart pgmigrations/%04d_….sql", e.Name(), n)
		}
	}
}
