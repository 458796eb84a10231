package sqlstore_test

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"pgregory.net/rapid"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

// The plug-ins the model's computers may run, spanning products with every
// kind of rule: plug-in presence (monitor, inventory, patch), plug-in data
// (patch-6), task requests (software-delivery-6), check-ins (deployment-6,
// deployment 7 with its plug-in).
var modelPlugins = []protocol.Plugin{
	{Name: "monitor", Version: "2.0", BuildDate: "2026-01-01"},
	{Name: "inventory", Version: "7.1", BuildDate: "2026-01-01"},
	{Name: "inventory", Version: "7.2", BuildDate: "2026-09-01"}, // past some licenses' upgrade protection
	{Name: "patch", Version: "7.0", BuildDate: "2026-01-01"},
	{Name: "patch", Version: "6.5", BuildDate: "2025-01-01"},
	{Name: "software-management", Version: "6.3", BuildDate: "2025-01-01"},
	{Name: "deployment", Version: "6.2", BuildDate: "2025-01-01"},
	{Name: "deployment", Version: "7.1", BuildDate: "2026-01-01"},
}

var modelProducts = []string{"monitor", "inventory", "patch", "patch-6", "software-delivery-6", "deployment-6", "deployment"}

var modelStatuses = []string{"Active", "Active", "Retired", "Disposed", "Missing", "In Stock", "Return to Lessor"}

type modelNode struct {
	id       string
	computer int64
	seq      uint64
	deleted  bool
	gone     bool // uninstalled
	plugins  []protocol.Plugin
}

type model struct {
	db       *sqlstore.DB
	clk      *clock.Manual
	nodes    []*modelNode
	licenses []string
	minted   int
	secret   string
	n        int
	ctx      context.Context
}

func enroll(t *rapid.T, m *model) *modelNode {
	key, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	m.n++
	resp, err := m.db.Enroll(m.ctx, store.EnrollParams{NodeID: identity.NodeID(pub), PublicKey: pub, Request: protocol.EnrollRequest{
		Secret: m.secret, Hostname: fmt.Sprintf("pc-%d", m.n), Hints: protocol.Hints{InstanceID: fmt.Sprintf("inst-%d", m.n)}}})
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	return &modelNode{id: identity.NodeID(pub), computer: resp.ComputerID}
}

func (m *model) request(n *modelNode, kind protocol.Kind) store.Request {
	n.seq++
	return store.Request{NodeID: n.id, Seq: n.seq, Kind: kind}
}

func (m *model) live(t *rapid.T) *modelNode {
	var live []*modelNode
	for _, n := range m.nodes {
		if !n.deleted && !n.gone {
			live = append(live, n)
		}
	}
	if len(live) == 0 {
		t.Skip("no live computer")
	}
	return rapid.SampledFrom(live).Draw(t, "node")
}

func TestPropertyLicenseInvariants(t *testing.T) {
	dir := t.TempDir()
	run := 0
	seen := map[string]int{} // event kinds over all runs: the model must exercise the engine
	kinds := []string{store.EventSeatConsumed, store.EventSeatFreed, store.EventSeatMoved, store.EventDiscarded, store.EventAllocated}
	unseen := func() []string {
		var out []string
		for _, k := range kinds {
			if seen[k] == 0 {
				out = append(out, k)
			}
		}
		return out
	}
	// A batch of runs (rapid's 100 by default) now and then draws no
	// sequence that moves a seat (about one batch in ten): another batch,
	// with other draws, then comes before the coverage check.
	for batch := 0; batch < 4 && len(unseen()) > 0 && !t.Failed(); batch++ {
		checkLicenseInvariants(t, dir, &run, seen)
	}
	if u := unseen(); len(u) > 0 && !t.Failed() {
		t.Errorf("no %v event in any run: the model does not exercise the engine (seen %v)", u, seen)
	}
	t.Logf("events over all runs: %v", seen)
}

