package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
)

// Many nodes post, check in, activate and lease at once against few seats
// of several licenses and pools, while an administrator retires, restores,
// allocates and deletes: no pool ever holds more seats than it grants, by
// the store's reports, by each computer's seats and by the audit log
// replayed in order.
func testConcurrentSeats(t *testing.T, e *env) {
	const nodes, rounds = 32, 5
	e.importLicense(t, license.Payload{ID: "L-mon-a", Product: "monitor", Seats: 3})
	e.importLicense(t, license.Payload{ID: "L-mon-b", Product: "monitor", Seats: 2, Expires: start.AddDate(1, 0, 0).Unix()})
	e.importLicense(t, license.Payload{ID: "L-inv", Product: "inventory", Seats: 4})
	e.importLicense(t, license.Payload{ID: "L-dep6", Product: "deployment-6", Seats: 3})
	e.importLicense(t, license.Payload{ID: "L-nl", Product: "monitor", Seats: 3, Kind: license.KindNodeLocked})
	e.importLicense(t, license.Payload{ID: "L-cc", Product: "monitor", Seats: 2, Kind: license.KindConcurrent})
	act1, err := e.s.CreateActivation(e.ctx, "monitor", 2, nil, "admin:alice")
	if err != nil {
		t.Fatal(err)
	}
	act2, err := e.s.CreateActivation(e.ctx, "monitor", 1, nil, "admin:alice")
	if err != nil {
		t.Fatal(err)
	}
	ns := make([]*node, nodes)
	for i := range ns {
		ns[i] = e.enroll(t)
	}
	if _, err := e.s.Allocate(e.ctx, "L-mon-a", ns[nodes-1].computer, "admin:alice"); err != nil {
		t.Fatalf("allocate: %v", err)
	}

	// gone reports a request refused because an administrator deleted the
	// computer meanwhile: the worker stops.
	gone := func(err error) bool { return errors.Is(err, store.ErrRevoked) }
	var wg sync.WaitGroup
	errs := make(chan error, nodes+1)
	for i, n := range ns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 15))
			for range rounds {
				pls := []protocol.Plugin{monitor}
				if rng.IntN(3) > 0 {
					pls = append(pls, inventory7)
				}
				steps := []func() error{
					func() error {
						_, err := e.postInventory(n, protocol.InventoryRequest{Basic: n.basic(pls...)})
						return err
					},
					func() error { _, err := e.checkIn(n, deploy6); return err },
					func() error { _, err := e.lease(n, "monitor", 5*time.Minute); return err },
					func() error {
						id := act1.ID
						if rng.IntN(2) == 0 {
							id = act2.ID
						}
						_, err := e.activate(n, id)
						return err
					},
				}
				// And one way of giving something back, now and then.
				switch rng.IntN(5) {
				case 0:
					steps = append(steps, func() error { _, err := e.goodbye(n, "monitor"); return err })
				case 1:
					steps = append(steps, func() error { _, err := e.lease(n, "monitor", checkin); return err })
				case 2:
					steps = append(steps, func() error { _, err := e.deactivate(n, act1.ID); return err })
				}
				rng.Shuffle(len(steps), func(a, b int) { steps[a], steps[b] = steps[b], steps[a] })
				for _, step := range steps {
					if err := step(); gone(err) {
						return
					} else if err != nil {
						errs <- fmt.Errorf("%s: %w", n.hostname, err)
						return
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(15, 2))
		for i := range 3 * nodes {
			n := ns[rng.IntN(nodes-2)]
			status := []string{"Retired", "Active", "Disposed", "Active"}[i%4]
			if _, err := e.s.SetStatus(e.ctx, n.computer, status, "admin:alice"); err != nil {
				errs <- fmt.Errorf("set status: %w", err)
				return
			}
		}
		for _, n := range ns[nodes-3 : nodes-1] {
			if _, err := e.s.DeleteComputer(e.ctx, n.computer, false, "admin:alice"); err != nil {
				errs <- fmt.Errorf("delete: %w", err)
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	granted := map[string]int{"monitor": 5, "inventory": 4, "deployment-6": 3}
	e.checkHeldWithinGranted(t, granted, ns)
	e.checkAuditWithinGranted(t, granted)
	if t.Failed() {
		return
	}
	// The race did contend: every node pool was filled at some point.
	for product, g := range granted {
		if n := len(e.events(t, store.EventFilter{Kind: store.EventSeatConsumed, Product: product})); n < g {
			t.Errorf("%s: only %d seats consumed in the race, the pool grants %d", product, n, g)
		}
	}
}

// checkHeldWithinGranted checks every pool against its grant through the
// store's reports: usage, licenses, each computer's seats, Activation IDs
// and leases.
func (e *env) checkHeldWithinGranted(t tb, granted map[string]int, ns []*node) {
	t.Helper()
	ls, err := e.s.Licenses(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.Held > l.Seats {
			t.Errorf("license %s holds %d seats of %d", l.ID, l.Held, l.Seats)
		}
	}
	byComputer := map[string]int{} // product → computers whose own record holds a node seat of it
	for _, n := range ns {
		c, err := e.s.Computer(e.ctx, n.computer)
		if errors.Is(err, store.ErrNotFound) || err == nil && c.Deleted {
			if err == nil && len(c.Seats) > 0 {
				t.Errorf("deleted computer %d holds %+v", n.computer, c.Seats)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, s := range c.Seats {
			k := s.Kind + "/" + s.Product
			if seen[k] {
				t.Errorf("computer %d holds two %s seats of %s", c.ID, s.Kind, s.Product)
			}
			seen[k] = true
			if s.Kind == store.SeatNode {
				byComputer[s.Product]++
			}
		}
	}
	for product, g := range granted {
		u := e.usage(t, product, store.SeatNode)
		if u.Granted != g || u.Consumed > u.Granted || len(u.Holders) != u.Consumed || byComputer[product] != u.Consumed {
			t.Errorf("%s: granted %d (want %d), consumed %d, %d holders listed, %d computers holding one",
				product, u.Granted, g, u.Consumed, len(u.Holders), byComputer[product])
		}
	}
	acts, err := e.s.ActivationList(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acts {
		if a.InUse > a.Quantity || len(a.Holders) != a.InUse {
			t.Errorf("Activation ID %s: %d in use of %d, %d holders", a.ID, a.InUse, a.Quantity, len(a.Holders))
		}
	}
	leases, err := e.s.Leases(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	perProduct := map[string]int{}
	for _, l := range leases {
		perProduct[l.Product]++
	}
	for _, kind := range []string{store.SeatNodeLocked, store.SeatConcurrent} {
		u := e.usage(t, "monitor", kind)
		if u.Consumed > u.Granted {
			t.Errorf("monitor %s: %d held of %d", kind, u.Consumed, u.Granted)
		}
		if kind == store.SeatConcurrent && perProduct["monitor"] != u.Consumed {
			t.Errorf("monitor leases: %d listed, usage says %d", perProduct["monitor"], u.Consumed)
		}
	}
}

// checkAuditWithinGranted replays the node seats' audit events in order:
// at no point do they show more holders than granted, and at the end they
// show exactly the holders usage reports.
func (e *env) checkAuditWithinGranted(t tb, granted map[string]int) {
	t.Helper()
	var ev []store.Event
	for _, kind := range []string{store.EventSeatConsumed, store.EventSeatFreed} {
		ev = append(ev, e.events(t, store.EventFilter{Kind: kind})...)
	}
	sort.Slice(ev, func(i, j int) bool { return ev[i].ID < ev[j].ID })
	held := map[string]map[int64]bool{}
	for _, x := range ev {
		if _, ok := granted[x.Product]; !ok {
			continue
		}
		if held[x.Product] == nil {
			held[x.Product] = map[int64]bool{}
		}
		switch x.Kind {
		case store.EventSeatConsumed:
			if held[x.Product][x.ComputerID] {
				t.Errorf("event %d: computer %d consumed a second seat of %s", x.ID, x.ComputerID, x.Product)
			}
			held[x.Product][x.ComputerID] = true
			if n := len(held[x.Product]); n > granted[x.Product] {
				t.Errorf("event %d: %d seats of %s held, %d granted", x.ID, n, x.Product, granted[x.Product])
			}
		case store.EventSeatFreed:
			if !held[x.Product][x.ComputerID] {
				t.Errorf("event %d: computer %d freed a seat of %s it did not hold", x.ID, x.ComputerID, x.Product)
			}
			delete(held[x.Product], x.ComputerID)
		}
		if x.Actor == "" {
			t.Errorf("event %d (%s) names no actor", x.ID, x.Kind)
		}
	}
	for product := range granted {
		now := e.holders(t, product)
		if len(now) != len(held[product]) {
			t.Errorf("%s: the audit log leaves %d holders, usage lists %d", product, len(held[product]), len(now))
		}
		for c := range held[product] {
			if !now[c] {
				t.Errorf("%s: the audit log says computer %d holds a seat, usage does not", product, c)
			}
		}
	}
}
