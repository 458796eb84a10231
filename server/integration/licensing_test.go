package integration

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

func noDrift(t *testing.T, srv *servertest.Server) {
	t.Helper()
	v, err := srv.Store().Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(v) > 0 {
		t.Fatalf("invariants broken: %v", v)
	}
	rep, err := srv.Admin.Maintenance(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Drift) > 0 {
		t.Fatalf("maintenance found drift: %v", rep.Drift)
	}
}

func usageOf(t *testing.T, srv *servertest.Server, product string) store.Usage {
	t.Helper()
	us, err := srv.Admin.Usage(context.Background(), product)
	if err != nil || len(us) != 1 {
		t.Fatalf("usage %s: %v %v", product, us, err)
	}
	return us[0]
}

// At least 200 agents with their own identities post at once for a
// product with 50 seats: exactly 50 hold seats, every other one is told
// discarded:no-seat, nothing of theirs is stored, and the audit log agrees.
func TestRaceForSeatsOverQUIC(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "inventory", Seats: 50})
	nodes := newNodes(t, srv, 200)
	pkgs := samplePackages(20)
	verdicts := make([]protocol.Verdict, len(nodes))
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes))
	for i, n := range nodes {
		wg.Add(1)
		go func(i int, n *node) {
			defer wg.Done()
			<-start
			resp, err := n.tryPost([]protocol.Plugin{plug("inventory", "7.2")}, pkgs)
			if err != nil {
				errs <- err
				return
			}
			verdicts[i] = verdictOf(resp.Verdicts, "inventory")
			if stored := resp.Software != nil && resp.Software.Stored; stored != (verdicts[i] == protocol.VerdictLicensed) {
				errs <- errors.New("software stored flag disagrees with the verdict")
			}
		}(i, n)
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	winners, losers := map[int64]bool{}, map[int64]bool{}
	for i, v := range verdicts {
		switch v {
		case protocol.VerdictLicensed:
			winners[nodes[i].id] = true
		case protocol.VerdictDiscardedNoSeat:
			losers[nodes[i].id] = true
		default:
			t.Fatalf("node %d got %s", i, v)
		}
	}
	if len(winners) != 50 || len(losers) != 150 {
		t.Fatalf("winners %d, losers %d; want 50 and 150", len(winners), len(losers))
	}
	u := usageOf(t, srv, "inventory")
	if u.Consumed != 50 || len(u.Holders) != 50 || u.Waiting != 150 || u.Available != -150 || u.Compliant {
		t.Fatalf("usage %+v", u)
	}
	for _, h := range u.Holders {
		if !winners[h.ComputerID] {
			t.Fatalf("holder %d was told it lost", h.ComputerID)
		}
	}
	for _, n := range nodes {
		sw, err := srv.Admin.Software(context.Background(), n.id)
		if err != nil {
			t.Fatal(err)
		}
		if winners[n.id] && len(sw) != len(pkgs) || losers[n.id] && len(sw) != 0 {
			t.Fatalf("computer %d (winner %v) has %d packages stored", n.id, winners[n.id], len(sw))
		}
	}
	ev, err := srv.Admin.Events(context.Background(), url.Values{"product": {"inventory"}})
	if err != nil {
		t.Fatal(err)
	}
	consumedBy, discardedBy := map[int64]int{}, map[int64]int64{}
	for _, e := range ev {
		switch e.Kind {
		case store.EventSeatConsumed:
			consumedBy[e.ComputerID]++
		case store.EventDiscarded:
			discardedBy[e.ComputerID] += e.Count
		}
	}
	if len(consumedBy) != 50 || len(discardedBy) != 150 {
		t.Fatalf("audit: %d consumed, %d discarded", len(consumedBy), len(discardedBy))
	}
	for id := range consumedBy {
		if !winners[id] || consumedBy[id] != 1 {
			t.Fatalf("audit: computer %d consumed %d times (winner %v)", id, consumedBy[id], winners[id])
		}
	}
	for id := range discardedBy {
		if !losers[id] {
			t.Fatalf("audit: winner %d has a discard", id)
		}
	}
	noDrift(t, srv)
}

