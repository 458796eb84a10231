package engine

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/catalog"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newEngine(t testing.TB) *Engine {
	t.Helper()
	cat, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	return New(cat)
}

// versionFor picks a plug-in version inside the product's generation.
func versionFor(t testing.TB, p *catalog.Product) string {
	for _, v := range []string{"7.2", "6.5", "6.1.2", "6.0", "1.0", "0.1"} {
		if p.PluginVersions.Allows(v) {
			return v
		}
	}
	t.Fatalf("no test version fits %s", p.PluginVersions)
	return ""
}

func plugin(t testing.TB, p *catalog.Product) protocol.Plugin {
	return protocol.Plugin{Name: p.Plugin, Version: versionFor(t, p), BuildDate: "2026-01-01"}
}

func postFor(t testing.TB, p *catalog.Product, tr catalog.Trigger) Post {
	pl := plugin(t, p)
	switch tr {
	case catalog.TriggerPluginPresence:
		return Post{Kind: PostInventory, Plugins: []protocol.Plugin{pl}}
	case catalog.TriggerSoftwareInventory:
		return Post{Kind: PostInventory, Plugins: []protocol.Plugin{pl}, HasSoftware: true}
	case catalog.TriggerPluginData:
		return Post{Kind: PostPluginData, Plugin: pl}
	case catalog.TriggerTaskRequest:
		return Post{Kind: PostTaskRequest, Plugin: pl}
	case catalog.TriggerPackageRequest:
		return Post{Kind: PostPackageRequest, Plugin: pl}
	case catalog.TriggerCheckIn:
		return Post{Kind: PostCheckIn, Plugin: pl}
	}
	t.Fatalf("trigger %s", tr)
	return Post{}
}

func active(p *catalog.Product, pl protocol.Plugin) Computer {
	return Computer{ID: 1, Status: "Active", Seats: map[string]string{}, Plugins: []protocol.Plugin{pl}}
}

func poolOf(product string, seats int) Pool {
	return Pool{product: {{ID: "L1", Product: product, Seats: seats}}}
}

func consumed(d Decision, product string) bool {
	for _, e := range d.Effects {
		if e.Kind == Consume && e.Product == product {
			return true
		}
	}
	return false
}

// Every row of the catalog: each qualifying post consumes, each
// non-qualifying post does not.
func TestEveryProductQualifyingPostsConsume(t *testing.T) {
	e := newEngine(t)
	for _, p := range e.cat.Products() {
		for _, tr := range catalog.Triggers {
			t.Run(p.Name+"/"+string(tr), func(t *testing.T) {
				pl := plugin(t, p)
				c := active(p, pl)
				d := e.DecidePost(c, poolOf(p.Name, 10), postFor(t, p, tr), now)
				// An inventory post always carries plug-in presence.
				want := p.Qualifies(tr) || (tr == catalog.TriggerSoftwareInventory && p.Qualifies(catalog.TriggerPluginPresence))
				if got := consumed(d, p.Name); got != want {
					t.Fatalf("%s post for %s: consumed=%v, want %v (effects %+v)", tr, p.Name, got, want, d.Effects)
				}
				if want && d.Verdict(p.Name) != protocol.VerdictLicensed {
					t.Fatalf("verdict %s, want licensed", d.Verdict(p.Name))
				}
				// A second identical post consumes nothing more.
				c.Seats[p.Name] = "L1"
				pool := poolOf(p.Name, 10)
				pool[p.Name][0].Held = 1
				if d2 := e.DecidePost(c, pool, postFor(t, p, tr), now); consumed(d2, p.Name) {
					t.Fatalf("a node holding a seat consumed another")
				}
			})
		}
	}
}

var statuses = []string{"Active", "Retired", "Disposed", "Return to Lessor", "Missing", "In Stock", "Loaned (custom)"}