func checkLicenseInvariants(t *testing.T, dir string, runs *int, seen map[string]int) {
	rapid.Check(t, func(t *rapid.T) {
		*runs++
		run := *runs
		clk := clock.NewManual(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
		// Licenses are signed and verified as the server does, so that
		// the model can damage their rows and counters.
		signed := newSigner(t)
		file := filepath.Join(dir, fmt.Sprintf("p%d.db", run))
		db, err := sqlstore.Open(file, sqlstore.Options{Clock: clk, NoSync: true, VerifyLicense: signed.verify})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		defer func() {
			ev, _ := db.Events(context.Background(), store.EventFilter{})
			for _, e := range ev {
				seen[e.Kind]++
			}
		}()
		m := &model{db: db, clk: clk, ctx: context.Background()}
		s, err := db.CreateSecret(m.ctx, "prop", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		m.secret = s.Value
		for i := 0; i < 4; i++ {
			m.nodes = append(m.nodes, enroll(t, m))
		}
		allocated := map[string]map[int64]string{} // product → computer → license
		grants := map[string]int{}                 // license → seats its signed file grants
		damaged := false                           // a row edited since the last maintenance
		// heldWithinGrants is the invariant a damaged counter or grant
		// column must not break: seat rows never exceed the signed grant.
		// One connection of the model's own reads the seat rows and
		// damages rows, behind the store's back.
		raw, err := sql.Open("sqlite3", "file:"+file+"?_busy_timeout=10000")
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		raw.SetMaxOpenConns(1)
		if _, err := raw.Exec(`PRAGMA ignore_check_constraints = ON`); err != nil {
			t.Fatal(err)
		}
		damage := func(t *rapid.T, query string, args ...any) {
			if _, err := raw.Exec(query, args...); err != nil {
				t.Fatalf("damage the database: %v", err)
			}
			damaged = true
		}
		heldWithinGrants := func(t *rapid.T) {
			rows, err := raw.Query(`SELECT license_id, COUNT(*) FROM seats GROUP BY license_id`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var id string
				var n int
				if err := rows.Scan(&id, &n); err != nil {
					t.Fatal(err)
				}
				if g, ok := grants[id]; ok && n > g {
					t.Fatalf("license %s: %d seats held, its signed file grants %d", id, n, g)
				}
			}
		}

		actions := map[string]func(*rapid.T){
			"": func(t *rapid.T) {
				heldWithinGrants(t)
				v, err := db.Check(m.ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, x := range v {
					if x.Kind != "counter" || !damaged { // a damaged counter, until maintenance
						t.Fatalf("invariants broken: %v", v)
					}
				}
			},
			"corrupt counter": func(t *rapid.T) {
				if len(m.licenses) == 0 {
					t.Skip("no license")
				}
				id := rapid.SampledFrom(m.licenses).Draw(t, "license")
				damage(t, `UPDATE licenses SET held = ? WHERE id = ?`, rapid.IntRange(0, 9).Draw(t, "held"), id)
			},
			"corrupt grant": func(t *rapid.T) {
				if len(m.licenses) == 0 {
					t.Skip("no license")
				}
				id := rapid.SampledFrom(m.licenses).Draw(t, "license")
				damage(t, `UPDATE licenses SET seats = ? WHERE id = ?`, rapid.IntRange(1, 9).Draw(t, "seats"), id)
			},
			"maintenance": func(t *rapid.T) {
				rep, err := db.RunMaintenance(m.ctx, store.MaintenanceOptions{})
				if err != nil || len(rep.Errors) > 0 {
					t.Fatalf("maintenance: %v %v", err, rep.Errors)
				}
				if !damaged && len(rep.Drift) > 0 {
					t.Fatalf("maintenance found drift in an undamaged database: %v", rep.Drift)
				}
				damaged = false
				v, err := db.Check(m.ctx)
				if err != nil || len(v) > 0 {
					t.Fatalf("after maintenance: %v %v", v, err)
				}
				heldWithinGrants(t)
			},
			"enroll": func(t *rapid.T) {
				if len(m.nodes) < 8 {
					m.nodes = append(m.nodes, enroll(t, m))
				}
			},
			"inventory": func(t *rapid.T) {
				n := m.live(t)
				pls := rapid.SliceOfNDistinct(rapid.SampledFrom(modelPlugins), 0, 4, func(p protocol.Plugin) string { return p.Name }).Draw(t, "plugins")
				withSoftware := rapid.Bool().Draw(t, "software")
				req := protocol.InventoryRequest{Basic: protocol.BasicInventory{Hostname: "h", Hints: protocol.Hints{InstanceID: "i"}, Plugins: pls}}
				if withSoftware {
					pk := []protocol.Package{{Name: "bash", Version: "5", Source: "dpkg"}}
					req.Software = &protocol.SoftwareInventory{Full: true, Packages: pk, Count: 1, Hash: protocol.HashPackages(pk).String()}
				}
				out, err := db.PostInventory(m.ctx, m.request(n, protocol.KindInventory), &req)
				if err != nil {
					t.Fatalf("post: %v", err)
				}
				n.plugins = pls
				var resp protocol.InventoryResponse
				if err := protocol.Unmarshal(out.Body, &resp); err != nil {
					t.Fatal(err)
				}
				m.allocatedNotRefused(t, n, resp.Verdicts, allocated, func(p *catalog.Product) bool { return p.Qualifies(catalog.TriggerPluginPresence) })
			},
			"plugin request": func(t *rapid.T) {
				n := m.live(t)
				pl := rapid.SampledFrom(modelPlugins).Draw(t, "plugin")
				kind := rapid.SampledFrom([]protocol.Kind{protocol.KindTaskRequest, protocol.KindCheckIn, protocol.KindCatalogRequest, protocol.KindPackageRequest, protocol.KindPluginData}).Draw(t, "kind")
				var out store.Outcome
				var err error
				switch kind {
				case protocol.KindPluginData:
					out, err = db.PostPluginData(m.ctx, m.request(n, kind), &protocol.PluginDataRequest{Plugin: pl, PatchScan: &protocol.PatchScan{Scanned: 1}})
				case protocol.KindPackageRequest:
					out, err = db.PluginRequest(m.ctx, m.request(n, kind), &protocol.PackageRequest{Plugin: pl})
				default:
					out, err = db.PluginRequest(m.ctx, m.request(n, kind), &protocol.PluginRequest{Plugin: pl})
				}
				if err != nil {
					t.Fatalf("%s: %v", kind, err)
				}
				// Every plug-in response keeps its verdicts under key 1.
				var resp protocol.VerdictResponse
				if err := cbor.Unmarshal(out.Body, &resp); err != nil {
					t.Fatalf("decode %s response: %v", kind, err)
				}
				if kind == protocol.KindCheckIn || kind == protocol.KindTaskRequest {
					m.allocatedNotRefused(t, n, resp.Verdicts, allocated, func(p *catalog.Product) bool {
						return p.Qualifies(catalog.TriggerCheckIn) && kind == protocol.KindCheckIn || p.Qualifies(catalog.TriggerTaskRequest) && kind == protocol.KindTaskRequest
					})
				}
			},
			"status": func(t *rapid.T) {
				n := m.live(t)
				st := rapid.SampledFrom(modelStatuses).Draw(t, "status")
				if _, err := db.SetStatus(m.ctx, n.computer, st, "test"); err != nil {
					t.Fatalf("set status: %v", err)
				}
			},
			"delete": func(t *rapid.T) {
				n := m.live(t)
				if _, err := db.DeleteComputer(m.ctx, n.computer, rapid.Bool().Draw(t, "block"), "test"); err != nil {
					t.Fatalf("delete: %v", err)
				}
				n.deleted = true
				for _, byC := range allocated {
					delete(byC, n.computer)
				}
			},
			"goodbye": func(t *rapid.T) {
				n := m.live(t)
				plugin := ""
				if rapid.Bool().Draw(t, "one plug-in") {
					plugin = rapid.SampledFrom(modelPlugins).Draw(t, "plugin").Name
				}
				if _, err := db.Goodbye(m.ctx, m.request(n, protocol.KindGoodbye), &protocol.GoodbyeRequest{Plugin: plugin}); err != nil {
					t.Fatalf("goodbye: %v", err)
				}
				if plugin == "" {
					n.gone = true
				}
			},
			"import": func(t *rapid.T) {
				product := rapid.SampledFrom(modelProducts).Draw(t, "product")
				m.minted++
				id := fmt.Sprintf("L%d", m.minted)
				p := license.Payload{ID: id, Product: product, Seats: uint32(rapid.IntRange(1, 3).Draw(t, "seats")), IssuedAt: clk.Now().Unix()}
				if rapid.Bool().Draw(t, "expires") {
					p.Expires = clk.Now().Add(time.Duration(rapid.IntRange(1, 72).Draw(t, "hours")) * time.Hour).Unix()
				}
				if rapid.Bool().Draw(t, "aup") {
					p.UpgradeUntil = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).Unix()
				}
				if _, err := db.ImportLicenses(m.ctx, []store.LicenseImport{signed.issue(t, p)}, "test"); err != nil {
					t.Fatalf("import: %v", err)
				}
				m.licenses = append(m.licenses, id)
				grants[id] = int(p.Seats)
			},
			"remove license": func(t *rapid.T) {
				if len(m.licenses) == 0 {
					t.Skip("no license")
				}
				i := rapid.IntRange(0, len(m.licenses)-1).Draw(t, "license")
				id := m.licenses[i]
				if _, err := db.RemoveLicense(m.ctx, id, "test"); err != nil {
					t.Fatalf("remove: %v", err)
				}
				m.licenses = append(m.licenses[:i], m.licenses[i+1:]...)
				delete(grants, id)
				for _, byC := range allocated {
					for c, l := range byC {
						if l == id {
							delete(byC, c)
						}
					}
				}
			},
			"time passes": func(t *rapid.T) {
				clk.Advance(time.Duration(rapid.IntRange(1, 48).Draw(t, "hours")) * time.Hour)
				if _, err := db.ExpireLicenses(m.ctx); err != nil { // what the scheduler does
					t.Fatalf("expire: %v", err)
				}
			},
			"allocate": func(t *rapid.T) {
				if len(m.licenses) == 0 {
					t.Skip("no license")
				}
				n := m.live(t)
				id := rapid.SampledFrom(m.licenses).Draw(t, "license")
				_, err := db.Allocate(m.ctx, id, n.computer, "test")
				if err == nil {
					ls, _ := db.Licenses(m.ctx)
					for _, l := range ls {
						if l.ID == id {
							if allocated[l.Product] == nil {
								allocated[l.Product] = map[int64]string{}
							}
							allocated[l.Product][n.computer] = id
						}
					}
				}
			},
			"deallocate": func(t *rapid.T) {
				for product, byC := range allocated {
					for c, l := range byC {
						if _, err := db.Deallocate(m.ctx, l, c, "test"); err != nil {
							t.Fatalf("deallocate: %v", err)
						}
						delete(allocated[product], c)
						return
					}
				}
			},
		}
		// Posts and imports are drawn three times as often as the rest, so
		// that seats are actually contended.
		for _, k := range []string{"inventory", "plugin request", "import"} {
			actions[k+" (again)"] = actions[k]
			actions[k+" (once more)"] = actions[k]
		}
		t.Repeat(actions)
	})
}

// allocatedNotRefused: an Active computer posting, for a product allocated
// to it on a license still valid and covering its plug-in's build, is
// licensed.
func (m *model) allocatedNotRefused(t *rapid.T, n *modelNode, verdicts []protocol.ProductVerdict, allocated map[string]map[int64]string,
	qualifies func(p *catalog.Product) bool) {
	c, err := m.db.Computer(m.ctx, n.computer)
	if err != nil || c.Status != "Active" {
		return
	}
	lics, err := m.db.Licenses(m.ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]store.License{}
	for _, l := range lics {
		byID[l.ID] = l
	}
	products := make([]string, 0, len(allocated))
	for p := range allocated {
		products = append(products, p)
	}
	sort.Strings(products)
	for _, product := range products {
		lid, ok := allocated[product][n.computer]
		if !ok {
			continue
		}
		l, ok := byID[lid]
		p, _ := m.db.Engine().Catalog().Product(product)
		if !ok || l.Expired || p == nil || !qualifies(p) {
			continue
		}
		var build time.Time
		listed := false
		for _, pl := range n.plugins {
			if p.Matches(pl.Name, pl.Version) {
				listed = true
				build, _ = time.Parse("2006-01-02", pl.BuildDate)
			}
		}
		if !listed || (l.UpgradeUntil != nil && build.After(*l.UpgradeUntil)) {
			continue
		}
		for _, v := range verdicts {
			if v.Product == product && v.Verdict != protocol.VerdictLicensed {
				t.Fatalf("computer %d with an allocation on %s was refused %s: %s (%s)", n.computer, lid, product, v.Verdict, v.Reason)
			}
		}
	}
}
