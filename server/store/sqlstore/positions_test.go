package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/recognize"
	"github.com/tallyhq/tally/server/store"
)

func consumption(t *testing.T, db *DB, lic string) (int, int) {
	t.Helper()
	l, err := db.SoftwareLicense(context.Background(), lic)
	if err != nil {
		t.Fatal(err)
	}
	return l.Consumed, l.Raw
}

// Recognition follows every software set write: full, delta, and the
// computer's status; adding or removing an application re-evaluates
// the fleet.
func TestRecognitionFollowsSoftwareSets(t *testing.T) {
	ctx := context.Background()
	db := swStore(t, clock.NewManual(time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)))
	a, b := swEnroll(t, db), swEnroll(t, db)
	py := func(name, v string) protocol.Package {
		return protocol.Package{Source: "dpkg", Name: name, Version: v, Arch: "amd64"}
	}
	setA := []protocol.Package{py("python2.7", "2.7.17-1~18.04"), py("python2.7-minimal", "2.7.17-1~18.04"), pkg("bash", 1)}
	setB := []protocol.Package{py("python2.7", "2.7.12-1"), pkg("bash", 1)}
	swSend(t, db, a, full(setA...))
	swSend(t, db, b, full(setB...))
	// Added after the sets: the fleet is re-evaluated at once.
	if _, err := db.AddApplications(ctx, []store.Application{{Name: "Python 2.7", Publisher: "PSF",
		Rules: []recognize.Rule{{Package: "python2.7*", Versions: ">=2.7.15, <2.8", Source: "dpkg"}}}}, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddSoftwareLicense(ctx, store.SoftwareLicense{License: positions.License{Name: "Python site", Duration: positions.Perpetual},
		Applications: []string{"Python 2.7"}}, "test"); err != nil {
		t.Fatal(err)
	}
	if c, raw := consumption(t, db, "SW-1"); c != 1 || raw != 2 {
		t.Fatalf("consumed %d (raw %d), want 1 (2): only computer a has 2.7.15 or later", c, raw)
	}
	// b upgrades (a delta): recognised at once.
	ack := swSend(t, db, b, delta(1, setB, []protocol.Package{setB[0]}, []protocol.Package{py("python2.7", "2.7.18-1")}))
	if !ack.Stored {
		t.Fatalf("delta not stored: %+v", ack)
	}
	if c, _ := consumption(t, db, "Python site"); c != 2 {
		t.Fatalf("after b's upgrade: consumed %d, want 2", c)
	}
	// a removes one of its two packages, then the other.
	swSend(t, db, a, delta(1, setA, []protocol.Package{setA[1]}, nil))
	if c, raw := consumption(t, db, "SW-1"); c != 2 || raw != 2 {
		t.Fatalf("after a removed python2.7-minimal: %d (%d), want 2 (2)", c, raw)
	}
	swSend(t, db, a, delta(2, []protocol.Package{setA[0], setA[2]}, []protocol.Package{setA[0]}, nil))
	if c, _ := consumption(t, db, "SW-1"); c != 1 {
		t.Fatalf("after a removed python2.7: %d, want 1", c)
	}
	// A retired computer consumes nothing; its installation stays listed.
	if _, err := db.SetStatus(ctx, b.computer, "Retired", "test"); err != nil {
		t.Fatal(err)
	}
	if c, _ := consumption(t, db, "SW-1"); c != 0 {
		t.Fatalf("after b retired: %d, want 0", c)
	}
	app, err := db.Application(ctx, "python 2.7")
	if err != nil {
		t.Fatal(err)
	}
	if app.Installed != 1 || app.Consuming != 0 || len(app.Computers) != 1 || app.Computers[0].ComputerID != b.computer || app.Computers[0].Consuming {
		t.Fatalf("application: %+v", app)
	}
	if list, err := db.ApplicationList(ctx); err != nil || len(list) != 1 || list[0].Installed != 1 || list[0].Consuming != 0 {
		t.Fatalf("application list: %+v, %v", list, err)
	}
	// A license of two applications counts each computer once.
	if _, err := db.AddApplications(ctx, []store.Application{{Name: "Shell", Rules: []recognize.Rule{{Package: "bash"}}}}, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SetStatus(ctx, b.computer, "Active", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddSoftwareLicense(ctx, store.SoftwareLicense{License: positions.License{Name: "Both", Duration: positions.Perpetual},
		Applications: []string{"Python 2.7", "Shell"}}, "test"); err != nil {
		t.Fatal(err)
	}
	snap, err := db.PositionSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range snap.Licenses {
		if l.Name == "Both" && (l.Consumed != 2 || l.Raw != 3) {
			t.Fatalf("license of python and bash on a (bash) and b (both): %+v", l)
		}
	}
	if c, raw := consumption(t, db, "Both"); c != 2 || raw != 3 {
		t.Fatalf("license show of Both: %d (%d)", c, raw)
	}
	if _, err := db.SetStatus(ctx, b.computer, "Retired", "test"); err != nil {
		t.Fatal(err)
	}
	// An application a license names stays; another one goes, and its
	// recognitions with it.
	if err := db.RemoveApplication(ctx, "Python 2.7", "test"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("remove a licensed application: %v", err)
	}
	if _, err := db.AddApplications(ctx, []store.Application{{Name: "Bash", Rules: []recognize.Rule{{Package: "bash"}}}}, "test"); err != nil {
		t.Fatal(err)
	}
	if app, _ := db.Application(ctx, "Bash"); app.Installed != 2 {
		t.Fatalf("bash on %d computers, want 2", app.Installed)
	}
	if err := db.RemoveApplication(ctx, "Bash", "test"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.r.QueryRow(`SELECT COUNT(*) FROM sw_recognitions`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("%d recognitions left (%v), want b's python and a's and b's shell", n, err)
	}
	// A new computer's first full set is recognised with the memo.
	c := swEnroll(t, db)
	swSend(t, db, c, full(py("python2.7-dev", "2.7.18"), pkg("bash", 1)))
	if c, _ := consumption(t, db, "SW-1"); c != 1 {
		t.Fatalf("after c posted: %d, want 1", c)
	}
}

// Bad purchases and links are refused with a sentence, and change
// nothing: not the purchases, not the links, not the audit log.
func TestPurchaseBadInputChangesNothing(t *testing.T) {
	ctx := context.Background()
	db := swStore(t, clock.NewManual(time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)))
	if _, err := db.AddApplications(ctx, []store.Application{{Name: "CAD", Rules: []recognize.Rule{{Package: "cad"}}}}, "test"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"A", "B"} {
		if _, err := db.AddSoftwareLicense(ctx, store.SoftwareLicense{License: positions.License{Name: name, Duration: positions.Perpetual}, Applications: []string{"CAD"}}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	good := store.NewPurchase{Purchase: positions.Purchase{PO: "PO-1", Item: "CAD seats", Quantity: 10, Type: positions.PurchaseLicense},
		Links: []positions.Link{{License: "A", Quantity: 6}}}
	added, err := db.AddPurchases(ctx, []store.NewPurchase{good}, "test")
	if err != nil {
		t.Fatal(err)
	}
	id := added[0].ID
	count := func() (p, l, e int) {
		db.r.QueryRow(`SELECT (SELECT COUNT(*) FROM purchases), (SELECT COUNT(*) FROM purchase_links), (SELECT COUNT(*) FROM events)`).Scan(&p, &l, &e)
		return
	}
	p0, l0, e0 := count()
	bad := func(mut func(*store.NewPurchase)) []store.NewPurchase {
		np := good
		np.Links = append([]positions.Link(nil), good.Links...)
		mut(&np)
		// The bad one second: the first must not be kept either.
		return []store.NewPurchase{good, np}
	}
	for name, err := range map[string]error{
		"negative quantity": func() error {
			_, err := db.AddPurchases(ctx, bad(func(p *store.NewPurchase) { p.Quantity = -3 }), "test")
			return err
		}(),
		"expiry before effective": func() error {
			_, err := db.AddPurchases(ctx, bad(func(p *store.NewPurchase) {
				p.Type, p.Effective, p.Expiry = positions.PurchaseMaintenance, 20000, 19999
			}), "test")
			return err
		}(),
		"split exceeding the quantity": func() error {
			_, err := db.AddPurchases(ctx, bad(func(p *store.NewPurchase) { p.Links = append(p.Links, positions.Link{License: "B", Quantity: 5}) }), "test")
			return err
		}(),
		"unknown license": func() error {
			_, err := db.AddPurchases(ctx, bad(func(p *store.NewPurchase) { p.Links = []positions.Link{{License: "Nope", Quantity: 1}} }), "test")
			return err
		}(),
		"link exceeding the quantity": func() error {
			_, err := db.LinkPurchase(ctx, id, "B", 5, "test")
			return err
		}(),
		"link to an unknown license": func() error {
			_, err := db.LinkPurchase(ctx, id, "SW-99", 1, "test")
			return err
		}(),
		"link of an unknown purchase": func() error {
			_, err := db.LinkPurchase(ctx, 999, "B", 1, "test")
			return err
		}(),
		"negative link": func() error {
			_, err := db.LinkPurchase(ctx, id, "B", -1, "test")
			return err
		}(),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		t.Logf("%s: %v", name, err)
		if p, l, e := count(); p != p0 || l != l0 || e != e0 {
			t.Errorf("%s changed something: purchases %d→%d, links %d→%d, events %d→%d", name, p0, p, l0, l, e0, e)
		}
	}
	// A link within the quantity is fine, and replaces the link's quantity.
	v, err := db.LinkPurchase(ctx, id, "B", 4, "test")
	if err != nil || v.Unallocated != 0 {
		t.Fatalf("link 4 to B: %v, %+v", err, v)
	}
	if v, err = db.LinkPurchase(ctx, id, "SW-1", 2, "test"); err != nil || v.Unallocated != 4 {
		t.Fatalf("relink A with 2: %v, %+v", err, v)
	}
	ev, err := db.Events(ctx, store.EventFilter{Kind: store.EventPurchaseLinked})
	if err != nil || len(ev) != 2 {
		t.Fatalf("link events: %v %+v", err, ev)
	}
	// Unlinking frees the quantity; unlinking again is an error.
	if v, err = db.UnlinkPurchase(ctx, id, "B", "test"); err != nil || v.Unallocated != 8 || len(v.Links) != 1 {
		t.Fatalf("unlink B: %v, %+v", err, v)
	}
	if _, err := db.UnlinkPurchase(ctx, id, "B", "test"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unlink B again: %v", err)
	}
	if l, err := db.SoftwareLicense(ctx, "A"); err != nil || len(l.Links) != 1 || l.Links[0].Quantity != 2 {
		t.Fatalf("license A: %+v, %v", l, err)
	}
}

// A delta adjusts only the counts of its packages' applications: after
// any sequence of deltas they equal a recount of the stored set.
func TestDeltaRecognitionEqualsRecount(t *testing.T) {
	ctx := context.Background()
	db := swStore(t, clock.NewManual(time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)))
	apps := []store.Application{
		{Name: "G1", Rules: []recognize.Rule{{Package: "p1*"}}},
		{Name: "G2", Rules: []recognize.Rule{{Package: "p*", Versions: ">=2"}}},
		{Name: "E", Rules: []recognize.Rule{{Package: "p3"}, {Package: "p13"}}},
	}
	added, err := db.AddApplications(ctx, apps, "test")
	if err != nil {
		t.Fatal(err)
	}
	var rapps []recognize.Application
	for _, a := range added {
		rapps = append(rapps, recognize.Application{ID: a.ID, Rules: a.Rules})
	}
	ix, err := recognize.NewIndex(rapps)
	if err != nil {
		t.Fatal(err)
	}
	n := swEnroll(t, db)
	r := rand.New(rand.NewPCG(5, 6))
	mk := func() protocol.Package {
		return protocol.Package{Source: "dpkg", Name: fmt.Sprintf("p%d", r.IntN(20)), Version: fmt.Sprintf("%d", 1+r.IntN(3)), Arch: "amd64"}
	}
	set := map[string]protocol.Package{}
	for range 10 {
		p := mk()
		set[packageKey(&p)] = p
	}
	list := func() []protocol.Package {
		var out []protocol.Package
		for _, p := range set {
			out = append(out, p)
		}
		return out
	}
	ack := swSend(t, db, n, full(list()...))
	for step := range 60 {
		before := list()
		var removed, add []protocol.Package
		for _, p := range before {
			if r.IntN(4) == 0 {
				removed = append(removed, p)
				delete(set, packageKey(&p))
			}
		}
		for range r.IntN(3) {
			p := mk()
			if _, ok := set[packageKey(&p)]; !ok && !slices.ContainsFunc(removed, func(q protocol.Package) bool { return packageKey(&q) == packageKey(&p) }) {
				set[packageKey(&p)] = p
				add = append(add, p)
			}
		}
		if ack = swSend(t, db, n, delta(ack.Generation, before, removed, add)); !ack.Stored {
			t.Fatalf("step %d: not stored", step)
		}
		want := map[int64]int{}
		for _, p := range set {
			for _, a := range ix.Match(nil, recognize.Package{Source: p.Source, Name: p.Name, Version: p.Version}) {
				want[a]++
			}
		}
		got := map[int64]int{}
		rows, err := db.r.Query(`SELECT application_id, packages FROM sw_recognitions WHERE computer_id = ?`, n.computer)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var a int64
			var c int
			rows.Scan(&a, &c)
			got[a] = c
		}
		rows.Close()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("step %d: recognitions %v, a recount gives %v", step, got, want)
		}
	}
}
