package sqlstore

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/store"
)

// The post cache must never change an answer or what is stored: the same
// operations, in the same batches (jobs sharing one transaction), give the
// same answers and leave the same database with the cache as without it.
// Batches mix posts of the same node and computer (repeats, numbers out of
// order, software deltas) with the administration that changes what the
// cache holds (statuses, allocations, licenses, deletions, uninstalls).
func TestPostCacheChangesNoAnswer(t *testing.T) {
	dir := t.TempDir()
	run := 0
	hits := 0
	rapid.Check(t, func(t *rapid.T) {
		run++
		twin := newTwin(t, filepath.Join(dir, fmt.Sprintf("r%d", run)))
		defer twin.close()
		for i := 0; i < 2; i++ {
			twin.enroll(t)
		}
		batches := rapid.IntRange(1, 12).Draw(t, "batches")
		for b := 0; b < batches; b++ {
			size := rapid.IntRange(1, 8).Draw(t, "batch size")
			var ops []twinOp
			for i := 0; i < size; i++ {
				if op := twin.drawOp(t); op.name != "" {
					ops = append(ops, op)
				}
			}
			twin.run(t, ops)
		}
		twin.compareState(t)
		hits += twin.cached.hot.hits
	})
	if hits == 0 {
		t.Fatal("no post was answered from the cache: the test does not exercise it")
	}
	t.Logf("posts answered from the cache over all runs: %d", hits)
}

type twinNode struct {
	id      string
	key     ed25519.PublicKey
	seq     uint64
	skipped []uint64 // numbers never sent (to send late)
	basic   protocol.BasicInventory
	pkgs    []protocol.Package
	gen     uint64
	last    func(db *DB, r store.Request) (store.Outcome, error)
	lastReq store.Request
}

type twin struct {
	mu            sync.Mutex // guards the nodes' gen, set by ops running side by side
	cached, plain *DB
	clocks        [2]*clock.Manual
	nodes         []*twinNode
	computers     []int64
	licenses      []string
	minted        int
	secret        string
}

type twinOp struct {
	name string
	do   func(db *DB) string
}

func newTwin(t *rapid.T, dir string) *twin {
	tw := &twin{}
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i, off := range []bool{false, true} {
		tw.clocks[i] = clock.NewManual(start)
		db, err := Open(dir+fmt.Sprintf("-%v.db", off), Options{Clock: tw.clocks[i], NoSync: true, NoPostCache: off})
		if err != nil {
			t.Fatal(err)
		}
		if off {
			tw.plain = db
		} else {
			tw.cached = db
		}
		s, err := db.CreateSecret(context.Background(), "twin", "twin-secret-0123456789", nil)
		if err != nil {
			t.Fatal(err)
		}
		tw.secret = s.Value
	}
	return tw
}

func (tw *twin) close() {
	tw.cached.Close()
	tw.plain.Close()
}

func (tw *twin) both(t *rapid.T, f func(db *DB) string) {
	a, b := f(tw.cached), f(tw.plain)
	if a != b {
		t.Fatalf("with the cache: %s\nwithout:        %s", a, b)
	}
}

func (tw *twin) enroll(t *rapid.T) {
	key, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	k := len(tw.nodes) + 1
	n := &twinNode{id: identity.NodeID(pub), key: pub}
	n.basic = protocol.BasicInventory{Hostname: fmt.Sprintf("pc-%d", k), Hints: protocol.Hints{InstanceID: fmt.Sprintf("inst-%d", k)}}
	var computer int64
	tw.both(t, func(db *DB) string {
		resp, err := db.Enroll(context.Background(), store.EnrollParams{NodeID: n.id, PublicKey: pub, Request: protocol.EnrollRequest{
			Secret: tw.secret, Hostname: n.basic.Hostname, Hints: n.basic.Hints}})
		if err != nil {
			t.Fatalf("enroll: %v", err)
		}
		computer = resp.ComputerID
		return fmt.Sprint(resp.ComputerID)
	})
	tw.nodes = append(tw.nodes, n)
	tw.computers = append(tw.computers, computer)
}

