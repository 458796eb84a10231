package delta

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/tallyhq/tally/agent/state"
	"github.com/tallyhq/tally/protocol"
)

func pkg(name, version string) protocol.Package {
	return protocol.Package{Name: name, Version: version, Arch: "amd64", Source: "dpkg"}
}

func full(ps ...protocol.Package) *protocol.SoftwareInventory {
	sw := &protocol.SoftwareInventory{Full: true, Packages: append([]protocol.Package(nil), ps...)}
	Normalize(sw)
	return sw
}

var basic = protocol.BasicInventory{Hostname: "h", Hints: protocol.Hints{InstanceID: "i"}}

func TestNormalizeSortsAndDeduplicates(t *testing.T) {
	a, b := pkg("b", "1"), pkg("a", "1")
	dupLater := a
	dupLater.InstallDate = 9
	sw := full(a, b, dupLater)
	if sw.Count != 2 || sw.Packages[0].Name != "a" || sw.Packages[1].InstallDate != 0 {
		t.Fatalf("normalized %+v", sw)
	}
	if sw.Hash != protocol.HashPackages([]protocol.Package{b, a}).String() {
		t.Fatal("hash is not the set's")
	}
	if err := sw.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestFirstPostIsWholeThenHashAndEmptyDelta(t *testing.T) {
	var ack state.Ack
	t0 := time.Unix(1_800_000_000, 0)
	snap := protocol.InventoryRequest{Basic: basic, Software: full(pkg("a", "1"), pkg("b", "1"))}
	wire, p := Plan(snap, t0, &ack)
	if !wire.HasBasic() || wire.Software == nil || !wire.Software.Full || p.Software != Full {
		t.Fatalf("first post %+v", wire)
	}
	changed, repost := Apply(&ack, p, &protocol.InventoryResponse{Software: &protocol.SoftwareAck{Generation: 1, Stored: true}})
	if !changed || repost || ack.Generation != 1 || ack.Count != 2 || ack.BasicHash == "" {
		t.Fatalf("ack %+v", ack)
	}
	wire, p = Plan(snap, t0.Add(time.Hour), &ack)
	if wire.HasBasic() || wire.BasicHash != basic.Hash() {
		t.Fatalf("unchanged basic sent: %+v", wire)
	}
	sw := wire.Software
	if sw.Full || sw.Base != 1 || len(sw.Added)+len(sw.Removed) != 0 || sw.Count != 2 || sw.Hash != snap.Software.Hash {
		t.Fatalf("unchanged software: %+v", sw)
	}
	if err := wire.Validate(); err != nil {
		t.Fatal(err)
	}
	// A day after the last whole basic inventory, it is sent whole again.
	wire, _ = Plan(snap, t0.Add(BasicRefresh), &ack)
	if !wire.HasBasic() {
		t.Fatal("basic inventory not refreshed after 24 h")
	}
	// The free bytes of a disk do not count as a change.
	b2 := basic
	b2.Disks = []protocol.Disk{{Device: "d", Mountpoint: "/", TotalBytes: 10, FreeBytes: 5}}
	ack.BasicHash = b2.Hash()
	b2.Disks[0].FreeBytes = 4
	if wire, _ = Plan(protocol.InventoryRequest{Basic: b2}, t0.Add(time.Hour), &ack); wire.HasBasic() {
		t.Fatal("free bytes alone resent the basic inventory")
	}
}

func TestDeltaAndAnswers(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	old := full(pkg("a", "1"), pkg("b", "1"))
	ack := state.Ack{Generation: 7, Hash: old.Hash, Count: old.Count, Packages: old.Packages, BasicHash: basic.Hash(), BasicSentAt: t0.UnixMilli()}
	snap := protocol.InventoryRequest{Basic: basic, Software: full(pkg("a", "2"), pkg("b", "1"), pkg("c", "1"))}
	wire, p := Plan(snap, t0.Add(time.Minute), &ack)
	sw := wire.Software
	if sw.Base != 7 || len(sw.Added) != 2 || len(sw.Removed) != 1 || sw.Removed[0].Version != "1" || sw.Count != 3 {
		t.Fatalf("delta %+v", sw)
	}

	// Discarded (not stored): nothing advances.
	before := ack
	if changed, _ := Apply(&ack, p, &protocol.InventoryResponse{Software: &protocol.SoftwareAck{Generation: 7}}); changed || ack.Generation != before.Generation || ack.Hash != before.Hash {
		t.Fatalf("a discarded post advanced the state: %+v", ack)
	}
	// SendFull: the next post is whole, and one is worth making now.
	changed, repost := Apply(&ack, p, &protocol.InventoryResponse{Software: &protocol.SoftwareAck{Generation: 7, SendFull: true}})
	if !changed || !repost || !ack.NeedFull || ack.Generation != 7 {
		t.Fatalf("send full: %+v %v %v", ack, changed, repost)
	}
	wire, p = Plan(snap, t0.Add(2*time.Minute), &ack)
	if !wire.Software.Full {
		t.Fatal("after SendFull the post is not whole")
	}
	// A whole post asked for again does not ask for another at once.
	if _, repost := Apply(&ack, p, &protocol.InventoryResponse{Software: &protocol.SoftwareAck{SendFull: true}}); repost {
		t.Fatal("a whole post answered SendFull asks for a repost: it would loop")
	}
	if _, _ = Apply(&ack, p, &protocol.InventoryResponse{Software: &protocol.SoftwareAck{Generation: 8, Stored: true}}); ack.NeedFull || ack.Generation != 8 || ack.Count != 3 {
		t.Fatalf("stored whole: %+v", ack)
	}
	// SendBasic after a hash-only post.
	wire, p = Plan(snap, t0.Add(3*time.Minute), &ack)
	if wire.HasBasic() {
		t.Fatal("basic sent")
	}
	if _, repost := Apply(&ack, p, &protocol.InventoryResponse{SendBasic: true}); !repost || !ack.NeedBasic {
		t.Fatal("SendBasic not kept")
	}
	if wire, _ = Plan(snap, t0.Add(4*time.Minute), &ack); !wire.HasBasic() {
		t.Fatal("basic not sent after SendBasic")
	}
}

func TestProbe(t *testing.T) {
	probe := protocol.InventoryRequest{Basic: basic, Software: &protocol.SoftwareInventory{}}
	var ack state.Ack
	wire, p := Plan(probe, time.Now(), &ack)
	if p.Software != Probe || wire.Software == nil || wire.Software.Base != 0 || wire.Software.Full {
		t.Fatalf("probe without a base: %+v", wire.Software)
	}
	set := full(pkg("a", "1"))
	ack = state.Ack{Generation: 3, Hash: set.Hash, Count: 1, Packages: set.Packages}
	wire, p = Plan(probe, time.Now(), &ack)
	if wire.Software.Base != 3 || wire.Software.Hash != set.Hash || wire.Software.Count != 1 || len(wire.Software.Added) != 0 {
		t.Fatalf("probe: %+v", wire.Software)
	}
	if err := wire.Software.Validate(); err != nil {
		t.Fatal(err)
	}
	if Apply(&ack, p, &protocol.InventoryResponse{Software: &protocol.SoftwareAck{Generation: 3, Stored: true}}); ack.Count != 1 || ack.Generation != 3 || len(ack.Packages) != 1 {
		t.Fatalf("a stored probe changed the set: %+v", ack)
	}
}

// server is the store's software rules (server/store/sqlstore/software.go)
// in miniature: a delta applies only on its base, with a matching result.
type server struct {
	gen uint64
	set map[string]protocol.Package
}

func (s *server) apply(sw *protocol.SoftwareInventory, licensed bool) *protocol.SoftwareAck {
	if !licensed {
		return &protocol.SoftwareAck{}
	}
	if sw.Full {
		s.set = map[string]protocol.Package{}
		for _, p := range sw.Packages {
			s.set[key(&p)] = p
		}
		s.gen++
		return &protocol.SoftwareAck{Generation: s.gen, Stored: true}
	}
	if s.gen == 0 || sw.Base != s.gen {
		return &protocol.SoftwareAck{Generation: s.gen, SendFull: true}
	}
	next := map[string]protocol.Package{}
	for k, v := range s.set {
		next[k] = v
	}
	for _, p := range sw.Removed {
		if _, ok := next[key(&p)]; !ok {
			return &protocol.SoftwareAck{Generation: s.gen, SendFull: true}
		}
		delete(next, key(&p))
	}
	for _, p := range sw.Added {
		if _, ok := next[key(&p)]; ok {
			return &protocol.SoftwareAck{Generation: s.gen, SendFull: true}
		}
		next[key(&p)] = p
	}
	var ps []protocol.Package
	for _, p := range next {
		ps = append(ps, p)
	}
	if protocol.HashPackages(ps).String() != sw.Hash || uint32(len(ps)) != sw.Count {
		return &protocol.SoftwareAck{Generation: s.gen, SendFull: true}
	}
	if len(sw.Added)+len(sw.Removed) > 0 {
		s.set = next
		s.gen++
	}
	return &protocol.SoftwareAck{Generation: s.gen, Stored: true}
}

func (s *server) keys() []string {
	var ks []string
	for k := range s.set {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Property: whatever the snapshots, the verdicts (stored or discarded),
// the server losing its copy, and answers lost after the server applied
// them (the post is sent again and answered as a repeat), a stored answer
// always leaves the agent's acknowledged set equal to the server's, and a
// delta is never applied on a base the server does not hold.
func TestAcknowledgedSetFollowsTheServer(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var ack state.Ack
		srv := &server{}
		names := []string{"a", "b", "c", "d", "e"}
		at := time.Unix(1_800_000_000, 0)
		for step := range rapid.IntRange(1, 25).Draw(t, "steps") {
			var ps []protocol.Package
			for _, n := range names {
				if rapid.Bool().Draw(t, "has "+n) {
					ps = append(ps, pkg(n, fmt.Sprint(rapid.IntRange(1, 3).Draw(t, "v"))))
				}
			}
			snap := protocol.InventoryRequest{Basic: basic, Software: full(ps...)}
			at = at.Add(time.Hour)
			wire, p := Plan(snap, at, &ack)
			if err := wire.Validate(); err != nil {
				t.Fatalf("step %d: invalid post: %v", step, err)
			}
			if rapid.IntRange(0, 9).Draw(t, "server loses its copy") == 0 {
				srv.gen, srv.set = srv.gen+100, nil
			}
			licensed := rapid.IntRange(0, 4).Draw(t, "licensed") > 0
			resp := protocol.InventoryResponse{Software: srv.apply(wire.Software, licensed)}
			if rapid.IntRange(0, 4).Draw(t, "answer lost") == 0 {
				// The server applied it; the agent re-plans the same record
				// against the same state and gets the first answer back.
				again, p2 := Plan(snap, at, &ack)
				x, _ := protocol.Marshal(&again)
				y, _ := protocol.Marshal(&wire)
				if string(x) != string(y) {
					t.Fatalf("step %d: a re-sent post differs from the first", step)
				}
				p = p2
			}
			Apply(&ack, p, &resp)
			if resp.Software.Stored {
				var ks []string
				for i := range ack.Packages {
					ks = append(ks, key(&ack.Packages[i]))
				}
				if !slices.Equal(ks, srv.keys()) || ack.Generation != srv.gen {
					t.Fatalf("step %d: agent holds gen %d %v, server gen %d %v", step, ack.Generation, ks, srv.gen, srv.keys())
				}
			}
		}
	})
}

func TestDiff(t *testing.T) {
	a := full(pkg("a", "1"), pkg("b", "1"), pkg("d", "1")).Packages
	b := full(pkg("b", "1"), pkg("c", "1"), pkg("d", "2")).Packages
	add, rem := Diff(a, b)
	if len(add) != 2 || len(rem) != 2 || add[0].Name != "c" || rem[0].Name != "a" {
		t.Fatalf("added %v removed %v", add, rem)
	}
}