// Retire, delete, uninstall and plug-in removal each free a seat that a
// waiting node takes on its next post, with no restart and no maintenance
// run in between; deletion and uninstall free seats that the product's
// status rule would not (the failure of seed 000).
func TestEveryReclamationFreesAtOnce(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 1})
	mon := []protocol.Plugin{plug("monitor", "2.0")}
	holder := newNode(t, srv, srv.Secret)
	waiter := newNode(t, srv, srv.Secret)
	if v := verdictOf(holder.post(mon, nil).Verdicts, "monitor"); v != protocol.VerdictLicensed {
		t.Fatalf("first holder: %s", v)
	}
	steps := []struct {
		name string
		free func(t *testing.T, n *node)
	}{
		{"retire", func(t *testing.T, n *node) {
			ch, err := srv.Admin.SetStatus(context.Background(), n.id, "Retired")
			if err != nil || len(ch.Seats) != 1 || ch.Seats[0].Product != "monitor" || ch.Seats[0].Change != "freed" {
				t.Fatalf("retire: %+v %v", ch, err)
			}
		}},
		{"delete", func(t *testing.T, n *node) {
			ch, err := srv.Admin.DeleteComputer(context.Background(), n.id, false)
			if err != nil || len(ch.Seats) != 1 {
				t.Fatalf("delete: %+v %v", ch, err)
			}
		}},
		{"uninstall", func(t *testing.T, n *node) {
			var resp protocol.GoodbyeResponse
			if err := n.call(protocol.KindGoodbye, &protocol.GoodbyeRequest{Reason: "uninstalled by test"}, &resp); err != nil || len(resp.Freed) != 1 {
				t.Fatalf("goodbye: %+v %v", resp, err)
			}
		}},
		{"plug-in goodbye", func(t *testing.T, n *node) {
			var resp protocol.GoodbyeResponse
			if err := n.call(protocol.KindGoodbye, &protocol.GoodbyeRequest{Plugin: "monitor"}, &resp); err != nil || len(resp.Freed) != 1 {
				t.Fatalf("plug-in goodbye: %+v %v", resp, err)
			}
		}},
		{"plug-in no longer listed", func(t *testing.T, n *node) {
			if v := verdictOf(n.post(nil, nil).Verdicts, "monitor"); v != protocol.VerdictNotApplicable {
				t.Fatalf("post without the plug-in: %s", v)
			}
		}},
	}
	for _, s := range steps {
		// The waiter is refused while the holder holds the seat.
		if v := verdictOf(waiter.post(mon, nil).Verdicts, "monitor"); v != protocol.VerdictDiscardedNoSeat {
			t.Fatalf("%s: waiter before: %s", s.name, v)
		}
		s.free(t, holder)
		if v := verdictOf(waiter.post(mon, nil).Verdicts, "monitor"); v != protocol.VerdictLicensed {
			t.Fatalf("%s: the waiter did not get the freed seat on its next post: %s", s.name, v)
		}
		// Roles swap: the waiter holds the seat, a fresh node waits.
		holder, waiter = waiter, newNode(t, srv, srv.Secret)
		noDrift(t, srv)
	}
}

// Deleted or uninstalled before being retired, for a product only Retired
// frees, and for one no status frees: the seat is freed all the same.
func TestDeletedOrUninstalledBeforeRetired(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 5})
	srv.ImportLicense(t, iss, license.Payload{Product: "software-delivery-6", Seats: 5})
	for _, how := range []string{"delete", "uninstall"} {
		n := newNode(t, srv, srv.Secret)
		n.post([]protocol.Plugin{plug("monitor", "2.0"), plug("software-management", "6.3")}, nil)
		var tr protocol.TaskResponse
		if err := n.call(protocol.KindTaskRequest, &protocol.PluginRequest{Plugin: plug("software-management", "6.3")}, &tr); err != nil {
			t.Fatal(err)
		}
		if v := verdictOf(tr.Verdicts, "software-delivery-6"); v != protocol.VerdictLicensed {
			t.Fatalf("task request: %s", v)
		}
		// Disposed frees neither product: the seats stay.
		if ch, err := srv.Admin.SetStatus(context.Background(), n.id, "Disposed"); err != nil || len(ch.Seats) != 0 {
			t.Fatalf("Disposed freed %+v %v", ch, err)
		}
		var freed int
		if how == "delete" {
			ch, err := srv.Admin.DeleteComputer(context.Background(), n.id, false)
			if err != nil {
				t.Fatal(err)
			}
			freed = len(ch.Seats)
		} else {
			var resp protocol.GoodbyeResponse
			if err := n.call(protocol.KindGoodbye, &protocol.GoodbyeRequest{}, &resp); err != nil {
				t.Fatal(err)
			}
			freed = len(resp.Freed)
		}
		if freed != 2 {
			t.Fatalf("%s freed %d seats, want 2", how, freed)
		}
		for _, p := range []string{"monitor", "software-delivery-6"} {
			if u := usageOf(t, srv, p); u.Consumed != 0 {
				t.Fatalf("%s: %s still consumed %d", how, p, u.Consumed)
			}
		}
		noDrift(t, srv)
	}
}

