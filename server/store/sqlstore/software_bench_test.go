package sqlstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

// The software benchmarks post inventories of 2,000 packages drawn from a
// pool of 6,000 (the first 1,600 on every machine, 400 of the rest at
// random), as a fleet with a shared base system does, through the store
// with durable commits, 64 posts at a time.
const (
	swPoolSize = 6000
	swCommon   = 1600
	swPerPC    = 2000
	swFleet    = 128
	swWorkers  = 64
)

func swPool() []protocol.Package {
	r := rand.New(rand.NewPCG(1, 2))
	pool := make([]protocol.Package, swPoolSize)
	for i := range pool {
		pool[i] = protocol.Package{Source: "dpkg", Name: fmt.Sprintf("lib%s-%d", []string{"ssl", "xml", "gtk", "qt", "perl"}[i%5], i),
			Version: fmt.Sprintf("%d.%d.%d-%d", r.IntN(12), r.IntN(30), r.IntN(20), 1+r.IntN(5)), Arch: "amd64",
			InstallDate: 1_700_000_000 + int64(r.IntN(40_000_000))}
	}
	return pool
}

// swMachine is one computer's software as its agent tracks it: the pool
// indices installed, and the generation the server acknowledged.
type swMachine struct {
	node *benchNode
	has  map[int]bool
	list []int
	hash protocol.SetHash
	gen  uint64
	rng  *rand.Rand
	// queued are the posts prepared before the timer, sent in order.
	queued []*protocol.SoftwareInventory
}

func (m *swMachine) full(pool []protocol.Package) *protocol.SoftwareInventory {
	ps := make([]protocol.Package, len(m.list))
	for i, p := range m.list {
		ps[i] = pool[p]
	}
	return &protocol.SoftwareInventory{Full: true, Packages: ps, Count: uint32(len(ps)), Hash: m.hash.String()}
}

// delta removes two installed packages and installs two others.
func (m *swMachine) delta(pool []protocol.Package) *protocol.SoftwareInventory {
	sw := &protocol.SoftwareInventory{Base: m.gen}
	for range 2 {
		j := m.rng.IntN(len(m.list))
		p := m.list[j]
		m.list[j] = m.list[len(m.list)-1]
		m.list = m.list[:len(m.list)-1]
		delete(m.has, p)
		m.hash.Remove(protocol.ItemHash(&pool[p]))
		sw.Removed = append(sw.Removed, pool[p])
	}
	for len(sw.Added) < 2 {
		p := m.rng.IntN(len(pool))
		if m.has[p] {
			continue
		}
		m.has[p] = true
		m.list = append(m.list, p)
		m.hash.Add(protocol.ItemHash(&pool[p]))
		sw.Added = append(sw.Added, pool[p])
	}
	sw.Count, sw.Hash = uint32(len(m.list)), m.hash.String()
	return sw
}

// postSoftware posts sw with an unchanged basic inventory and checks that
// the store kept it.
func postSoftware(db *sqlstore.DB, m *swMachine, basicHash string, sw *protocol.SoftwareInventory) error {
	req := protocol.InventoryRequest{BasicHash: basicHash, Software: sw}
	out, err := db.PostInventory(context.Background(), store.Request{NodeID: m.node.id, Seq: m.node.seq.Add(1), Kind: protocol.KindInventory}, &req)
	if err != nil {
		return err
	}
	var resp protocol.InventoryResponse
	if err := protocol.Unmarshal(out.Body, &resp); err != nil {
		return err
	}
	if resp.Software == nil || !resp.Software.Stored || resp.Software.SendFull {
		return fmt.Errorf("software not stored: %+v", resp.Software)
	}
	m.gen = resp.Software.Generation
	return nil
}

// swFleetWithSets opens a durable store with swFleet computers that hold
// seats and have each posted one full inventory.
func swFleetWithSets(b *testing.B) (*sqlstore.DB, []*swMachine, []protocol.Package, string) {
	return swFleetOf(b, swFleet, swCommon, swPerPC)
}

