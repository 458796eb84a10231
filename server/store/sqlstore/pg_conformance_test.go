package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
	"github.com/tallyhq/tally/server/store/storetest"
)

var pgSeq atomic.Int64

// pgDatabase makes a fresh database on the development cluster (to be
// replaced by pgtest).
func pgDatabase(t testing.TB) string {
	base := os.Getenv("TALLY_PG_DEV")
	if base == "" {
		t.Skip("TALLY_PG_DEV not set")
	}
	admin, err := sql.Open("pgx", base+"/postgres?host=/tmp/pgdev&user=postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), pgSeq.Add(1))
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	return base + "/" + name + "?host=/tmp/pgdev&user=postgres"
}

func TestConformancePostgres(t *testing.T) {
	storetest.Run(t, func(t testing.TB, cfg storetest.Config) storetest.Backend {
		url := pgDatabase(t)
		opts := sqlstore.Options{Clock: cfg.Clock, VerifyLicense: cfg.VerifyLicense, RecordKey: cfg.RecordKey}
		open := func(t testing.TB) *sqlstore.DB {
			t.Helper()
			db, err := sqlstore.OpenPostgres(context.Background(), url, opts)
			if err != nil {
				t.Fatalf("open %s: %v", url, err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}
		db := open(t)
		return storetest.Backend{
			Store: db,
			Reopen: func(t testing.TB) store.Store {
				if err := db.Close(); err != nil {
					t.Fatalf("close: %v", err)
				}
				db = open(t)
				return db
			},
			SchemaVersion: func(ctx context.Context, s store.Store) (int, error) { return s.(*sqlstore.DB).SchemaVersion(ctx) },
			Latest:        17,
		}
	})
}
