package loadgen

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/tallyhq/tally/agent/client"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
)

var (
	errMalformed   = errors.New("malformed answer")
	errSeqMismatch = errors.New("answer for another sequence number")
	errNotSent     = errors.New("not sent: the phase ended before a slot of --concurrency was free")
)

// agent is one simulated machine: its own key (so its own node and
// computer), its own connection (QUIC, or TLS over TCP), sequence numbers
// and software set, all in memory. An agent runs one request at a time.
type agent struct {
	i      int
	name   string
	nodeID string
	tls    *tls.Config
	hints  protocol.Hints
	basic  protocol.BasicInventory
	rng    *rand.Rand

	// The whole basic inventory goes with an agent's first post, when the
	// server asks for it, and once in Config.BasicEvery delta posts (the
	// agent's daily refresh); other posts carry its hash, as an agent's do.
	basicHash   string
	basicStored bool // the server acknowledged a post with the whole basic inventory
	deltas      int  // delta posts sent, for Config.BasicEvery

	mu          sync.Mutex // guards conn and closedBytes against phase accounting
	conn        link
	closedBytes uint64

	// srv is the index of the server address the agent talks to (see
	// Target.Servers); only the agent's own request changes it.
	srv        int
	seq        uint64
	computerID int64
	enrolled   bool
	sw         swState

	// What the counts checks compare with the server's records.
	posted      int       // posts sent (first attempts)
	acked       int       // posts acknowledged
	unacked     int       // posts given up on: their fate on the server is unknown
	lastStart   time.Time // first attempt of the last acknowledged post
	lastAck     time.Time
	ackedSeqs   []uint64 // with Config.RecordSeqs
	lastVerdict map[string]protocol.Verdict
}

// swState is the agent's software set and what the server acknowledged.
type swState struct {
	pkgs     []int32          // pool indices of the installed packages, sorted
	upgrades map[int32]uint16 // packages upgraded since the draw: version suffix
	hash     protocol.SetHash
	gen      uint64 // generation the server acknowledged; 0: none yet
	full     bool   // the next post must carry the full set
	stored   bool   // the server holds the agent's current set
}

// newAgent derives agent i of a run: the key comes from the run's ID, so
// that two runs against one server never share a node, while the software
// set comes from the seed alone.
func newAgent(cfg *Config, pool *Pool, i int, pin string) (*agent, error) {
	sum := sha256.Sum256(fmt.Appendf(nil, "tally-load/%s/%d", cfg.Run, i))
	key := ed25519.NewKeyFromSeed(sum[:])
	nodeID := identity.NodeID(key.Public().(ed25519.PublicKey))
	cert, err := identity.SelfSigned(key, "tally-load "+nodeID)
	if err != nil {
		return nil, err
	}
	a := &agent{i: i, name: fmt.Sprintf("load-%s-%05d", cfg.Run, i), nodeID: nodeID,
		tls: identity.ClientTLS(cert, pin, protocol.ALPN),
		rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i)<<20|0xa9e)),
	}
	a.srv = i % len(cfg.Target.addrs())
	a.hints = protocol.Hints{InstanceID: a.name + "-instance", MachineID: a.name}
	a.basic = syntheticBasic(a, cfg.Seed)
	a.basicHash = a.basic.Hash()
	a.sw.pkgs = pool.Draw(cfg.Seed, i, cfg.PackagesMin, cfg.PackagesMax)
	for _, p := range a.sw.pkgs {
		a.sw.hash.Add(pool.hashes[p])
	}
	a.sw.full = true
	return a, nil
}

var (
	platforms = []struct{ platform, version, kernel string }{
		{"ubuntu", "24.04", "6.8.0-45-generic"}, {"ubuntu", "22.04", "5.15.0-122-generic"},
		{"debian", "12.7", "6.1.0-25-amd64"}, {"debian", "11.11", "5.10.0-32-amd64"},
	}
	cpuModels = []string{"Intel(R) Core(TM) i7-1265U", "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", "AMD EPYC 7763 64-Core Processor", "AMD Ryzen 7 PRO 7840U"}
)

