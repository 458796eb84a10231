package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
)

// propertyProducts are the products the property's licenses are for: a
// plug-in presence product freed by Retired, one freed by any non-Active
// status, and one of check-ins freed only by deletion.
var propertyProducts = []string{"monitor", "inventory", "deployment-6"}

// propertyLicense is what the model knows of a license it imported.
type propertyLicense struct {
	product string
	seats   int
	ends    time.Time // zero: perpetual
}

// Random sequences of requests and administration (posts, check-ins,
// goodbyes, statuses, deletions, allocations, imports, removals, time
// passing, repeated requests) never hold more seats than the licenses
// valid now grant, and a repeated request changes nothing.
//
// The runs share one backend, each starting with no license (the previous
// run's are removed) and computers of its own: opening a fresh backend per
// run cost more than the runs.
func testProperty(t *testing.T, e *env) {
	minted := 0
	rapid.Check(t, func(rt *rapid.T) {
		e.reset(rt)
		licenses := map[string]propertyLicense{}
		var nodes []*node
		removed := map[*node]bool{}      // deleted or uninstalled
		last := map[*node]func() error{} // each node's last request, to repeat

		live := func(rt *rapid.T) *node {
			var ns []*node
			for _, n := range nodes {
				if !removed[n] {
					ns = append(ns, n)
				}
			}
			if len(ns) == 0 {
				return nil
			}
			return rapid.SampledFrom(ns).Draw(rt, "node")
		}
		// send runs a node request and keeps it to repeat.
		send := func(rt *rapid.T, n *node, req func(seq uint64) error) {
			seq := n.seq.Load() + 1
			if err := req(seq); err != nil {
				rt.Fatalf("%s, request %d: %v", n.hostname, seq, err)
			}
			last[n] = func() error { return req(seq) }
		}
		granted := func(product string) int {
			g := 0
			for _, l := range licenses {
				if l.product == product && (l.ends.IsZero() || !e.clk.Now().After(l.ends)) {
					g += l.seats
				}
			}
			return g
		}
		// check reads each product's usage: its seat rows and its
		// licenses' counters.
		check := func(rt *rapid.T) {
			for _, p := range propertyProducts {
				u := e.usage(rt, p, store.SeatNode)
				if g := granted(p); u.Granted != g || u.Consumed > g || len(u.Holders) != u.Consumed {
					rt.Fatalf("%s: granted %d (licenses valid now grant %d), consumed %d, %d holders", p, u.Granted, g, u.Consumed, len(u.Holders))
				}
				for _, l := range u.Licenses {
					if l.Held > l.Seats {
						rt.Fatalf("license %s holds %d of %d", l.ID, l.Held, l.Seats)
					}
				}
			}
		}

		actions := map[string]func(*rapid.T){
			"enroll": func(rt *rapid.T) {
				if len(nodes) < 6 {
					nodes = append(nodes, e.enroll(rt))
				}
			},
			"import": func(rt *rapid.T) {
				minted++
				p := license.Payload{ID: fmt.Sprintf("L-prop-%d", minted), Product: rapid.SampledFrom(propertyProducts).Draw(rt, "product"),
					Seats: uint32(rapid.IntRange(1, 3).Draw(rt, "seats"))}
				l := propertyLicense{product: p.Product, seats: int(p.Seats)}
				if rapid.Bool().Draw(rt, "expires") {
					// Half an hour off the hours the clock moves by: never
					// on the boundary.
					p.Expires = e.clk.Now().Add(time.Duration(rapid.IntRange(1, 24).Draw(rt, "hours"))*time.Hour - 30*time.Minute).Unix()
					l.ends = p.ExpiresAt()
				}
				e.importLicense(rt, p)
				licenses[p.ID] = l
			},
			"remove license": func(rt *rapid.T) {
				if len(licenses) == 0 {
					return
				}
				id := rapid.SampledFrom(sortedKeys(licenses)).Draw(rt, "license")
				if _, err := e.s.RemoveLicense(e.ctx, id, "admin:alice"); err != nil {
					rt.Fatal(err)
				}
				delete(licenses, id)
			},
			"post": func(rt *rapid.T) {
				n := live(rt)
				if n == nil {
					return
				}
				pls := rapid.SliceOfNDistinct(rapid.SampledFrom([]protocol.Plugin{monitor, inventory7}), 0, 2,
					func(p protocol.Plugin) string { return p.Name }).Draw(rt, "plugins")
				send(rt, n, func(seq uint64) error {
					_, err := e.postInventoryAt(n, seq, protocol.InventoryRequest{Basic: n.basic(pls...)})
					return err
				})
			},
			"check in": func(rt *rapid.T) {
				n := live(rt)
				if n == nil {
					return
				}
				send(rt, n, func(seq uint64) error { _, err := e.checkInAt(n, seq, deploy6); return err })
			},
			"goodbye": func(rt *rapid.T) {
				n := live(rt)
				if n == nil {
					return
				}
				plugin := rapid.SampledFrom([]string{"monitor", "inventory", ""}).Draw(rt, "plug-in")
				send(rt, n, func(seq uint64) error { _, err := e.goodbyeAt(n, seq, plugin); return err })
				if plugin == "" {
					removed[n] = true
				}
			},
			"repeat": func(rt *rapid.T) {
				n := live(rt)
				again, ok := last[n]
				if n == nil || !ok {
					return
				}
				before := e.auditLog(rt)
				if err := again(); err != nil {
					rt.Fatalf("repeat: %v", err)
				}
				if after := e.auditLog(rt); !reflect.DeepEqual(after, before) {
					rt.Fatalf("a repeated request wrote %d audit events", len(after)-len(before))
				}
			},
			"status": func(rt *rapid.T) {
				n := live(rt)
				if n == nil {
					return
				}
				e.setStatus(rt, n, rapid.SampledFrom([]string{"Active", "Active", "Retired", "Disposed", "Missing"}).Draw(rt, "status"))
			},
			"delete": func(rt *rapid.T) {
				n := live(rt)
				if n == nil {
					return
				}
				if _, err := e.s.DeleteComputer(e.ctx, n.computer, false, "admin:alice"); err != nil {
					rt.Fatal(err)
				}
				removed[n] = true
			},
			"allocate": func(rt *rapid.T) {
				n := live(rt)
				if len(licenses) == 0 || n == nil {
					return
				}
				id := rapid.SampledFrom(sortedKeys(licenses)).Draw(rt, "license")
				// Refused when the license is full or expired, or the
				// computer has an allocation of the product: fine.
				if _, err := e.s.Allocate(e.ctx, id, n.computer, "admin:alice"); err != nil &&
					!errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrInvalid) {
					rt.Fatalf("allocate: %v", err)
				}
			},
			"time passes": func(rt *rapid.T) {
				e.clk.Advance(time.Duration(rapid.IntRange(1, 12).Draw(rt, "hours")) * time.Hour)
				// The scheduler settles every expiry when it comes: until
				// then usage counts the expired license's seats as held.
				if _, err := e.s.ExpireLicenses(e.ctx); err != nil {
					rt.Fatal(err)
				}
			},
		}
		// Each run starts with licenses and computers, and posts are drawn
		// more often than the rest, so that seats are contended.
		for range rapid.IntRange(1, 3).Draw(rt, "licenses") {
			actions["import"](rt)
		}
		for range rapid.IntRange(2, 3).Draw(rt, "computers") {
			actions["enroll"](rt)
		}
		names := sortedKeys(actions)
		names = append(names, "post", "post", "post", "check in", "check in")
		// Only these steps can take a seat or shrink a grant.
		takesOrShrinks := map[string]bool{"post": true, "check in": true, "repeat": true, "remove license": true, "time passes": true}
		for range rapid.IntRange(1, 8).Draw(rt, "steps") {
			a := rapid.SampledFrom(names).Draw(rt, "action")
			actions[a](rt)
			if takesOrShrinks[a] {
				check(rt)
			}
		}
	})
}

// reset removes every license, so that a run of the property starts with
// no seat held (the computers of earlier runs stay, holding nothing, and
// post no more).
func (e *env) reset(t tb) {
	t.Helper()
	for _, l := range ok(e.s.Licenses(e.ctx))(t) {
		if _, err := e.s.RemoveLicense(e.ctx, l.ID, "admin:alice"); err != nil {
			t.Fatalf("reset: %v", err)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
