package ledger

import (
	"errors"
	"fmt"
	"sort"

	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/engine"
	"github.com/tallyhq/tally/server/store"
)

// decide runs the engine on a post of the node's computer, after sweeping
// expired licenses of the products concerned, and applies the decision.
// Most posts of a fleet that holds its seats need no seat counts: the
// engine says so, and the licenses' dates then come from the backend's
// cache instead of a query.
func (l *Ledger) decide(tx Tx, n *Node, post engine.Post, extra []string) (engine.Decision, error) {
	actor := store.NodeActor(n.ID)
	c, err := l.computerOf(tx, n, false)
	if err != nil {
		return engine.Decision{}, err
	}
	products := productsOf(c, extra...)
	meta, sweep, err := tx.LicenseDates(products)
	if err != nil {
		return engine.Decision{}, err
	}
	if sweep {
		swept, err := l.SweepExpired(tx, products, actor)
		if err != nil {
			return engine.Decision{}, err
		}
		tx.MarkSwept(meta)
		if len(swept) > 0 {
			// The sweep changed seats: read them again.
			if c, err = l.computerOf(tx, n, true); err != nil {
				return engine.Decision{}, err
			}
		}
	}
	pool := meta
	if l.engine.NeedsCounts(c, meta, post, tx.Now()) {
		if pool, err = tx.LicenseCounts(products); err != nil {
			return engine.Decision{}, err
		}
	}
	d := l.engine.DecidePost(c, pool, post, tx.Now())
	if _, err := ApplyDecision(tx, d, actor, n.ID); err != nil {
		return d, err
	}
	if f := l.opts.OnVerdicts; f != nil && len(d.Verdicts) > 0 {
		vs := d.Verdicts
		tx.OnCommit(func() { f(vs) })
	}
	return d, nil
}

// computerOf builds the engine's view of the node's computer.
func (l *Ledger) computerOf(tx Tx, n *Node, again bool) (engine.Computer, error) {
	c := engine.Computer{ID: n.ComputerID, Status: n.Status, Plugins: l.Plugins(n.Plugins).Plugins}
	var err error
	c.Seats, c.Allocations, err = tx.Seats(*n, again)
	return c, err
}

// productsOf lists the products a decision about c needs: those of its
// seats, allocations and the extra ones given, de-duplicated.
func productsOf(c engine.Computer, extra ...string) []string {
	set := map[string]bool{}
	for p := range c.Seats {
		set[p] = true
	}
	for p := range c.Allocations {
		set[p] = true
	}
	for _, p := range extra {
		set[p] = true
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// ApplyDecision writes the engine's effects: seats, license counters,
// discards and the audit log, all in tx. It re-checks every license it
// adds a seat to, so that a bug can never commit a count above what the
// license grants.
func ApplyDecision(tx Tx, d engine.Decision, actor, nodeID string) ([]store.SeatChange, error) {
	var changes []store.SeatChange
	var touched []string
	for _, e := range d.Effects {
		switch e.Kind {
		case engine.Consume:
			if err := tx.ConsumeSeat(e); err != nil {
				return nil, err
			}
			touched = append(touched, e.License)
			changes = append(changes, store.SeatChange{Change: "consumed", ComputerID: e.ComputerID, Product: e.Product, License: e.License, Reason: e.Reason})
			if err := tx.AddEvent(store.Event{Actor: actor, Kind: store.EventSeatConsumed, ComputerID: e.ComputerID, NodeID: nodeID,
				Product: e.Product, Reason: "license " + e.License + ": " + e.Reason}); err != nil {
				return nil, err
			}
		case engine.Free:
			freed, err := tx.FreeSeat(e)
			if err != nil {
				return nil, err
			}
			if !freed {
				continue
			}
			changes = append(changes, store.SeatChange{Change: "freed", ComputerID: e.ComputerID, Product: e.Product, License: e.From, Reason: e.Reason})
			if err := tx.AddEvent(store.Event{Actor: actor, Kind: store.EventSeatFreed, ComputerID: e.ComputerID, NodeID: nodeID,
				Product: e.Product, Reason: "license " + e.From + ": " + e.Reason}); err != nil {
				return nil, err
			}
		case engine.Move:
			if err := tx.MoveSeat(e); err != nil {
				return nil, err
			}
			touched = append(touched, e.License)
			changes = append(changes, store.SeatChange{Change: "moved", ComputerID: e.ComputerID, Product: e.Product, License: e.License, From: e.From, Reason: e.Reason})
			if err := tx.AddEvent(store.Event{Actor: actor, Kind: store.EventSeatMoved, ComputerID: e.ComputerID, NodeID: nodeID,
				Product: e.Product, Reason: e.Reason}); err != nil {
				return nil, err
			}
		case engine.Discard:
			if err := tx.CountRefusal(catalog.KindNode, e.ComputerID, e.Product, e.Verdict, nodeID, actor); err != nil {
				return nil, err
			}
		}
	}
	checked := map[string]bool{}
	for _, id := range touched {
		if checked[id] {
			continue
		}
		checked[id] = true
		// The seat rows against the verified grant, not a counter.
		seats, held, reserved, err := tx.LicenseLoad(id)
		if err != nil {
			return nil, fmt.Errorf("check license %s: %w", id, err)
		}
		if held+reserved > seats {
			return nil, fmt.Errorf("refusing to commit: license %s would hold %d seats and reserve %d of %d", id, held, reserved, seats)
		}
	}
	return changes, nil
}

// SweepExpired moves or frees the seats held on licenses of products (nil:
// all) that have expired by tx.Now. Posts call it for the products they
// touch, the scheduler and maintenance for all.
func (l *Ledger) SweepExpired(tx Tx, products []string, actor string) ([]store.SeatChange, error) {
	if products != nil && len(products) == 0 {
		return nil, nil
	}
	byProduct, err := tx.ExpiredWithSeats(products)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(byProduct))
	for p := range byProduct {
		names = append(names, p)
	}
	sort.Strings(names)
	var changes []store.SeatChange
	for _, product := range names {
		ch, err := l.Rebalance(tx, product, byProduct[product], "", actor)
		if err != nil {
			return nil, err
		}
		changes = append(changes, ch...)
	}
	return changes, nil
}

// Rebalance re-examines the seats held on the given licenses of a product
// (expired, or being removed: removing is left out of the pool).
func (l *Ledger) Rebalance(tx Tx, product string, licenses []string, removing, actor string) ([]store.SeatChange, error) {
	pool, err := tx.LicenseCounts([]string{product})
	if err != nil {
		return nil, err
	}
	if removing != "" {
		var keep []*engine.License
		for _, lic := range pool[product] {
			if lic.ID != removing {
				keep = append(keep, lic)
			}
		}
		pool[product] = keep
	}
	var holders []engine.Holder
	for _, lic := range licenses {
		ids, err := tx.SeatHolders(lic)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			c, _, err := tx.Computer(id)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			c.ID = id
			holders = append(holders, engine.Holder{Computer: c, Product: product, License: lic})
		}
	}
	d := l.engine.Rebalance(holders, pool, tx.Now())
	return ApplyDecision(tx, d, actor, "")
}