// A retired computer that posts again stays Retired and holds nothing;
// set Active again, it consumes on its next qualifying post.
func TestRetiredComputerPostsAgain(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "inventory", Seats: 3})
	n := newNode(t, srv, srv.Secret)
	inv := []protocol.Plugin{plug("inventory", "7.1")}
	n.post(inv, samplePackages(3))
	if _, err := srv.Admin.SetStatus(context.Background(), n.id, "Retired"); err != nil {
		t.Fatal(err)
	}
	resp := n.post(inv, samplePackages(3))
	if v := verdictOf(resp.Verdicts, "inventory"); v != protocol.VerdictDiscardedRetired {
		t.Fatalf("retired post: %s", v)
	}
	if resp.Software == nil || resp.Software.Stored {
		t.Fatalf("a retired computer's software was stored: %+v", resp.Software)
	}
	c, _ := srv.Admin.Computer(context.Background(), n.id)
	if c.Status != "Retired" || usageOf(t, srv, "inventory").Consumed != 0 {
		t.Fatalf("status %s, consumed %d", c.Status, usageOf(t, srv, "inventory").Consumed)
	}
	why, err := srv.Admin.Why(context.Background(), n.id, "inventory")
	if err != nil || why.Holds || !strings.Contains(why.Answer, "Retired") {
		t.Fatalf("why: %+v %v", why, err)
	}
	if _, err := srv.Admin.SetStatus(context.Background(), n.id, "Active"); err != nil {
		t.Fatal(err)
	}
	if v := verdictOf(n.post(inv, nil).Verdicts, "inventory"); v != protocol.VerdictLicensed {
		t.Fatalf("set Active, next post: %s", v)
	}
	why, _ = srv.Admin.Why(context.Background(), n.id, "inventory")
	if !why.Holds || why.Seat == nil {
		t.Fatalf("why after: %+v", why)
	}
	noDrift(t, srv)
}