// syntheticBasic is a plausible basic inventory for agent a: the same
// fields and sizes as a real agent's, from a deterministic generator.
func syntheticBasic(a *agent, seed uint64) protocol.BasicInventory {
	r := rand.New(rand.NewPCG(seed, uint64(a.i)<<20|0xba51c))
	pl := platforms[r.IntN(len(platforms))]
	cores := uint32(2 << r.IntN(4))
	mac := make([]byte, 8)
	binary.BigEndian.PutUint64(mac, 0x00163e000000+uint64(a.i))
	macText := fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", mac[2], mac[3], mac[4], mac[5], mac[6], mac[7])
	b := protocol.BasicInventory{
		Hostname: a.name, OS: "linux", Platform: pl.platform, PlatformFamily: "debian", PlatformVersion: pl.version,
		KernelVersion: pl.kernel, Arch: "x86_64", Virtualization: []string{"", "kvm", "vmware"}[r.IntN(3)],
		CPUModel: cpuModels[r.IntN(len(cpuModels))], CPUCores: cores, CPUThreads: cores * 2,
		MemoryBytes: uint64(4<<r.IntN(5)) << 30,
		Disks: []protocol.Disk{
			{Device: "/dev/nvme0n1p2", Mountpoint: "/", FSType: "ext4", TotalBytes: 512 << 30, FreeBytes: uint64(r.IntN(400)+20) << 30},
			{Device: "/dev/nvme0n1p1", Mountpoint: "/boot/efi", FSType: "vfat", TotalBytes: 512 << 20, FreeBytes: 500 << 20},
		},
		NICs: []protocol.NIC{{Name: "eth0", MAC: macText,
			Addrs: []string{fmt.Sprintf("10.%d.%d.%d/16", a.i>>16&255, a.i>>8&255, a.i&255), "fe80::216:3eff:fe00:1/64"}}},
		Hints:        a.hints,
		BootTime:     1_760_000_000 + int64(r.IntN(1_000_000)),
		AgentVersion: "tally-load",
		Plugins:      []protocol.Plugin{{Name: "inventory", Version: "7.2.1", BuildDate: "2026-03-02"}},
	}
	if r.IntN(4) == 0 {
		b.Plugins = append(b.Plugins, protocol.Plugin{Name: "monitor", Version: "3.1.0", BuildDate: "2026-02-10"})
	}
	return b
}

// inventoryRequest starts an inventory post: the whole basic inventory,
// collected now, or only its hash, as the agent's delta posts do.
func (a *agent) inventoryRequest(whole bool) protocol.InventoryRequest {
	if !whole {
		return protocol.InventoryRequest{BasicHash: a.basicHash}
	}
	req := protocol.InventoryRequest{Basic: a.basic}
	req.Basic.CollectedAt = time.Now().Unix()
	return req
}

// connection returns the agent's live link, dialing when needed.
func (a *agent) connection(ctx context.Context, r *runner) (link, error) {
	a.mu.Lock()
	c := a.conn
	a.mu.Unlock()
	if c != nil && c.alive() {
		return c, nil
	}
	if c != nil {
		a.drop(c)
	}
	ph := r.phase.Load()
	dctx, cancel := context.WithTimeout(ctx, r.cfg.DialTimeout)
	defer cancel()
	start := time.Now()
	c, err := r.links.connect(dctx, a.i, a.srv, a.tls)
	if err != nil {
		if client.Refused(err) {
			// As the agent does (agent/client): keep the session ticket
			// for the next attempt.
			identity.RestoreSessions(a.tls)
		}
		ph.fail("connect:" + errorKind(err))
		return nil, fmt.Errorf("connect: %w", err)
	}
	ph.handshake.Record(time.Since(start))
	if c.resumed() {
		ph.handResumed.Add(1)
	} else {
		ph.handFull.Add(1)
	}
	a.mu.Lock()
	a.conn = c
	a.mu.Unlock()
	return c, nil
}

// drop closes c and keeps its byte counts for the phase totals.
func (a *agent) drop(c link) {
	a.mu.Lock()
	if a.conn == c {
		a.conn = nil
		a.closedBytes += c.wireBytes()
	}
	a.mu.Unlock()
	c.close()
}

// wireBytes is every byte the agent's links carried: over QUIC, every
// QUIC byte (headers, handshakes, acknowledgements, retransmissions; not
// UDP/IP headers); over TCP, every TLS record (handshakes included; not
// TCP/IP headers).
func (a *agent) wireBytes() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.closedBytes
	if a.conn != nil {
		n += a.conn.wireBytes()
	}
	return n
}