var twinPlugins = []protocol.Plugin{
	{Name: "monitor", Version: "2.0", BuildDate: "2026-01-01"},
	{Name: "inventory", Version: "7.1", BuildDate: "2026-01-01"},
	{Name: "patch", Version: "7.0", BuildDate: "2026-01-01"},
	{Name: "deployment", Version: "7.1", BuildDate: "2026-01-01"},
}

var twinProducts = []string{"monitor", "inventory", "patch", "deployment"}

func outcome(out store.Outcome, err error) string {
	return fmt.Sprintf("err=%v repeat=%v body=%x", err, out.Repeat, out.Body)
}

// post makes a request of node n (a new number, or a late one) that each
// database answers in its turn.
func (tw *twin) post(t *rapid.T, n *twinNode, kind protocol.Kind, send func(db *DB, r store.Request) (store.Outcome, error)) twinOp {
	var r store.Request
	if len(n.skipped) > 0 && rapid.IntRange(0, 3).Draw(t, "late") == 0 {
		r = store.Request{NodeID: n.id, Seq: n.skipped[0], Kind: kind}
		n.skipped = n.skipped[1:]
	} else {
		n.seq++
		r = store.Request{NodeID: n.id, Seq: n.seq, Kind: kind}
	}
	n.last, n.lastReq = send, r
	return twinOp{name: kind.String(), do: func(db *DB) string { return outcome(send(db, r)) }}
}