// Each status frees exactly what each product's rule says.
func TestEveryProductStatusRules(t *testing.T) {
	e := newEngine(t)
	for _, p := range e.cat.Products() {
		for _, s := range statuses {
			c := Computer{ID: 1, Status: "Active", Seats: map[string]string{p.Name: "L1"}}
			d := e.StatusChange(c, s)
			freed := len(d.Freed()) == 1
			if freed != p.FreedByStatus(s) {
				t.Errorf("%s set %s: freed=%v, rule says %v", p.Name, s, freed, p.FreedByStatus(s))
			}
		}
		c := Computer{ID: 1, Status: "Active", Seats: map[string]string{p.Name: "L1"}}
		if d := e.Delete(c); len(d.Freed()) != 1 {
			t.Errorf("deleting a computer did not free %s", p.Name)
		}
		if d := e.Goodbye(c, ""); len(d.Freed()) != 1 {
			t.Errorf("uninstalling the agent did not free %s", p.Name)
		}
		d := e.Goodbye(c, p.Plugin)
		if (len(d.Freed()) == 1) != p.PluginRemovalFrees {
			t.Errorf("%s: plug-in goodbye freed=%v, rule says %v", p.Name, len(d.Freed()) == 1, p.PluginRemovalFrees)
		}
	}
}

// The rows the seeds spell out, by name.
func TestSeedRows(t *testing.T) {
	e := newEngine(t)
	frees := func(product, status string) bool {
		c := Computer{ID: 1, Seats: map[string]string{product: "L1"}}
		return len(e.StatusChange(c, status).Freed()) == 1
	}
	cases := []struct {
		product, status string
		want            bool
	}{
		{"monitor", "Retired", true},
		{"monitor", "Disposed", false},
		{"patch", "Retired", true},
		{"patch", "Missing", false},
		{"inventory", "Disposed", true},
		{"inventory", "In Stock", true},
		{"inventory", "Missing", true},
		{"inventory-6", "Return to Lessor", true},
		{"inventory-6-early", "Disposed", true},
		{"inventory-6-early", "Missing", false},
		{"software-management", "Retired", true},
		{"deployment", "Retired", true},
		{"deployment", "Disposed", false},
	}
	for _, c := range cases {
		if got := frees(c.product, c.status); got != c.want {
			t.Errorf("%s set %s: frees=%v, want %v", c.product, c.status, got, c.want)
		}
	}
	for _, p := range []string{"software-delivery-6", "patch-6", "deployment-6"} {
		for _, s := range statuses {
			if frees(p, s) {
				t.Errorf("status %s freed %s: only deletion may", s, p)
			}
		}
		if len(e.Delete(Computer{ID: 1, Seats: map[string]string{p: "L1"}}).Freed()) != 1 {
			t.Errorf("deletion did not free %s", p)
		}
	}
}

func TestOverTheCountVerdicts(t *testing.T) {
	e := newEngine(t)
	full := func(product string) Pool {
		return Pool{product: {{ID: "L1", Product: product, Seats: 1, Held: 1}}}
	}
	mk := func(name string) (*catalog.Product, protocol.Plugin) {
		p, _ := e.cat.Product(name)
		return p, plugin(t, p)
	}
	p, pl := mk("deployment-6")
	d := e.DecidePost(active(p, pl), full(p.Name), Post{Kind: PostCheckIn, Plugin: pl}, now)
	if v := d.Verdict(p.Name); v != protocol.VerdictDeniedNoSeat {
		t.Errorf("deployment-6 check-in over the count: %s, want denied:no-seat", v)
	}
	p, pl = mk("software-delivery-6")
	d = e.DecidePost(active(p, pl), full(p.Name), Post{Kind: PostTaskRequest, Plugin: pl}, now)
	if v := d.Verdict(p.Name); v != protocol.VerdictDiscardedNoSeat || !strings.Contains(d.Verdicts[0].Reason, "tasks withheld") {
		t.Errorf("software-delivery-6 task request over the count: %+v", d.Verdicts)
	}
	p, pl = mk("patch")
	c := active(p, pl)
	d = e.DecidePost(c, full(p.Name), Post{Kind: PostCatalogRequest, Plugin: pl}, now)
	if v := d.Verdict(p.Name); v != protocol.VerdictDeniedNoSeat {
		t.Errorf("patch catalog request over the count: %s, want denied:no-seat", v)
	}
	d = e.DecidePost(c, full(p.Name), Post{Kind: PostPluginData, Plugin: pl}, now)
	if v := d.Verdict(p.Name); v != protocol.VerdictDiscardedNoSeat {
		t.Errorf("patch scan over the count: %s, want discarded:no-seat", v)
	}
	var discards int
	for _, ef := range d.Effects {
		if ef.Kind == Discard {
			discards++
		}
	}
	if discards != 1 {
		t.Errorf("discard not counted: %+v", d.Effects)
	}
	// A product without any license.
	p, pl = mk("monitor")
	d = e.DecidePost(active(p, pl), Pool{}, Post{Kind: PostInventory, Plugins: []protocol.Plugin{pl}}, now)
	if v := d.Verdict("monitor"); v != protocol.VerdictDiscardedNoSeat {
		t.Errorf("no license imported: %s", v)
	}
}

