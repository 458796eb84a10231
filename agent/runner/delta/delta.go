// Package delta turns the inventory snapshots the agent spools into the
// posts it sends: the basic inventory left out (its hash sent instead)
// when the server holds it already, the software set as the changes since
// the set the server acknowledged. It is pure: the acknowledged state
// comes in, and advances only by Apply on the server's answer to the post
// Plan made.
//
// Why at send time: a spooled post may wait for days and be sent after
// others. Planning each post just before it is sent, against the state the
// answers to all earlier posts produced, keeps every delta based on a
// generation the server really holds, whatever the order of queueing, a
// crash, or a repeat. Plan is deterministic (same snapshot, same state,
// same post), so a post re-sent after a crash is the same request the
// server answers as a repeat.
package delta

import (
	"slices"
	"strings"
	"time"

	"github.com/tallyhq/tally/agent/state"
	"github.com/tallyhq/tally/protocol"
)

// BasicRefresh is how often the whole basic inventory is sent even when
// its hash is unchanged: the hash leaves out the disks' free bytes, which
// the server should still see change.
const BasicRefresh = 24 * time.Hour

// key is a package's identity, the fields protocol.ItemHash covers.
func key(p *protocol.Package) string {
	return p.Source + "\x00" + p.Name + "\x00" + p.Version + "\x00" + p.Arch + "\x00" + p.Publisher
}

// Normalize makes a full software inventory canonical: sorted by
// identity, each identity once (the server keeps one row per identity, so
// its hash counts one), Count and Hash set. The first of duplicates
// (after sorting, the earliest install date) stays.
func Normalize(sw *protocol.SoftwareInventory) {
	ps := sw.Packages
	slices.SortStableFunc(ps, func(a, b protocol.Package) int {
		if c := strings.Compare(key(&a), key(&b)); c != 0 {
			return c
		}
		return int(min(max(a.InstallDate-b.InstallDate, -1), 1))
	})
	out := ps[:0]
	for i := range ps {
		if i > 0 && key(&ps[i]) == key(&out[len(out)-1]) {
			continue
		}
		out = append(out, ps[i])
	}
	clear(ps[len(out):])
	sw.Packages = out
	sw.Full = true
	sw.Count = uint32(len(out))
	sw.Hash = protocol.HashPackages(out).String()
}

// IsProbe reports whether a spooled software part is the probe the
// inventory plug-in sends while its product is refused: not full, and
// empty. It is sent as an empty delta against the acknowledged set.
func IsProbe(sw *protocol.SoftwareInventory) bool {
	return sw != nil && !sw.Full && sw.Base == 0 && len(sw.Packages) == 0 && len(sw.Added) == 0 && len(sw.Removed) == 0 && sw.Hash == ""
}

// SoftwareForm is how a post carried the software set.
type SoftwareForm uint8

// Forms of the software part of a post.
const (
	NoSoftware SoftwareForm = iota
	Full
	Delta
	Probe
)

// Pending is what the answer to one planned post may change in the
// acknowledged state.
type Pending struct {
	BasicSent bool   // the whole basic inventory was sent
	BasicHash string // its hash
	At        int64  // when the snapshot was taken, unix milliseconds
	Software  SoftwareForm
	// Set, Hash and Count are the snapshot's software set: the state the
	// server holds once it stores the post.
	Set   []protocol.Package
	Hash  string
	Count uint32
}

// Plan turns a spooled snapshot (whole basic inventory, whole software
// set or a probe), taken at created, into the request to send against the
// acknowledged state ack.
func Plan(snap protocol.InventoryRequest, created time.Time, ack *state.Ack) (protocol.InventoryRequest, Pending) {
	p := Pending{At: created.UnixMilli()}
	var out protocol.InventoryRequest
	switch {
	case !snap.HasBasic():
		out.BasicHash = snap.BasicHash // already hash-only (not made by this agent's queueing)
	default:
		h := snap.Basic.Hash()
		fresh := !ack.BasicSent().IsZero() && created.Sub(ack.BasicSent()) < BasicRefresh && !created.Before(ack.BasicSent())
		if h != "" && h == ack.BasicHash && !ack.NeedBasic && fresh {
			out.BasicHash = h
		} else {
			out.Basic = snap.Basic
			p.BasicSent, p.BasicHash = true, h
		}
	}
	sw := snap.Software
	switch {
	case sw == nil:
	case IsProbe(sw):
		p.Software = Probe
		out.Software = &protocol.SoftwareInventory{Base: ack.Generation, Hash: ack.Hash, Count: ack.Count}
		if ack.Generation == 0 {
			out.Software = &protocol.SoftwareInventory{}
		}
	case !sw.Full:
		out.Software = sw // a delta made elsewhere: sent as it is, never acknowledged as a set
	default:
		p.Set, p.Hash, p.Count = sw.Packages, sw.Hash, sw.Count
		if ack.Generation == 0 || ack.NeedFull {
			p.Software = Full
			out.Software = sw
			break
		}
		p.Software = Delta
		added, removed := Diff(ack.Packages, sw.Packages)
		out.Software = &protocol.SoftwareInventory{Base: ack.Generation, Added: added, Removed: removed, Hash: sw.Hash, Count: sw.Count}
	}
	return out, p
}

// Diff returns what to add to and remove from old to get new. Both are
// normalized sets; the results are in identity order.
func Diff(old, new []protocol.Package) (added, removed []protocol.Package) {
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		switch {
		case i == len(old):
			added = append(added, new[j])
			j++
		case j == len(new):
			removed = append(removed, old[i])
			i++
		default:
			switch c := strings.Compare(key(&old[i]), key(&new[j])); {
			case c == 0:
				i++
				j++
			case c < 0:
				removed = append(removed, old[i])
				i++
			default:
				added = append(added, new[j])
				j++
			}
		}
	}
	return added, removed
}

// Apply advances ack by the server's answer to a post planned as p. It
// reports whether ack changed (and must be saved before the post leaves
// the spool), and whether the server asked for something the post left
// out (the whole basic inventory, the whole software set), so that a new
// post is worth making at once. A post that was already whole and is
// asked for again does not ask for another at once: that would loop.
func Apply(ack *state.Ack, p Pending, resp *protocol.InventoryResponse) (changed, repost bool) {
	switch {
	case resp.SendBasic:
		if !ack.NeedBasic {
			ack.NeedBasic, changed = true, true
		}
		repost = !p.BasicSent
	case p.BasicSent:
		if ack.BasicHash != p.BasicHash || ack.BasicSentAt != p.At || ack.NeedBasic {
			ack.BasicHash, ack.BasicSentAt, ack.NeedBasic = p.BasicHash, p.At, false
			changed = true
		}
	}
	sa := resp.Software
	if sa == nil || p.Software == NoSoftware {
		return changed, repost
	}
	switch {
	case sa.SendFull:
		if !ack.NeedFull {
			ack.NeedFull, changed = true, true
		}
		repost = repost || p.Software != Full
	case !sa.Stored:
		// Discarded (see the verdicts): the server holds what it held.
	case p.Software == Full || p.Software == Delta:
		if ack.Generation != sa.Generation || ack.Hash != p.Hash || ack.NeedFull {
			ack.Generation, ack.Hash, ack.Count, ack.Packages, ack.NeedFull = sa.Generation, p.Hash, p.Count, p.Set, false
			changed = true
		}
	}
	return changed, repost
}
