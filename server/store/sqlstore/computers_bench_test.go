package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

// bigFleet makes a store of n computers written straight into its tables
// (enrolling 100,000 through the store would take most of a minute): one
// in 100 Retired, one in 10 holding a monitor seat, one in 5 with the
// patch plug-in, one in 200 flagged agent-uninstalled, one in 100 not
// seen for 60 days.
func bigFleet(tb testing.TB, n int) (*sqlstore.DB, time.Time) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "big.db")
	db, err := sqlstore.Open(path, sqlstore.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite3", "file:"+path+"?_foreign_keys=on")
	if err != nil {
		tb.Fatal(err)
	}
	defer raw.Close()
	now := time.Now()
	tx, err := raw.Begin()
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO licenses (id, product, kind, duration, seats, held, issued_at, issuer, imported_at, file)
		VALUES ('L-monitor', 'monitor', 'node', 'perpetual', 10000000, ?, ?, 'bench', ?, x'00')`, n/10, now.UnixMilli(), now.UnixMilli()); err != nil {
		tb.Fatal(err)
	}
	ins, err := tx.Prepare(`INSERT INTO computers (id, hostname, os, status, first_seen, last_seen, flags, plugins) VALUES (?, ?, 'linux', ?, ?, ?, ?, ?)`)
	if err != nil {
		tb.Fatal(err)
	}
	seat, err := tx.Prepare(`INSERT INTO seats (computer_id, product, license_id, since, reason) VALUES (?, 'monitor', 'L-monitor', ?, 'bench')`)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		status, flags, plugins, seen := "Active", "", `[{"name":"monitor","version":"2.0"}]`, now
		if i%100 == 0 {
			status = "Retired"
		}
		if i%200 == 7 {
			flags = store.FlagAgentUninstalled
		}
		if i%5 == 0 {
			plugins = `[{"name":"monitor","version":"2.0"},{"name":"patch","version":"7.0"}]`
		}
		if i%100 == 13 {
			seen = now.AddDate(0, 0, -60)
		}
		if _, err := ins.Exec(i, fmt.Sprintf("pc-%06d", i), status, seen.UnixMilli(), seen.UnixMilli(), flags, plugins); err != nil {
			tb.Fatal(err)
		}
		if i%10 == 0 {
			if _, err := seat.Exec(i, now.UnixMilli()); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	raw.Close()
	if db, err = sqlstore.Open(path, sqlstore.Options{NoSync: true}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db, now
}

// BenchmarkListComputers measures one page (500) of a filtered computer
// list with 100,000 computers in the store, for each filter.
func BenchmarkListComputers(b *testing.B) {
	const n = 100_000
	db, now := bigFleet(b, n)
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		f    store.ComputerFilter
		want int
	}{
		{"first-page", store.ComputerFilter{}, 500},
		{"last-page", store.ComputerFilter{After: n - 300}, 300},
		{"status", store.ComputerFilter{Status: "Retired"}, 500},
		{"status-last-page", store.ComputerFilter{Status: "Retired", After: n - 30_000}, 300},
		{"product", store.ComputerFilter{Product: "monitor"}, 500},
		{"plugin", store.ComputerFilter{Plugin: "patch"}, 500},
		{"hostname-substring", store.ComputerFilter{Hostname: "9999"}, 19},
		{"hostname-glob", store.ComputerFilter{Hostname: "PC-00012*"}, 10},
		{"not-seen-since", store.ComputerFilter{NotSeenSince: now.AddDate(0, 0, -30)}, 500},
		{"flag", store.ComputerFilter{Flag: store.FlagAgentUninstalled}, 500},
		{"status-product-plugin", store.ComputerFilter{Status: "Retired", Product: "monitor", Plugin: "patch"}, 500},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				p, err := db.ListComputers(ctx, bc.f)
				if err != nil {
					b.Fatal(err)
				}
				if len(p.Computers) != bc.want {
					b.Fatalf("%d computers, want %d", len(p.Computers), bc.want)
				}
			}
		})
	}
}