func TestRetiredComputerConsumesNothing(t *testing.T) {
	e := newEngine(t)
	p, _ := e.cat.Product("inventory")
	pl := plugin(t, p)
	c := active(p, pl)
	c.Status = "Retired"
	d := e.DecidePost(c, poolOf("inventory", 5), Post{Kind: PostInventory, Plugins: []protocol.Plugin{pl}, HasSoftware: true}, now)
	if consumed(d, "inventory") || d.Verdict("inventory") != protocol.VerdictDiscardedRetired {
		t.Fatalf("retired computer: %+v", d)
	}
	c.Status = "Active"
	if d := e.DecidePost(c, poolOf("inventory", 5), Post{Kind: PostInventory, Plugins: []protocol.Plugin{pl}}, now); !consumed(d, "inventory") {
		t.Fatal("set Active again, it did not consume")
	}
}

func TestPluginNoLongerListedFrees(t *testing.T) {
	e := newEngine(t)
	c := Computer{ID: 1, Status: "Active", Seats: map[string]string{"monitor": "L1", "patch-6": "L2"},
		Plugins: []protocol.Plugin{{Name: "monitor", Version: "1.0"}, {Name: "patch", Version: "6.2"}}}
	pool := Pool{"monitor": {{ID: "L1", Product: "monitor", Seats: 1, Held: 1}}, "patch-6": {{ID: "L2", Product: "patch-6", Seats: 1, Held: 1}}}
	d := e.DecidePost(c, pool, Post{Kind: PostInventory, Plugins: nil}, now)
	f := d.Freed()
	if len(f) != 1 || f[0] != "monitor" {
		t.Fatalf("freed %v, want [monitor] (patch-6's removal does not free)", f)
	}
}

func TestAttributionSoonestExpiringFirstAndAllocations(t *testing.T) {
	e := newEngine(t)
	p, _ := e.cat.Product("monitor")
	pl := plugin(t, p)
	pool := Pool{"monitor": {
		{ID: "perpetual", Product: "monitor", Seats: 5},
		{ID: "later", Product: "monitor", Seats: 5, Expires: now.AddDate(1, 0, 0)},
		{ID: "sooner", Product: "monitor", Seats: 5, Expires: now.AddDate(0, 1, 0)},
	}}
	d := e.DecidePost(active(p, pl), pool, Post{Kind: PostInventory, Plugins: []protocol.Plugin{pl}}, now)
	if d.Effects[0].License != "sooner" {
		t.Fatalf("attributed to %s, want sooner", d.Effects[0].License)
	}
	// A license whose last seat is allocated to another computer is full
	// for everyone else.
	pool = Pool{"monitor": {{ID: "A", Product: "monitor", Seats: 2, Held: 1, Allocated: 1}}}
	d = e.DecidePost(active(p, pl), pool, Post{Kind: PostInventory, Plugins: []protocol.Plugin{pl}}, now)
	if consumed(d, "monitor") {
		t.Fatal("took a seat reserved by an allocation")
	}
	c := active(p, pl)
	c.Allocations = map[string]string{"monitor": "A"}
	d = e.DecidePost(c, pool, Post{Kind: PostInventory, Plugins: []protocol.Plugin{pl}}, now)
	if !consumed(d, "monitor") || d.Effects[0].License != "A" {
		t.Fatalf("allocated computer refused: %+v", d)
	}
}