func (tw *twin) drawOp(t *rapid.T) twinOp {
	ctx := context.Background()
	n := rapid.SampledFrom(tw.nodes).Draw(t, "node")
	switch rapid.SampledFrom([]string{"basic", "basic", "delta", "delta", "delta", "delta", "software", "software", "software",
		"data", "check-in", "repeat", "gap", "status", "allocate", "deallocate", "import", "import", "remove", "time", "time",
		"delete", "goodbye"}).Draw(t, "op") {
	case "basic":
		b := n.basic
		b.Plugins = rapid.SliceOfNDistinct(rapid.SampledFrom(twinPlugins), 0, 3, func(p protocol.Plugin) string { return p.Name }).Draw(t, "plugins")
		n.basic = b
		return tw.post(t, n, protocol.KindInventory, func(db *DB, r store.Request) (store.Outcome, error) {
			return db.PostInventory(ctx, r, &protocol.InventoryRequest{Basic: b})
		})
	case "delta":
		req := &protocol.InventoryRequest{BasicHash: n.basic.Hash(), Backlog: uint32(rapid.IntRange(0, 3).Draw(t, "backlog"))}
		if n.gen > 0 {
			req.Software = &protocol.SoftwareInventory{Base: n.gen, Count: uint32(len(n.pkgs)), Hash: protocol.HashPackages(n.pkgs).String()}
		}
		return tw.post(t, n, protocol.KindInventory, func(db *DB, r store.Request) (store.Outcome, error) {
			return db.PostInventory(ctx, r, req)
		})
	case "software":
		added := protocol.Package{Name: fmt.Sprintf("pkg-%d", len(n.pkgs)), Version: "1", Source: "dpkg"}
		next := append(append([]protocol.Package(nil), n.pkgs...), added)
		sw := &protocol.SoftwareInventory{Full: true, Packages: next, Count: uint32(len(next)), Hash: protocol.HashPackages(next).String()}
		if n.gen > 0 && rapid.Bool().Draw(t, "as delta") {
			sw = &protocol.SoftwareInventory{Base: n.gen, Added: []protocol.Package{added}, Count: uint32(len(next)), Hash: sw.Hash}
		}
		n.pkgs = next
		op := tw.post(t, n, protocol.KindInventory, func(db *DB, r store.Request) (store.Outcome, error) {
			out, err := db.PostInventory(ctx, r, &protocol.InventoryRequest{BasicHash: n.basic.Hash(), Software: sw})
			if err == nil && db == tw.cached {
				var resp protocol.InventoryResponse
				if protocol.Unmarshal(out.Body, &resp) == nil && resp.Software != nil && resp.Software.Stored {
					// Ops of one batch answer on goroutines of their own:
					// keep the newest generation, whichever returns last.
					tw.mu.Lock()
					n.gen = max(n.gen, resp.Software.Generation)
					tw.mu.Unlock()
				}
			}
			return out, err
		})
		return op
	case "data":
		pl := rapid.SampledFrom(twinPlugins).Draw(t, "plugin")
		return tw.post(t, n, protocol.KindPluginData, func(db *DB, r store.Request) (store.Outcome, error) {
			return db.PostPluginData(ctx, r, &protocol.PluginDataRequest{Plugin: pl, PatchScan: &protocol.PatchScan{Scanned: 1}})
		})
	case "check-in":
		pl := rapid.SampledFrom(twinPlugins).Draw(t, "plugin")
		return tw.post(t, n, protocol.KindCheckIn, func(db *DB, r store.Request) (store.Outcome, error) {
			return db.PluginRequest(ctx, r, &protocol.PluginRequest{Plugin: pl})
		})
	case "repeat":
		if n.last == nil {
			return twinOp{}
		}
		send, r := n.last, n.lastReq
		return twinOp{name: "repeat", do: func(db *DB) string { return outcome(send(db, r)) }}
	case "gap":
		k := rapid.IntRange(1, 40).Draw(t, "gap")
		for i := 0; i < k; i++ {
			n.seq++
			n.skipped = append(n.skipped, n.seq)
		}
		return twinOp{}
	case "status":
		c := rapid.SampledFrom(tw.computers).Draw(t, "computer")
		st := rapid.SampledFrom([]string{"Active", "Retired", "Missing", "In Stock"}).Draw(t, "status")
		return twinOp{name: "status", do: func(db *DB) string { return fmt.Sprint(db.SetStatus(ctx, c, st, "test")) }}
	case "allocate", "deallocate":
		if len(tw.licenses) == 0 {
			return twinOp{}
		}
		c := rapid.SampledFrom(tw.computers).Draw(t, "computer")
		l := rapid.SampledFrom(tw.licenses).Draw(t, "license")
		if rapid.Bool().Draw(t, "allocate") {
			return twinOp{name: "allocate", do: func(db *DB) string { return fmt.Sprint(db.Allocate(ctx, l, c, "test")) }}
		}
		return twinOp{name: "deallocate", do: func(db *DB) string { return fmt.Sprint(db.Deallocate(ctx, l, c, "test")) }}
	case "import":
		tw.minted++
		id := fmt.Sprintf("L%d", tw.minted)
		l := store.License{ID: id, Product: rapid.SampledFrom(twinProducts).Draw(t, "product"), Kind: "node", Duration: "perpetual",
			Seats: rapid.IntRange(1, 2).Draw(t, "seats"), IssuedAt: tw.clocks[0].Now(), Issuer: "test"}
		if rapid.Bool().Draw(t, "expires") {
			e := tw.clocks[0].Now().Add(time.Duration(rapid.IntRange(1, 48).Draw(t, "hours")) * time.Hour)
			l.ExpiresAt, l.Duration = &e, "subscription"
		}
		tw.licenses = append(tw.licenses, id)
		return twinOp{name: "import", do: func(db *DB) string {
			ls, err := db.ImportLicenses(ctx, []store.LicenseImport{{License: l, File: []byte(id)}}, "test")
			return fmt.Sprint(len(ls), err)
		}}
	case "remove":
		if len(tw.licenses) == 0 {
			return twinOp{}
		}
		l := rapid.SampledFrom(tw.licenses).Draw(t, "license")
		return twinOp{name: "remove", do: func(db *DB) string { return fmt.Sprint(db.RemoveLicense(ctx, l, "test")) }}
	case "time":
		// Between batches: both clocks move before the next batch runs.
		d := time.Duration(rapid.IntRange(1, 30).Draw(t, "hours")) * time.Hour
		tw.clocks[0].Advance(d)
		tw.clocks[1].Advance(d)
		return twinOp{name: "expire", do: func(db *DB) string { return fmt.Sprint(db.ExpireLicenses(ctx)) }}
	case "delete":
		if rapid.IntRange(0, 3).Draw(t, "rarely") != 0 {
			return twinOp{}
		}
		c := rapid.SampledFrom(tw.computers).Draw(t, "computer")
		return twinOp{name: "delete", do: func(db *DB) string { return fmt.Sprint(db.DeleteComputer(ctx, c, false, "test")) }}
	case "goodbye":
		plugin := ""
		if rapid.IntRange(0, 3).Draw(t, "agent") != 0 {
			plugin = rapid.SampledFrom(twinPlugins).Draw(t, "plugin").Name
		}
		return tw.post(t, n, protocol.KindGoodbye, func(db *DB, r store.Request) (store.Outcome, error) {
			return db.Goodbye(ctx, r, &protocol.GoodbyeRequest{Plugin: plugin})
		})
	}
	return twinOp{}
}

