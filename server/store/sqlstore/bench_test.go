package sqlstore_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

type benchNode struct {
	id       string
	computer int64
	hints    protocol.Hints
	seq      atomic.Uint64
}

// fleet enrolls n computers quickly (concurrently, so group commit batches
// them) and imports big licenses for the five 7.x products.
func fleet(tb testing.TB, db *sqlstore.DB, n int) []*benchNode {
	tb.Helper()
	ctx := context.Background()
	s, err := db.CreateSecret(ctx, "bench", "", nil)
	if err != nil {
		tb.Fatal(err)
	}
	nodes := make([]*benchNode, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range nodes {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			key, _ := identity.NewKey()
			pub := key.Public().(ed25519.PublicKey)
			hints := protocol.Hints{InstanceID: fmt.Sprintf("inst-%d", i), MachineID: fmt.Sprintf("m-%d", i)}
			resp, err := db.Enroll(ctx, store.EnrollParams{NodeID: identity.NodeID(pub), PublicKey: pub, Request: protocol.EnrollRequest{
				Secret: s.Value, Hostname: fmt.Sprintf("pc-%05d", i), Hints: hints}})
			if err != nil {
				tb.Error(err)
				return
			}
			nodes[i] = &benchNode{id: identity.NodeID(pub), computer: resp.ComputerID, hints: hints}
		}(i)
	}
	wg.Wait()
	var ls []store.LicenseImport
	for _, p := range []string{"monitor", "inventory", "patch", "deployment", "software-management"} {
		ls = append(ls, store.LicenseImport{License: store.License{ID: "L-" + p, Product: p, Kind: "node", Duration: "perpetual",
			Seats: 10_000_000, IssuedAt: time.Now(), Issuer: "bench"}, File: []byte(p)})
	}
	if _, err := db.ImportLicenses(ctx, ls, "bench"); err != nil {
		tb.Fatal(err)
	}
	return nodes
}

var benchPlugins = []protocol.Plugin{
	{Name: "monitor", Version: "2.0"}, {Name: "inventory", Version: "7.1"}, {Name: "patch", Version: "7.0"},
	{Name: "deployment", Version: "7.1"}, {Name: "software-management", Version: "7.5"},
}

func post(db *sqlstore.DB, n *benchNode, plugins []protocol.Plugin) error {
	req := protocol.InventoryRequest{Basic: protocol.BasicInventory{Hostname: "h", OS: "linux", Hints: n.hints, Plugins: plugins}}
	_, err := db.PostInventory(context.Background(), store.Request{NodeID: n.id, Seq: n.seq.Add(1), Kind: protocol.KindInventory}, &req)
	return err
}

// BenchmarkQualifyingPosts measures first qualifying posts (each consumes
// a seat) through the store with durable commits (synchronous=FULL), 64
// at a time as a busy server would see them.
func BenchmarkQualifyingPosts(b *testing.B) {
	db, err := sqlstore.Open(filepath.Join(b.TempDir(), "b.db"), sqlstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	nodes := fleet(b, db, b.N)
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(nodes)) {
					return
				}
				if err := post(db, nodes[i], benchPlugins[:1]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	u, _ := db.Usage(context.Background(), "monitor")
	if u[0].Consumed != b.N {
		b.Fatalf("consumed %d of %d", u[0].Consumed, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "posts/s")
}

// BenchmarkRetire measures retiring a computer that holds five seats, in a
// store of 10,000 computers each holding five seats, with durable commits.
func BenchmarkRetire(b *testing.B) {
	path := filepath.Join(b.TempDir(), "b.db")
	// Build the fleet without fsync, then reopen with synchronous=FULL for
	// the measurement.
	db, err := sqlstore.Open(path, sqlstore.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	const size = 10_000
	nodes := fleet(b, db, size)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, n := range nodes {
		wg.Add(1)
		sem <- struct{}{}
		go func(n *benchNode) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := post(db, n, benchPlugins); err != nil {
				b.Error(err)
			}
			// Deployment 7.x consumes on check-in with its plug-in installed.
			req := protocol.PluginRequest{Plugin: protocol.Plugin{Name: "deployment", Version: "7.1"}}
			if _, err := db.PluginRequest(context.Background(), store.Request{NodeID: n.id, Seq: n.seq.Add(1), Kind: protocol.KindCheckIn}, &req); err != nil {
				b.Error(err)
			}
		}(n)
	}
	wg.Wait()
	db.Close()
	db, err = sqlstore.Open(path, sqlstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if b.N > size {
		b.Fatalf("run with -benchtime=Nx, N at most %d: each iteration retires another computer of the fleet", size)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ch, err := db.SetStatus(context.Background(), nodes[i].computer, "Retired", "bench")
		if err != nil {
			b.Fatal(err)
		}
		if len(ch.Seats) != 5 {
			b.Fatalf("retire freed %d seats, want 5", len(ch.Seats))
		}
	}
}