// An expired license and a plug-in build past --upgrade-until are
// discarded with the matching verdict; a second, valid license of the same
// product takes over the seats it can.
func TestExpiryAndUpgradeProtection(t *testing.T) {
	clk := clock.NewManual(time.Now().UTC().Truncate(time.Second))
	srv := servertest.New(t, servertest.WithClock(clk))
	iss := srv.TrustNewIssuer(t)
	trial := srv.ImportLicense(t, iss, license.Payload{Product: "inventory", Seats: 3, Duration: license.TimeLimited,
		Expires: clk.Now().Add(48 * time.Hour).Unix()})
	nodes := []*node{newNode(t, srv, srv.Secret), newNode(t, srv, srv.Secret), newNode(t, srv, srv.Secret)}
	inv := []protocol.Plugin{plug("inventory", "7.1")}
	for _, n := range nodes {
		if v := verdictOf(n.post(inv, nil).Verdicts, "inventory"); v != protocol.VerdictLicensed {
			t.Fatalf("trial: %s", v)
		}
	}
	// A second license with room for two.
	full := srv.ImportLicense(t, iss, license.Payload{Product: "inventory", Seats: 2})
	clk.Advance(72 * time.Hour) // the trial has expired
	ch, err := srv.Store().ExpireLicenses(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	moved, freed := countKinds(ch.Seats)
	if moved != 2 || freed != 1 {
		t.Fatalf("expiry moved %d and freed %d seats, want 2 and 1: %+v", moved, freed, ch.Seats)
	}
	var verdicts []protocol.Verdict
	for _, n := range nodes {
		verdicts = append(verdicts, verdictOf(n.post(inv, nil).Verdicts, "inventory"))
	}
	var licensed, expired int
	for _, v := range verdicts {
		switch v {
		case protocol.VerdictLicensed:
			licensed++
		case protocol.VerdictDiscardedNoSeat, protocol.VerdictDiscardedExpired:
			expired++
		}
	}
	if licensed != 2 || expired != 1 {
		t.Fatalf("after expiry: %v", verdicts)
	}
	u := usageOf(t, srv, "inventory")
	if u.Granted != 2 || u.Consumed != 2 {
		t.Fatalf("usage after expiry: %+v", u)
	}
	for _, l := range u.Licenses {
		if l.ID == trial.ID && (!l.Expired || l.Held != 0) || l.ID == full.ID && l.Held != 2 {
			t.Fatalf("license %+v", l)
		}
	}
	ev, _ := srv.Admin.Events(context.Background(), url.Values{"kind": {store.EventSeatMoved}})
	if len(ev) != 2 || !strings.Contains(ev[0].Reason, "expired") {
		t.Fatalf("audit of moves: %+v", ev)
	}

	// With only expired licenses, data is discarded as expired.
	srv2 := servertest.New(t, servertest.WithClock(clk))
	iss2 := srv2.TrustNewIssuer(t)
	srv2.ImportLicense(t, iss2, license.Payload{Product: "monitor", Seats: 3, Duration: license.TimeLimited, Expires: clk.Now().Add(time.Hour).Unix()})
	m := newNode(t, srv2, srv2.Secret)
	clk.Advance(2 * time.Hour)
	if v := verdictOf(m.post([]protocol.Plugin{plug("monitor", "1.0")}, nil).Verdicts, "monitor"); v != protocol.VerdictDiscardedExpired {
		t.Fatalf("only expired licenses: %s", v)
	}

	// Upgrade protection: builds released after --upgrade-until are not
	// covered; older builds keep working, and a license without the limit
	// takes the newer builds.
	srv3 := servertest.New(t, servertest.WithClock(clk))
	iss3 := srv3.TrustNewIssuer(t)
	srv3.ImportLicense(t, iss3, license.Payload{Product: "patch", Seats: 5, UpgradeUntil: time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC).Unix()})
	oldBuild := protocol.Plugin{Name: "patch", Version: "7.1", BuildDate: "2026-05-01"}
	newBuild := protocol.Plugin{Name: "patch", Version: "7.4", BuildDate: "2026-09-01"}
	a, b := newNode(t, srv3, srv3.Secret), newNode(t, srv3, srv3.Secret)
	if v := verdictOf(a.post([]protocol.Plugin{oldBuild}, nil).Verdicts, "patch"); v != protocol.VerdictLicensed {
		t.Fatalf("old build: %s", v)
	}
	if v := verdictOf(b.post([]protocol.Plugin{newBuild}, nil).Verdicts, "patch"); v != protocol.VerdictDiscardedUpgradeProtection {
		t.Fatalf("new build: %s", v)
	}
	// The holder upgrades past the protection: its seat cannot stay.
	if v := verdictOf(a.post([]protocol.Plugin{newBuild}, nil).Verdicts, "patch"); v != protocol.VerdictDiscardedUpgradeProtection {
		t.Fatalf("holder upgraded: %s", v)
	}
	srv3.ImportLicense(t, iss3, license.Payload{Product: "patch", Seats: 1})
	if v := verdictOf(b.post([]protocol.Plugin{newBuild}, nil).Verdicts, "patch"); v != protocol.VerdictLicensed {
		t.Fatalf("new build with a covering license: %s", v)
	}
	noDrift(t, srv)
	noDrift(t, srv3)
}

func countKinds(cs []store.SeatChange) (moved, freed int) {
	for _, c := range cs {
		switch c.Change {
		case "moved":
			moved++
		case "freed":
			freed++
		}
	}
	return moved, freed
}

