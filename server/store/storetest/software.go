package storetest

import (
	"slices"
	"testing"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/store"
)

// fullSet is a full software inventory of ps, as an agent sends it.
func fullSet(ps ...protocol.Package) *protocol.SoftwareInventory {
	return &protocol.SoftwareInventory{Full: true, Packages: ps, Count: uint32(len(ps)), Hash: protocol.HashPackages(ps).String()}
}

// deltaSet is the delta from set, acknowledged as generation base, that
// removes and adds packages.
func deltaSet(base uint64, set, removed, added []protocol.Package) *protocol.SoftwareInventory {
	h := protocol.HashPackages(set)
	for i := range removed {
		h.Remove(protocol.ItemHash(&removed[i]))
	}
	for i := range added {
		h.Add(protocol.ItemHash(&added[i]))
	}
	return &protocol.SoftwareInventory{Base: base, Removed: removed, Added: added, Hash: h.String(),
		Count: uint32(len(set) - len(removed) + len(added))}
}

func (e *env) wantSoftware(t tb, n *node, want ...protocol.Package) {
	t.Helper()
	got, err := e.s.Software(e.ctx, n.computer)
	if err != nil {
		t.Fatal(err)
	}
	names := func(ps []protocol.Package) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Source+"/"+p.Name+"/"+p.Version)
		}
		slices.Sort(out)
		return out
	}
	if g, w := names(got), names(want); !slices.Equal(g, w) {
		t.Fatalf("%s's stored software %v, want %v", n.hostname, g, w)
	}
}

// A full software inventory, then deltas against the generation the store
// acknowledged, leave the stored set equal to the agent's; a delta against
// another generation, or whose result does not match its hash, stores
// nothing and asks for a full one; without a seat nothing is stored.
func testSoftwareSets(t *testing.T, e *env) {
	e.licenseEach(t, 1, "inventory")
	n, other := e.enroll(t), e.enroll(t)
	pk := func(name, version string) protocol.Package {
		return protocol.Package{Name: name, Version: version, Arch: "amd64", Source: "dpkg", Publisher: "Debian"}
	}
	set := []protocol.Package{pk("bash", "5.2"), pk("curl", "8.5"), pk("openssl", "3.0")}
	resp := ok(e.postInventory(n, protocol.InventoryRequest{Basic: n.basic(inventory7), Software: fullSet(set...)}))(t)
	wantVerdict(t, resp.Verdicts, "inventory", protocol.VerdictLicensed)
	if resp.Software == nil || !resp.Software.Stored || resp.Software.Generation == 0 || resp.Software.SendFull {
		t.Fatalf("full inventory answered %+v", resp.Software)
	}
	e.wantSoftware(t, n, set...)
	gen := resp.Software.Generation

	removed, added := []protocol.Package{set[1]}, []protocol.Package{pk("curl", "8.6"), pk("git", "2.43")}
	resp = ok(e.postInventory(n, protocol.InventoryRequest{Basic: n.basic(inventory7), Software: deltaSet(gen, set, removed, added)}))(t)
	if resp.Software == nil || !resp.Software.Stored || resp.Software.SendFull || resp.Software.Generation == gen {
		t.Fatalf("delta answered %+v", resp.Software)
	}
	set = []protocol.Package{set[0], set[2], added[0], added[1]}
	e.wantSoftware(t, n, set...)
	gen = resp.Software.Generation

	// Against a generation the store never gave: nothing stored, send all.
	resp = ok(e.postInventory(n, protocol.InventoryRequest{Basic: n.basic(inventory7),
		Software: deltaSet(gen+100, set, []protocol.Package{set[0]}, nil)}))(t)
	if resp.Software == nil || !resp.Software.SendFull {
		t.Fatalf("delta on an unknown generation answered %+v, want send full", resp.Software)
	}
	e.wantSoftware(t, n, set...)
	// The right generation, a wrong hash (the agent's copy drifted).
	bad := deltaSet(gen, set, nil, []protocol.Package{pk("vim", "9.1")})
	bad.Hash = protocol.HashPackages(set).String()
	resp = ok(e.postInventory(n, protocol.InventoryRequest{Basic: n.basic(inventory7), Software: bad}))(t)
	if resp.Software == nil || !resp.Software.SendFull {
		t.Fatalf("delta with a wrong hash answered %+v, want send full", resp.Software)
	}
	e.wantSoftware(t, n, set...)
	// A full inventory again replaces the set.
	set = []protocol.Package{pk("bash", "5.3")}
	resp = ok(e.postInventory(n, protocol.InventoryRequest{Basic: n.basic(inventory7), Software: fullSet(set...)}))(t)
	if resp.Software == nil || !resp.Software.Stored {
		t.Fatalf("second full inventory answered %+v", resp.Software)
	}
	e.wantSoftware(t, n, set...)

	// The one seat is taken: the other computer's set is not stored.
	resp = ok(e.postInventory(other, protocol.InventoryRequest{Basic: other.basic(inventory7), Software: fullSet(pk("zsh", "5.9"))}))(t)
	wantVerdict(t, resp.Verdicts, "inventory", protocol.VerdictDiscardedNoSeat)
	if resp.Software == nil || resp.Software.Stored {
		t.Fatalf("unlicensed full inventory answered %+v", resp.Software)
	}
	e.wantSoftware(t, other)
	if u := e.usage(t, "inventory", store.SeatNode); u.Consumed != 1 {
		t.Fatalf("inventory consumed %d", u.Consumed)
	}
}
