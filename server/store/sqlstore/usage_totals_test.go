package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/engine"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

// The usage of every product, read in a few grouped queries, equals each
// product's usage read on its own; UsageTotals is the same without the
// holders. The store holds discards and waiting computers of each pool,
// allocations consumed and not, seats, bindings and leases.
func TestUsageOfAllProductsEqualsEachProducts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "u.db")
	db, err := sqlstore.Open(path, sqlstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ms := now.UnixMilli()
	for _, q := range []string{
		`INSERT INTO application_products (name, title, kinds, created_at, actor) VALUES ('app-a', 'A', 'node-locked,concurrent', 0, 't'), ('app-b', 'B', 'concurrent', 0, 't')`,
		fmt.Sprintf(`INSERT INTO licenses (id, product, kind, duration, seats, issued_at, issuer, imported_at, file) VALUES
			('L-m1', 'monitor', 'node', 'perpetual', 5, %[1]d, 'i', %[1]d, x'00'), ('L-m2', 'monitor', 'node', 'perpetual', 3, %[1]d, 'i', %[1]d, x'00'),
			('L-a1', 'app-a', 'node-locked', 'perpetual', 4, %[1]d, 'i', %[1]d, x'00'), ('L-a2', 'app-a', 'concurrent', 'perpetual', 2, %[1]d, 'i', %[1]d, x'00'),
			('L-b1', 'app-b', 'concurrent', 'perpetual', 1, %[1]d, 'i', %[1]d, x'00')`, ms),
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for i := 1; i <= 12; i++ {
		status := "Active"
		if i == 12 {
			status = "Retired"
		}
		if _, err := raw.Exec(`INSERT INTO computers (id, hostname, status, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)`, i, fmt.Sprintf("pc-%d", i), status, ms, ms); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO seats (computer_id, product, license_id, since, reason) VALUES (1, 'monitor', 'L-m1', 0, 'r'), (2, 'monitor', 'L-m1', 0, 'r'), (3, 'monitor', 'L-m2', 0, 'r')`,
		`INSERT INTO allocations (license_id, computer_id, product, at) VALUES ('L-m1', 1, 'monitor', 0), ('L-m1', 4, 'monitor', 0), ('L-m2', 5, 'monitor', 0)`,
		`INSERT INTO activation_ids (id, product, license_id, quantity, created_at) VALUES ('A-1', 'app-a', 'L-a1', 2, 0)`,
		`INSERT INTO activations (activation_id, computer_id, node_id, machine, activated_at, record) VALUES ('A-1', 6, 'n6', 'm6', 0, x'00')`,
		fmt.Sprintf(`INSERT INTO leases (product, computer_id, license_id, node_id, granted_at, expires_at, ttl) VALUES ('app-a', 7, 'L-a2', 'n7', 0, %d, 60)`, ms+3_600_000),
		fmt.Sprintf(`INSERT INTO discards (computer_id, product, pool, reason, count, first_at, last_at) VALUES
			(8, 'monitor', 'node', 'discarded:no-seat', 3, 0, %[1]d), (9, 'monitor', 'node', 'denied:no-seat', 1, 0, %[1]d), (1, 'monitor', 'node', 'denied:no-seat', 2, 0, %[1]d),
			(12, 'monitor', 'node', 'denied:no-seat', 1, 0, %[1]d), (10, 'app-a', 'node-locked', 'denied:no-seat', 1, 0, %[1]d), (6, 'app-a', 'node-locked', 'denied:no-seat', 1, 0, %[1]d),
			(11, 'app-a', 'concurrent', 'denied:no-seat', 2, 0, %[1]d), (7, 'app-a', 'concurrent', 'denied:no-seat', 1, 0, %[1]d), (10, 'app-b', 'concurrent', 'denied:no-seat', 4, 0, %[1]d),
			(9, 'inventory', 'node', 'discarded:no-license', 5, 0, %[1]d)`, ms),
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()
	cat, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	if db, err = sqlstore.Open(path, sqlstore.Options{NoSync: true, Engine: engine.New(cat)}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	all, err := db.Usage(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	totals, err := db.UsageTotals(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(totals) {
		t.Fatalf("%d pools in Usage, %d in UsageTotals", len(all), len(totals))
	}
	i, seen := 0, map[string]bool{}
	busy := 0
	for _, u := range all {
		if seen[u.Product] {
			continue
		}
		seen[u.Product] = true
		one, err := db.Usage(ctx, u.Product)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range one {
			if !reflect.DeepEqual(all[i], o) {
				t.Errorf("%s %s: all products\n%+v\none product\n%+v", o.Product, o.Kind, all[i], o)
			}
			o.Holders = totals[i].Holders
			if !reflect.DeepEqual(totals[i], o) || len(totals[i].Holders) != 0 {
				t.Errorf("%s %s: totals\n%+v\nusage\n%+v", o.Product, o.Kind, totals[i], o)
			}
			if o.Waiting > 0 || o.Reserved > 0 || len(o.Discards) > 0 {
				busy++
			}
			i++
		}
	}
	if busy < 4 {
		t.Fatalf("only %d pools with discards, waiting or reserved seats: the test checks too little", busy)
	}
}
