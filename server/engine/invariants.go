package engine

import (
	"fmt"
	"sort"
	"time"

	"github.com/tallyhq/tally/protocol"
)

// SeatFact is one held seat as stored.
type SeatFact struct {
	ComputerID int64
	Product    string
	License    string
}

// ComputerFact is what the invariants need of a computer.
type ComputerFact struct {
	Status  string
	Deleted bool
	Plugins []protocol.Plugin
}

// AllocationFact is one allocation of a license to a computer.
type AllocationFact struct {
	License    string
	ComputerID int64
}

// Snapshot is the whole licensing state, read in one transaction.
type Snapshot struct {
	Licenses    []*License // Held as stored (a counter the store maintains)
	Seats       []SeatFact
	Computers   map[int64]ComputerFact
	Allocations []AllocationFact
}

// Violation is a broken invariant.
type Violation struct {
	Kind   string // "counter", "oversubscribed", "expired-held", "holder", "duplicate", "orphan"
	Detail string
	// License and Held give the repair for a counter drift: set the
	// license's counter to Held.
	License string
	Held    int
}

func (v Violation) String() string { return v.Kind + ": " + v.Detail }

// Check verifies the invariants of DESIGN §4 on a snapshot: held never
// exceeds granted, per license (allocations reserved); stored counters
// equal the seats; at most one seat per computer and product; every holder
// is a live computer whose status and plug-ins allow the seat; no seat on a
// license that no longer grants. An empty result means no drift.
func (e *Engine) Check(s Snapshot, now time.Time) []Violation {
	var out []Violation
	byID := map[string]*License{}
	for _, l := range s.Licenses {
		byID[l.ID] = l
	}
	count := map[string]int{}
	holds := map[string]bool{} // computer/product/license
	seen := map[string]bool{}
	for _, st := range s.Seats {
		key := fmt.Sprintf("%d/%s", st.ComputerID, st.Product)
		if seen[key] {
			out = append(out, Violation{Kind: "duplicate", Detail: fmt.Sprintf("computer %d holds two seats of %s", st.ComputerID, st.Product)})
		}
		seen[key] = true
		holds[fmt.Sprintf("%d/%s", st.ComputerID, st.License)] = true
		l := byID[st.License]
		if l == nil {
			out = append(out, Violation{Kind: "orphan", Detail: fmt.Sprintf("computer %d holds a seat of %s on unknown license %s", st.ComputerID, st.Product, st.License)})
			continue
		}
		count[l.ID]++
		if l.Product != st.Product {
			out = append(out, Violation{Kind: "orphan", Detail: fmt.Sprintf("computer %d holds a %s seat on license %s of %s", st.ComputerID, st.Product, l.ID, l.Product)})
		}
		c, ok := s.Computers[st.ComputerID]
		if !ok || c.Deleted {
			out = append(out, Violation{Kind: "holder", Detail: fmt.Sprintf("deleted or unknown computer %d holds a seat of %s", st.ComputerID, st.Product)})
			continue
		}
		p, ok := e.cat.Product(st.Product)
		if !ok {
			out = append(out, Violation{Kind: "holder", Detail: fmt.Sprintf("computer %d holds a seat of %s, which is not in the catalog", st.ComputerID, st.Product)})
			continue
		}
		if p.FreedByStatus(c.Status) {
			out = append(out, Violation{Kind: "holder", Detail: fmt.Sprintf("computer %d is %s, which frees %s, yet holds its seat", st.ComputerID, c.Status, st.Product)})
		}
		if p.PluginRemovalFrees {
			if _, ok := pluginFor(p, c.Plugins); !ok {
				out = append(out, Violation{Kind: "holder", Detail: fmt.Sprintf("computer %d holds a seat of %s without its plug-in", st.ComputerID, st.Product)})
			}
		}
	}
	reserved := map[string]int{}
	for _, a := range s.Allocations {
		if !holds[fmt.Sprintf("%d/%s", a.ComputerID, a.License)] {
			reserved[a.License]++
		}
	}
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		l := byID[id]
		if l.Held != count[id] {
			out = append(out, Violation{Kind: "counter", License: id, Held: count[id],
				Detail: fmt.Sprintf("license %s counts %d held seats, %d are stored", id, l.Held, count[id])})
		}
		if !l.Valid(now) {
			if count[id] > 0 {
				out = append(out, Violation{Kind: "expired-held", Detail: fmt.Sprintf("license %s has expired but carries %d seats", id, count[id])})
			}
			continue
		}
		if count[id]+reserved[id] > l.Seats {
			out = append(out, Violation{Kind: "oversubscribed", Detail: fmt.Sprintf("license %s grants %d seats; %d are held and %d reserved by allocations",
				id, l.Seats, count[id], reserved[id])})
		}
	}
	return out
}