// swFleetOf is swFleetWithSets with size computers (a multiple of 64)
// holding perPC packages each, the first common of the pool on all.
func swFleetOf(b *testing.B, size, common, perPC int) (*sqlstore.DB, []*swMachine, []protocol.Package, string) {
	b.Helper()
	db, err := sqlstore.Open(filepath.Join(b.TempDir(), "b.db"), sqlstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	pool := swPool()
	nodes := fleet(b, db, size)
	machines := make([]*swMachine, len(nodes))
	var basicHash string
	for i, n := range nodes {
		basic := protocol.BasicInventory{Hostname: "h", OS: "linux", Hints: n.hints, Plugins: benchPlugins}
		basicHash = basic.Hash()
		req := protocol.InventoryRequest{Basic: basic}
		if _, err := db.PostInventory(context.Background(), store.Request{NodeID: n.id, Seq: n.seq.Add(1), Kind: protocol.KindInventory}, &req); err != nil {
			b.Fatal(err)
		}
		m := &swMachine{node: n, has: map[int]bool{}, rng: rand.New(rand.NewPCG(uint64(i), 7))}
		for p := range common {
			m.has[p] = true
		}
		for len(m.has) < perPC {
			m.has[common+m.rng.IntN(swPoolSize-common)] = true
		}
		for p := range m.has {
			m.list = append(m.list, p)
			m.hash.Add(protocol.ItemHash(&pool[p]))
		}
		machines[i] = m
	}
	runSW(b, machines, len(machines), func(m *swMachine) error { return postSoftware(db, m, basicHash, m.full(pool)) })
	return db, machines, pool, basicHash
}

// runSW runs n posts, 64 at a time: post k goes to machine k mod
// len(machines), made by worker k mod 64, so that a machine's posts are
// never concurrent and come in order (len(machines) is a multiple of 64).
func runSW(b *testing.B, machines []*swMachine, n int, post func(*swMachine) error) {
	b.Helper()
	var wg sync.WaitGroup
	for w := range swWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := w; k < n; k += swWorkers {
				if err := post(machines[k%len(machines)]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkSoftwareFullPost measures full posts of 2,000 packages that
// replace a computer's stored set. Run with -benchtime=Nx: the fleet is
// built before each run.
func BenchmarkSoftwareFullPost(b *testing.B) {
	db, machines, pool, basicHash := swFleetWithSets(b)
	full := make(map[*swMachine]*protocol.SoftwareInventory, len(machines))
	for _, m := range machines {
		full[m] = m.full(pool)
	}
	b.ResetTimer()
	runSW(b, machines, b.N, func(m *swMachine) error { return postSoftware(db, m, basicHash, full[m]) })
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "posts/s")
}

// BenchmarkSoftwareDeltaPost measures delta posts (two packages removed,
// two added) on computers holding 2,000.
func BenchmarkSoftwareDeltaPost(b *testing.B) {
	db, machines, pool, basicHash := swFleetWithSets(b)
	// Deltas are computed before the timer (hashing is the agent's work).
	for k := range b.N {
		m := machines[k%len(machines)]
		m.queued = append(m.queued, m.delta(pool))
	}
	b.ResetTimer()
	cpu := processCPU()
	runSW(b, machines, b.N, func(m *swMachine) error {
		sw := m.queued[0]
		m.queued = m.queued[1:]
		sw.Base = m.gen
		return postSoftware(db, m, basicHash, sw)
	})
	cpu = processCPU() - cpu
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "posts/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkSoftwareRead measures reading one computer's 2,000 packages.
func BenchmarkSoftwareRead(b *testing.B) {
	db, machines, _, _ := swFleetWithSets(b)
	b.ResetTimer()
	for i := range b.N {
		ps, err := db.Software(context.Background(), machines[i%len(machines)].node.computer)
		if err != nil {
			b.Fatal(err)
		}
		if len(ps) != swPerPC {
			b.Fatalf("read %d packages, want %d", len(ps), swPerPC)
		}
	}
}

// BenchmarkUnchangedPost measures the most common post of a fleet: an
// agent whose software and basic inventory did not change posts an empty
// delta (base, count and hash as before) and the basic hash alone. Its
// sets are small, as their size does not matter here, and its fleet of
// 1,024 computers is the size of the load tests' (and 10,240, where the
// pages posts touch no longer fit SQLite's default page cache). Run it
// with -benchtime=Nx, N in the tens of thousands, so that each computer's
// records of applied requests fill up as they do between two prunings.
func BenchmarkUnchangedPost(b *testing.B) {
	for _, fleet := range []int{1024, 10240} {
		b.Run(fmt.Sprintf("fleet=%d", fleet), func(b *testing.B) { benchmarkUnchangedPost(b, fleet) })
	}
}

func benchmarkUnchangedPost(b *testing.B, fleet int) {
	db, machines, _, basicHash := swFleetOf(b, fleet, 50, 100)
	unchanged := make(map[*swMachine]*protocol.SoftwareInventory, len(machines))
	for _, m := range machines {
		unchanged[m] = &protocol.SoftwareInventory{Count: uint32(len(m.list)), Hash: m.hash.String()}
	}
	b.ResetTimer()
	cpu := processCPU()
	runSW(b, machines, b.N, func(m *swMachine) error {
		sw := *unchanged[m]
		sw.Base = m.gen
		return postSoftware(db, m, basicHash, &sw)
	})
	cpu = processCPU() - cpu
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "posts/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}