// disconnect closes the link, as an outage would.
func (a *agent) disconnect() {
	a.mu.Lock()
	c := a.conn
	a.mu.Unlock()
	if c != nil {
		a.drop(c)
	}
}

// roundTrip sends one envelope and reads the answer, exactly like
// agent/client.RoundTrip: on a fresh stream over QUIC, as one frame over
// TCP.
func (a *agent) roundTrip(ctx context.Context, r *runner, seq uint64, req []byte) (protocol.Response, int, error) {
	conn, err := a.connection(ctx, r)
	if err != nil {
		return protocol.Response{}, 0, err
	}
	rctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	defer cancel()
	raw, err := conn.exchange(rctx, req)
	if err != nil {
		if !conn.alive() {
			a.drop(conn)
		}
		if ctx.Err() != nil {
			return protocol.Response{}, 0, ctx.Err()
		}
		return protocol.Response{}, 0, err
	}
	var resp protocol.Response
	if err := protocol.Unmarshal(raw, &resp); err != nil {
		return protocol.Response{}, len(raw), fmt.Errorf("%w: %v", errMalformed, err)
	}
	if err := resp.Err(); err != nil {
		return resp, len(raw), err
	}
	if resp.Seq != seq {
		return resp, len(raw), fmt.Errorf("%w: sent %d, answered %d", errSeqMismatch, seq, resp.Seq)
	}
	return resp, len(raw), nil
}

// materialize returns the agent's set as packages.
func (a *agent) materialize(pool *Pool) []protocol.Package {
	out := make([]protocol.Package, len(a.sw.pkgs))
	for i, p := range a.sw.pkgs {
		out[i] = a.pkg(pool, p)
	}
	return out
}

func (a *agent) pkg(pool *Pool, p int32) protocol.Package {
	pk := pool.Packages[p]
	if u := a.sw.upgrades[p]; u > 0 {
		pk.Version += fmt.Sprintf("+load%d", u)
	}
	return pk
}

func (a *agent) itemHash(pool *Pool, p int32) uint64 {
	if a.sw.upgrades[p] == 0 {
		return pool.hashes[p]
	}
	pk := a.pkg(pool, p)
	return protocol.ItemHash(&pk)
}

// change applies one software change to the machine, as a package manager
// would: mostly an upgrade, sometimes an install or a removal. It returns
// what was added and removed.
func (a *agent) change(pool *Pool) (added, removed []protocol.Package) {
	s := &a.sw
	switch x := a.rng.IntN(10); {
	case x < 6 || len(s.pkgs) < 2: // upgrade
		p := s.pkgs[a.rng.IntN(len(s.pkgs))]
		old := a.pkg(pool, p)
		s.hash.Remove(a.itemHash(pool, p))
		if s.upgrades == nil {
			s.upgrades = map[int32]uint16{}
		}
		s.upgrades[p]++
		s.hash.Add(a.itemHash(pool, p))
		return []protocol.Package{a.pkg(pool, p)}, []protocol.Package{old}
	case x < 8: // install a package the machine lacks
		for range 16 {
			p := int32(a.rng.IntN(len(pool.Packages)))
			j, found := searchInt32(s.pkgs, p)
			if found {
				continue
			}
			s.pkgs = append(s.pkgs, 0)
			copy(s.pkgs[j+1:], s.pkgs[j:])
			s.pkgs[j] = p
			delete(s.upgrades, p)
			s.hash.Add(pool.hashes[p])
			return []protocol.Package{pool.Packages[p]}, nil
		}
		return nil, nil
	default: // remove one
		j := a.rng.IntN(len(s.pkgs))
		p := s.pkgs[j]
		old := a.pkg(pool, p)
		s.hash.Remove(a.itemHash(pool, p))
		s.pkgs = append(s.pkgs[:j], s.pkgs[j+1:]...)
		delete(s.upgrades, p)
		return nil, []protocol.Package{old}
	}
}

func searchInt32(s []int32, v int32) (int, bool) {
	lo, hi := 0, len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s[m] < v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(s) && s[lo] == v
}
