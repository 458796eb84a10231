package storemigrate_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/license/licensetest"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/pgtest"
	"github.com/tallyhq/tally/server/store/sqlstore"
	"github.com/tallyhq/tally/server/store/storemigrate"
)

// benchFleet builds a SQLite store of n computers through the store, as
// agents would fill it: each enrolled, then posting its basic inventory
// with two plug-ins and a software set of 150 packages drawn from 3,000,
// holding a monitor and an inventory seat.
func benchFleet(b *testing.B, n int) (string, sqlstore.Options) {
	b.Helper()
	ctx := context.Background()
	iss := licensetest.NewIssuer(b)
	key, err := identity.NewKey()
	if err != nil {
		b.Fatal(err)
	}
	opts := sqlstore.Options{Clock: clock.NewManual(epoch), VerifyLicense: iss.Verify, RecordKey: key}
	file := filepath.Join(b.TempDir(), "tally.db")
	open := opts
	open.NoSync, open.SkipQuickCheck = true, true
	db, err := sqlstore.Open(file, open)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	sec, err := db.CreateSecret(ctx, "bench", "", nil)
	if err != nil {
		b.Fatal(err)
	}
	var ls []store.LicenseImport
	for _, p := range []string{"monitor", "inventory"} {
		ls = append(ls, iss.Import(b, license.Payload{ID: "L-" + p, Product: p, Seats: uint32(n), IssuedAt: epoch.Add(-time.Hour).Unix()}))
	}
	if _, err := db.ImportLicenses(ctx, ls, "bench"); err != nil {
		b.Fatal(err)
	}
	pool := make([]protocol.Package, 3000)
	for i := range pool {
		pool[i] = protocol.Package{Name: fmt.Sprintf("pkg-%04d", i), Version: fmt.Sprintf("1.%d", i%17), Arch: "amd64", Source: "dpkg", Publisher: "Debian"}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 16))
			for i := w; i < n; i += 16 {
				kp, _ := identity.NewKey()
				pub := kp.Public().(ed25519.PublicKey)
				host := fmt.Sprintf("pc-%06d", i)
				hints := protocol.Hints{InstanceID: fmt.Sprintf("i-%06d", i)}
				id := identity.NodeID(pub)
				if _, err := db.Enroll(ctx, store.EnrollParams{NodeID: id, PublicKey: pub,
					Request: protocol.EnrollRequest{Secret: sec.Value, Hostname: host, Hints: hints, OS: "linux"}}); err != nil {
					errs <- err
					return
				}
				set := make([]protocol.Package, 0, 150)
				for _, j := range rng.Perm(len(pool))[:150] {
					set = append(set, pool[j])
				}
				sw := &protocol.SoftwareInventory{Full: true, Packages: set, Count: uint32(len(set)), Hash: protocol.HashPackages(set).String()}
				if _, err := db.PostInventory(ctx, store.Request{NodeID: id, Seq: 1, Kind: protocol.KindInventory},
					&protocol.InventoryRequest{Basic: protocol.BasicInventory{CollectedAt: epoch.Unix(), Hostname: host, OS: "linux", Platform: "debian",
						Hints: hints, Plugins: []protocol.Plugin{monitor, inventory}}, Software: sw}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return file, opts
}

// BenchmarkMigrate moves a store of $TALLY_BENCH_COMPUTERS computers
// (default 1,000) into a fresh database of a durable PostgreSQL cluster
// per iteration. It reports the rows moved per second, the time creating
// the schema alone takes (schema-ms) and, as a reference read of the same
// file, the time check-db takes on it (check-ms).
func BenchmarkMigrate(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("TALLY_BENCH_COMPUTERS")); err == nil && v > 0 {
		n = v
	}
	built := time.Now()
	file, opts := benchFleet(b, n)
	b.Logf("built %d computers in %s", n, time.Since(built).Round(time.Second))
	if fi, err := os.Stat(file); err == nil {
		b.Logf("tally.db: %.1f MiB", float64(fi.Size())/(1<<20))
	}
	began := time.Now()
	rep, err := sqlstore.CheckFile(context.Background(), file, opts)
	if err != nil || !rep.OK() {
		b.Fatalf("check: %+v, %v", rep, err)
	}
	check := time.Since(began)
	// A durable cluster (fsync, synchronous_commit, full_page_writes on), as
	// in production.
	c := pgtest.Start(b, pgtest.Durable())
	// The schema alone, as Run creates it first: the part of a move that
	// does not grow with the fleet.
	began = time.Now()
	s, err := sqlstore.OpenPostgres(context.Background(), c.NewDatabase(b), opts)
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	schema := time.Since(began)
	b.ResetTimer()
	var rows int64
	for range b.N {
		b.StopTimer()
		url := c.NewDatabase(b)
		b.StartTimer()
		r, err := storemigrate.Run(context.Background(), file, url, opts)
		if err != nil {
			b.Fatal(err)
		}
		rows = r.Rows()
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(rows), "rows")
	b.ReportMetric(float64(check.Milliseconds()), "check-ms")
	b.ReportMetric(float64(schema.Milliseconds()), "schema-ms")
}