// A license file with one byte changed, anywhere, is rejected with a clear
// error and changes nothing; so are untrusted, expired and unknown-product
// files, and one bad file rejects a whole import.
func TestTamperedLicenseRejected(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	good := iss.Mint(t, license.Payload{Product: "monitor", Seats: 10, ID: "L-good"})
	imp := func(files ...string) error {
		var fs []adminapi.LicenseFile
		for i, f := range files {
			fs = append(fs, adminapi.LicenseFile{Name: "f" + string(rune('a'+i)) + ".lic", Data: f})
		}
		_, err := srv.Admin.ImportLicenses(context.Background(), fs)
		return err
	}
	positions := []int{10, len(good) / 2, len(good) - 40, len(good) - 5}
	for _, pos := range positions {
		bad := []byte(string(good))
		bad[pos] ^= 0x01
		err := imp(string(bad))
		if err == nil {
			t.Fatalf("byte %d changed: accepted", pos)
		}
		if !strings.Contains(err.Error(), "nothing was imported") {
			t.Fatalf("byte %d: unclear error %q", pos, err)
		}
	}
	other, _ := license.NewIssuerKey()
	untrusted, _ := license.Issue(other, license.Payload{Product: "monitor", Seats: 1, Kind: "node", Duration: "perpetual", IssuedAt: 1})
	expired := iss.Mint(t, license.Payload{Product: "monitor", Seats: 1, Duration: license.TimeLimited, Expires: time.Now().Add(-time.Hour).Unix()})
	unknown := iss.Mint(t, license.Payload{Product: "no-such-product", Seats: 1})
	for name, tc := range map[string]struct {
		file, want string
	}{
		"untrusted": {string(untrusted), "not trusted"},
		"expired":   {string(expired), "expired"},
		"unknown":   {string(unknown), "does not know"},
		"garbage":   {"hello", "not a Tally license file"},
	} {
		err := imp(tc.file)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	// One bad file among good ones: nothing imported.
	if err := imp(string(good), string(expired)); err == nil {
		t.Fatal("a batch with an expired file was accepted")
	}
	ls, _ := srv.Admin.Licenses(context.Background())
	ev, _ := srv.Admin.Events(context.Background(), url.Values{"kind": {store.EventLicenseImport}})
	if len(ls) != 0 || len(ev) != 0 {
		t.Fatalf("rejected imports changed something: %d licenses, %d events", len(ls), len(ev))
	}
	if err := imp(string(good)); err != nil {
		t.Fatalf("the untouched file: %v", err)
	}
}

// Allocations: a reserved seat cannot be taken by others and is never
// refused to its computer.
func TestAllocationTakesPriority(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	l := srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 2})
	vip, a, b := newNode(t, srv, srv.Secret), newNode(t, srv, srv.Secret), newNode(t, srv, srv.Secret)
	mon := []protocol.Plugin{plug("monitor", "1.0")}
	if _, err := srv.Admin.Allocate(context.Background(), l.ID, vip.id); err != nil {
		t.Fatal(err)
	}
	if v := verdictOf(a.post(mon, nil).Verdicts, "monitor"); v != protocol.VerdictLicensed {
		t.Fatalf("a: %s", v)
	}
	if v := verdictOf(b.post(mon, nil).Verdicts, "monitor"); v != protocol.VerdictDiscardedNoSeat {
		t.Fatalf("b took the allocated seat: %s", v)
	}
	if v := verdictOf(vip.post(mon, nil).Verdicts, "monitor"); v != protocol.VerdictLicensed {
		t.Fatalf("allocated computer refused: %s", v)
	}
	if _, err := srv.Admin.Allocate(context.Background(), l.ID, b.id); err == nil {
		t.Fatal("allocated a seat the license does not have")
	}
	u := usageOf(t, srv, "monitor")
	if u.Consumed != 2 || u.Holders[0].ComputerID != a.id && u.Holders[1].ComputerID != a.id {
		t.Fatalf("usage %+v", u)
	}
	noDrift(t, srv)
}