// run runs ops on each database in turn as one batch: the writer is held
// while they queue, in order, and then takes them all at once.
func (tw *twin) run(t *rapid.T, ops []twinOp) {
	if len(ops) == 0 {
		return
	}
	var answers [2][]string
	for i, db := range []*DB{tw.cached, tw.plain} {
		answers[i] = runHeld(t, db, ops)
	}
	for k := range ops {
		if answers[0][k] != answers[1][k] {
			t.Fatalf("%s (op %d of the batch):\nwith the cache: %s\nwithout:        %s", ops[k].name, k, answers[0][k], answers[1][k])
		}
	}
}

func runHeld(t *rapid.T, db *DB, ops []twinOp) []string {
	hold, held := make(chan struct{}), make(chan struct{})
	go db.write(context.Background(), func(*Tx) error { close(held); <-hold; return nil })
	<-held
	out := make([]string, len(ops))
	var wg sync.WaitGroup
	for k, op := range ops {
		before := len(db.jobs)
		finished := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(finished)
			out[k] = op.do(db)
		}()
		// Wait until the op has queued its job (or finished without one).
		for len(db.jobs) == before {
			select {
			case <-finished:
			case <-time.After(50 * time.Microsecond):
				continue
			}
			break
		}
	}
	close(hold)
	wg.Wait()
	return out
}

// compareState compares what the two databases hold that posts read or
// write.
func (tw *twin) compareState(t *rapid.T) {
	queries := []string{
		`SELECT id, status, plugins, basic_hash, sw_generation, sw_hash, sw_count, last_seen, backlog, deleted_at FROM computers ORDER BY id`,
		`SELECT computer_id, product, license_id, since FROM seats ORDER BY computer_id, product`,
		`SELECT computer_id, product, license_id FROM allocations ORDER BY computer_id, product`,
		`SELECT id, held FROM licenses ORDER BY id`,
		`SELECT node_id, seq, kind, response FROM applied ORDER BY node_id, seq`,
		`SELECT id, max_seq, revoked_at FROM nodes ORDER BY id`,
		`SELECT computer_id, product, reason, count FROM discards ORDER BY computer_id, product, reason`,
		`SELECT computer_id, ids, dates FROM computer_software_sets ORDER BY computer_id`,
	}
	for _, q := range queries {
		a, b := dump(t, tw.cached.r, q), dump(t, tw.plain.r, q)
		if a != b {
			t.Fatalf("%s:\nwith the cache:\n%s\nwithout:\n%s", q, a, b)
		}
	}
}

func dump(t *rapid.T, db *sql.DB, q string) string {
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var sb strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sb, "%v\n", vals)
	}
	return sb.String()
}