func TestExpiryAndUpgradeProtection(t *testing.T) {
	e := newEngine(t)
	p, _ := e.cat.Product("inventory")
	pl := plugin(t, p) // built 2026-01-01
	c := active(p, pl)
	c.Seats["inventory"] = "trial"
	pool := Pool{"inventory": {
		{ID: "trial", Product: "inventory", Seats: 5, Held: 1, Expires: now.Add(-time.Hour)},
		{ID: "full", Product: "inventory", Seats: 1},
	}}
	d := e.DecidePost(c, pool, Post{Kind: PostInventory, Plugins: []protocol.Plugin{pl}}, now)
	if d.Verdict("inventory") != protocol.VerdictLicensed || d.Effects[0].Kind != Move || d.Effects[0].License != "full" {
		t.Fatalf("expired seat did not move to the valid license: %+v", d)
	}
	pool["inventory"][1].Held = 1 // the other license is full now
	d = e.DecidePost(c, pool, Post{Kind: PostInventory, Plugins: []protocol.Plugin{pl}}, now)
	if d.Verdict("inventory") != protocol.VerdictDiscardedExpired || len(d.Freed()) != 1 {
		t.Fatalf("expired seat with nowhere to go: %+v", d)
	}
	// Upgrade protection: a build after the date is not covered.
	newer := protocol.Plugin{Name: "inventory", Version: "7.3", BuildDate: "2026-06-01"}
	pool = Pool{"inventory": {{ID: "aup", Product: "inventory", Seats: 5, UpgradeUntil: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}}}
	d = e.DecidePost(active(p, newer), pool, Post{Kind: PostInventory, Plugins: []protocol.Plugin{newer}}, now)
	if d.Verdict("inventory") != protocol.VerdictDiscardedUpgradeProtection || consumed(d, "inventory") {
		t.Fatalf("build past upgrade protection: %+v", d)
	}
	older := protocol.Plugin{Name: "inventory", Version: "7.1", BuildDate: "2026-02-01"}
	if d := e.DecidePost(active(p, older), pool, Post{Kind: PostInventory, Plugins: []protocol.Plugin{older}}, now); !consumed(d, "inventory") {
		t.Fatal("older build inside upgrade protection refused")
	}
}

func TestRebalanceAfterExpiry(t *testing.T) {
	e := newEngine(t)
	pool := Pool{"monitor": {
		{ID: "old", Product: "monitor", Seats: 3, Held: 3, Expires: now.Add(-time.Minute)},
		{ID: "new", Product: "monitor", Seats: 2},
	}}
	var holders []Holder
	for i := int64(1); i <= 3; i++ {
		holders = append(holders, Holder{Computer: Computer{ID: i, Status: "Active", Plugins: []protocol.Plugin{{Name: "monitor", Version: "1"}}},
			Product: "monitor", License: "old"})
	}
	d := e.Rebalance(holders, pool, now)
	var moved, freed int
	for _, ef := range d.Effects {
		switch ef.Kind {
		case Move:
			moved++
		case Free:
			freed++
		}
	}
	if moved != 2 || freed != 1 {
		t.Fatalf("moved %d freed %d, want 2 and 1: %+v", moved, freed, d.Effects)
	}
}

func TestCheckFindsViolations(t *testing.T) {
	e := newEngine(t)
	s := Snapshot{
		Licenses: []*License{{ID: "L", Product: "monitor", Seats: 1, Held: 1}},
		Seats:    []SeatFact{{1, "monitor", "L"}, {2, "monitor", "L"}},
		Computers: map[int64]ComputerFact{
			1: {Status: "Active", Plugins: []protocol.Plugin{{Name: "monitor", Version: "1"}}},
			2: {Status: "Retired"},
		},
	}
	v := e.Check(s, now)
	kinds := map[string]bool{}
	for _, x := range v {
		kinds[x.Kind] = true
	}
	for _, k := range []string{"counter", "oversubscribed", "holder"} {
		if !kinds[k] {
			t.Errorf("missing %s violation in %v", k, v)
		}
	}
}

// The engine is pure: it reads no clock, so that a decision depends only
// on the now it is given (DESIGN §4); the imports it may not have are
// checked by internal/importrules.
func TestEngineReadsNoClock(t *testing.T) {
	for _, pkg := range []string{".", "../catalog"} {
		src, err := exec.Command("grep", "-rn", "--include=*.go", "--exclude=*_test.go", "time.Now()", pkg).Output()
		if err == nil && len(src) > 0 {
			t.Errorf("%s reads the clock: %s", pkg, src)
		}
	}
}