// Over-the-count behaviours on their requests: denied check-ins, withheld
// tasks, a refused catalog.
func TestOverTheCountBehaviours(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "deployment-6", Seats: 1})
	srv.ImportLicense(t, iss, license.Payload{Product: "software-management", Seats: 1})
	srv.ImportLicense(t, iss, license.Payload{Product: "patch", Seats: 1})
	a, b := newNode(t, srv, srv.Secret), newNode(t, srv, srv.Secret)
	dep := plug("deployment", "6.9")
	var ci protocol.CheckInResponse
	if err := a.call(protocol.KindCheckIn, &protocol.PluginRequest{Plugin: dep}, &ci); err != nil || verdictOf(ci.Verdicts, "deployment-6") != protocol.VerdictLicensed {
		t.Fatalf("first check-in: %+v %v", ci, err)
	}
	ci = protocol.CheckInResponse{}
	if err := b.call(protocol.KindCheckIn, &protocol.PluginRequest{Plugin: dep}, &ci); err != nil || verdictOf(ci.Verdicts, "deployment-6") != protocol.VerdictDeniedNoSeat ||
		ci.Message != "license count exceeded" {
		t.Fatalf("second check-in: %+v %v", ci, err)
	}
	sm := plug("software-management", "7.5")
	a.post([]protocol.Plugin{sm, plug("patch", "7.0")}, nil)
	b.post([]protocol.Plugin{sm, plug("patch", "7.0")}, nil)
	if _, err := srv.Admin.AddTask(context.Background(), a.id, protocol.TaskCollectNow); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Admin.AddTask(context.Background(), b.id, protocol.TaskCollectNow); err != nil {
		t.Fatal(err)
	}
	var tr protocol.TaskResponse
	if err := a.call(protocol.KindTaskRequest, &protocol.PluginRequest{Plugin: sm}, &tr); err != nil || len(tr.Tasks) != 1 {
		t.Fatalf("licensed task request: %+v %v", tr, err)
	}
	tr = protocol.TaskResponse{}
	if err := b.call(protocol.KindTaskRequest, &protocol.PluginRequest{Plugin: sm}, &tr); err != nil || len(tr.Tasks) != 0 ||
		verdictOf(tr.Verdicts, "software-management") != protocol.VerdictDiscardedNoSeat {
		t.Fatalf("unlicensed task request: %+v %v", tr, err)
	}
	var cr protocol.CatalogResponse
	if err := b.call(protocol.KindCatalogRequest, &protocol.PluginRequest{Plugin: plug("patch", "7.0")}, &cr); err != nil ||
		verdictOf(cr.Verdicts, "patch") != protocol.VerdictDeniedNoSeat {
		t.Fatalf("unlicensed catalog request: %+v %v", cr, err)
	}
	var pr protocol.VerdictResponse
	scan := &protocol.PatchScan{Scanned: 10}
	if err := b.call(protocol.KindPluginData, &protocol.PluginDataRequest{Plugin: plug("patch", "7.0"), PatchScan: scan}, &pr); err != nil ||
		verdictOf(pr.Verdicts, "patch") != protocol.VerdictDiscardedNoSeat {
		t.Fatalf("unlicensed scan: %+v %v", pr, err)
	}
	noDrift(t, srv)
}

// A plug-in's goodbye changes the computer's plug-in list, so the stored
// basic inventory's hash no longer describes it: an agent that then sends
// only that hash (its plug-in back, its basic inventory as before) is asked
// for the whole basic inventory, and its plug-in's product is decided again.
func TestPluginGoodbyeForgetsTheBasicHash(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 1})
	n := newNode(t, srv, srv.Secret)
	basic, _ := n.CollectBasic(context.Background())
	basic.Plugins = []protocol.Plugin{plug("monitor", "2.0")}
	var resp protocol.InventoryResponse
	if err := n.call(protocol.KindInventory, &protocol.InventoryRequest{Basic: basic}, &resp); err != nil {
		t.Fatal(err)
	}
	if v := verdictOf(resp.Verdicts, "monitor"); v != protocol.VerdictLicensed {
		t.Fatalf("first post: monitor %s", v)
	}
	hashOnly := &protocol.InventoryRequest{BasicHash: basic.Hash()}
	resp = protocol.InventoryResponse{}
	if err := n.call(protocol.KindInventory, hashOnly, &resp); err != nil || resp.SendBasic {
		t.Fatalf("hash of the stored basic inventory: send-basic %v, %v", resp.SendBasic, err)
	}
	var bye protocol.GoodbyeResponse
	if err := n.call(protocol.KindGoodbye, &protocol.GoodbyeRequest{Plugin: "monitor"}, &bye); err != nil || len(bye.Freed) != 1 {
		t.Fatalf("plug-in goodbye: %+v %v", bye, err)
	}
	resp = protocol.InventoryResponse{}
	if err := n.call(protocol.KindInventory, hashOnly, &resp); err != nil {
		t.Fatal(err)
	}
	if !resp.SendBasic {
		t.Fatal("after the plug-in's goodbye, the old basic inventory's hash was taken as the computer's")
	}
	resp = protocol.InventoryResponse{}
	if err := n.call(protocol.KindInventory, &protocol.InventoryRequest{Basic: basic}, &resp); err != nil {
		t.Fatal(err)
	}
	if v := verdictOf(resp.Verdicts, "monitor"); v != protocol.VerdictLicensed || resp.SendBasic {
		t.Fatalf("the whole basic inventory again: monitor %s, send-basic %v", v, resp.SendBasic)
	}
	noDrift(t, srv)
}