// Inside one transaction, the cache steps aside for a computer an earlier
// job touched, and for everything after a job that emptied it (a post
// that swept expired licenses changes other computers' seats) or after
// any other job that wrote: the database shows those jobs' writes, the
// cache only once they commit.
func TestPostCacheStepsAsideInsideATransaction(t *testing.T) {
	h := newHotCache(false)
	for _, c := range []int64{1, 2, 3} {
		h.settle(&hotScope{node: fmt.Sprint("n", c), computer: c, read: &hotComputer{status: "Active"}, seats: true},
			hotNode{computerID: c, maxSeq: 0, newest: 5})
	}
	hit := func(node string, seq int64) bool { _, _, ok := h.lookup(node, seq); return ok }
	h.beginTx()
	if !hit("n1", 6) || !hit("n2", 6) || !hit("n3", 6) {
		t.Fatal("cached nodes missed")
	}
	if hit("n1", 5) || hit("n1", 2) {
		t.Fatal("a number not above the newest applied was taken from the cache (it may be a repeat)")
	}
	if hit("n9", 1) {
		t.Fatal("an unknown node hit")
	}
	h.jobDone(&hotScope{node: "n1", computer: 1}, false) // a post of computer 1
	if hit("n1", 7) {
		t.Fatal("computer 1, touched by an earlier job of the transaction, was taken from the cache")
	}
	if !hit("n2", 6) {
		t.Fatal("computer 2, untouched, missed")
	}
	h.jobDone(&hotScope{node: "n2", computer: 2, effect: hotClear}, false) // a post that swept licenses
	if hit("n3", 6) {
		t.Fatal("the cache answered after a job that emptied it, in the same transaction")
	}
	h.beginTx()
	if !hit("n3", 6) {
		t.Fatal("a new transaction does not see the cache again")
	}
	h.jobDone(nil, false) // a job outside the post path that only read
	if !hit("n3", 6) {
		t.Fatal("a read-only job stopped the cache")
	}
	h.jobDone(nil, true) // one that wrote
	if hit("n3", 6) {
		t.Fatal("the cache answered after an administrative write, in the same transaction")
	}
	// Committed: a clearing job empties it; a dropping job drops its
	// computer only; a clean one advances its node.
	h.beginTx()
	h.settle(&hotScope{node: "n1", computer: 1}, hotNode{computerID: 1, newest: 9})
	if hit("n1", 9) || !hit("n1", 10) {
		t.Fatal("a committed post did not advance its node's newest number")
	}
	h.settle(&hotScope{node: "n2", computer: 2, effect: hotDropComputer}, hotNode{computerID: 2, newest: 6})
	if hit("n2", 7) || !hit("n1", 10) {
		t.Fatal("a dropped computer is still cached, or another one went with it")
	}
	h.settle(&hotScope{node: "n3", computer: 3, effect: hotClear}, hotNode{computerID: 3, newest: 6})
	if hit("n1", 10) || hit("n3", 7) {
		t.Fatal("a clearing post left entries")
	}
	// Read without seats: never cached.
	h.settle(&hotScope{node: "n1", computer: 1, read: &hotComputer{}}, hotNode{computerID: 1, newest: 9})
	if hit("n1", 10) {
		t.Fatal("a computer read without its seats was cached")
	}
}

// Each write says what it changes by the Tx method it goes through: a
// write of what the cache does not hold changes nothing, of the post's own
// computer row drops that computer, of any other computer's row or of
// anything else (the default Exec) empties the cache; a job outside the
// post path that writes at all empties it.
func TestPostCacheWritesSayWhatTheyChange(t *testing.T) {
	for _, c := range []struct {
		name string
		do   func(tx *Tx)
		want hotEffect
	}{
		{"read only", func(tx *Tx) {}, hotNone},
		{"uncached", func(tx *Tx) { tx.changed(hotNone, 0) }, hotNone},
		{"own computer", func(tx *Tx) { tx.changed(hotDropComputer, 7) }, hotDropComputer},
		{"another computer", func(tx *Tx) { tx.changed(hotDropComputer, 8) }, hotClear},
		{"own computer, then anything", func(tx *Tx) { tx.changed(hotDropComputer, 7); tx.changed(hotClear, 0) }, hotClear},
		{"anything, then uncached", func(tx *Tx) { tx.changed(hotClear, 0); tx.changed(hotNone, 0) }, hotClear},
	} {
		tx := &Tx{hot: &hotScope{node: "n", computer: 7}}
		c.do(tx)
		if tx.hot.effect != c.want {
			t.Errorf("%s: effect %d, want %d", c.name, tx.hot.effect, c.want)
		}
		if tx.wrote {
			t.Errorf("%s: an aware job's write counted as an unaware one's", c.name)
		}
	}
	tx := &Tx{}
	tx.changed(hotNone, 0)
	if !tx.wrote {
		t.Error("a job outside the post path wrote and the cache would not empty")
	}
}