func BenchmarkDecidePost(b *testing.B) {
	e := newEngine(b)
	p, _ := e.cat.Product("inventory")
	pl := protocol.Plugin{Name: "inventory", Version: "7.2", BuildDate: "2026-01-01"}
	pool := Pool{"inventory": {{ID: "L1", Product: "inventory", Seats: 1 << 30}}}
	post := Post{Kind: PostInventory, Plugins: []protocol.Plugin{pl}, HasSoftware: true}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c := Computer{ID: int64(i), Status: "Active", Seats: map[string]string{}, Plugins: []protocol.Plugin{pl}}
		d := e.DecidePost(c, pool, post, now)
		if len(d.Effects) != 1 {
			b.Fatal(fmt.Sprint(d.Effects), p.Name)
		}
	}
}

// Over-the-count behaviours are for nodes beyond the count (seed 001): a
// node without a seat whose request of any kind comes while a seat is free
// is never refused, and its first qualifying post takes the seat, whatever
// order its plug-in's requests come in.
func TestFreeSeatIsNeverRefused(t *testing.T) {
	e := newEngine(t)
	kinds := []PostKind{PostInventory, PostPluginData, PostTaskRequest, PostPackageRequest, PostCheckIn, PostCatalogRequest}
	post := func(pl protocol.Plugin, k PostKind) Post {
		if k == PostInventory {
			return Post{Kind: k, Plugins: []protocol.Plugin{pl}, HasSoftware: true}
		}
		return Post{Kind: k, Plugin: pl}
	}
	for _, p := range e.cat.Products() {
		for _, k := range kinds {
			t.Run(fmt.Sprintf("%s/%s", p.Name, kindText(k)), func(t *testing.T) {
				pl := plugin(t, p)
				d := e.DecidePost(active(p, pl), poolOf(p.Name, 1), post(pl, k), now)
				v := d.Verdict(p.Name)
				if v.Discarded() {
					t.Fatalf("refused with a seat free: %+v", d.Verdicts)
				}
				if v == protocol.VerdictLicensed != consumed(d, p.Name) {
					t.Fatalf("verdict %s but effects %+v", v, d.Effects)
				}
				asks := k != PostInventory && k != PostPluginData
				if asks && !d.Serves() {
					t.Fatalf("%s not answered with a seat free: %+v", kindText(k), d.Verdicts)
				}
			})
		}
	}

	// patch-6 (seed 001): reserved on the first scan result or package
	// request; its plug-in asks for the catalog first.
	p, _ := e.cat.Product("patch-6")
	pl := plugin(t, p)
	for _, order := range [][]PostKind{
		{PostCatalogRequest, PostPluginData, PostPackageRequest},
		{PostCatalogRequest, PostPackageRequest, PostPluginData},
		{PostPluginData, PostCatalogRequest, PostPackageRequest},
		{PostPackageRequest, PostCatalogRequest, PostPluginData},
	} {
		c, pool := active(p, pl), poolOf(p.Name, 1)
		for i, k := range order {
			d := e.DecidePost(c, pool, post(pl, k), now)
			if v := d.Verdict(p.Name); v.Discarded() {
				t.Fatalf("order %v, request %d (%s): %s %+v", order, i, kindText(k), v, d.Verdicts)
			}
			if consumed(d, p.Name) {
				c.Seats[p.Name] = "L1"
				pool[p.Name][0].Held++
			}
		}
		if c.Seats[p.Name] != "L1" || pool[p.Name][0].Held != 1 {
			t.Fatalf("order %v: the free seat was not taken", order)
		}
	}
	// Beyond the count the catalog is refused, as before.
	full := Pool{p.Name: {{ID: "L1", Product: p.Name, Seats: 1, Held: 1}}}
	d := e.DecidePost(active(p, pl), full, post(pl, PostCatalogRequest), now)
	if d.Verdict(p.Name) != protocol.VerdictDeniedNoSeat || d.Serves() {
		t.Fatalf("catalog beyond the count: %+v served=%v", d.Verdicts, d.Serves())
	}
	// A seat taken by another computer while the node waits leaves no seat
	// free: NeedsCounts makes the store read the counts before deciding.
	meta := Pool{p.Name: {{ID: "L1", Product: p.Name, Seats: 1}}}
	if !e.NeedsCounts(active(p, pl), meta, post(pl, PostCatalogRequest), now) {
		t.Fatal("a catalog request of a node without a seat is decided without the seat counts")
	}
}
