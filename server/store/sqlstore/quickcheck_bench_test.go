package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tallyhq/tally/server/store/sqlstore"
)

// BenchmarkOpenQuickCheck measures what PRAGMA quick_check adds to a
// server's start with 10,000 computers, each with a seat row and a stored
// software set of the size 2,000 packages take (14 KB), against the same
// open without it. The file was just written, so both find it in the
// operating system's page cache (a cold start reads it from disk once
// either way).
func BenchmarkOpenQuickCheck(b *testing.B) {
	const n = 10_000
	path := filepath.Join(b.TempDir(), "big.db")
	db, err := sqlstore.Open(path, sqlstore.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite3", "file:"+path+"?_foreign_keys=on")
	if err != nil {
		b.Fatal(err)
	}
	tx, err := raw.Begin()
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UnixMilli()
	if _, err := tx.Exec(`INSERT INTO licenses (id, product, kind, duration, seats, held, issued_at, issuer, imported_at, file)
		VALUES ('L-monitor', 'monitor', 'node', 'perpetual', 10000000, ?, ?, 'bench', ?, x'00')`, n, now, now); err != nil {
		b.Fatal(err)
	}
	blob := make([]byte, 7<<10)
	for i := 1; i <= n; i++ {
		if _, err := tx.Exec(`INSERT INTO computers (id, hostname, os, status, first_seen, last_seen, flags, plugins) VALUES (?, ?, 'linux', 'Active', ?, ?, '', '[{"name":"monitor","version":"2.0"}]')`,
			i, fmt.Sprintf("pc-%06d", i), now, now); err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO seats (computer_id, product, license_id, since, reason) VALUES (?, 'monitor', 'L-monitor', ?, 'bench')`, i, now); err != nil {
			b.Fatal(err)
		}
		rand.Read(blob)
		if _, err := tx.Exec(`INSERT INTO computer_software_sets (computer_id, ids, dates) VALUES (?, ?, ?)`, i, blob, blob); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	raw.Close()
	if st, err := os.Stat(path); err == nil {
		b.Logf("database of %d MB", st.Size()>>20)
	}
	for _, bc := range []struct {
		name string
		skip bool
	}{{"without", true}, {"with", false}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				db, err := sqlstore.Open(path, sqlstore.Options{SkipQuickCheck: bc.skip})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := db.SchemaVersion(context.Background()); err != nil {
					b.Fatal(err)
				}
				db.Close()
			}
		})
	}
}
