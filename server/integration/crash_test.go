package integration

import (
	"context"
	"crypto/ed25519"
	"net/url"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
)

// A server killed with SIGKILL in the middle of a race for seats and
// started again: every acknowledged consume is there, nothing
// unacknowledged is half-applied (seats, counters and audit agree), the
// invariants hold, and the requests that got no answer, sent again with
// the same sequence numbers, are applied exactly once.
func TestSIGKILLDuringRace(t *testing.T) {
	serverBin, _ := binaries(t)
	data := t.TempDir()
	p := startServerBinary(t, serverBin, data)
	key, _ := license.NewIssuerKey()
	pub, _ := license.EncodePublicKey(key.Public().(ed25519.PublicKey))
	if _, err := daemon.TrustIssuer(datadir.Dir{Path: data}, pub); err != nil {
		t.Fatal(err)
	}
	file, err := license.Issue(key, license.Payload{Product: "monitor", Seats: 40, Kind: "node", Duration: "perpetual", IssuedAt: time.Now().Unix()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.admin(t).ImportLicenses(context.Background(), []adminapi.LicenseFile{{Name: "m.lic", Data: string(file)}}); err != nil {
		t.Fatal(err)
	}
	info, _ := p.admin(t).EnrollInfo(context.Background())
	const n = 120
	nodes := make([]*node, n)
	for i := range nodes {
		a := agenttest.New(t, p, agenttest.Options{Secret: info.Secret})
		nodes[i] = &node{Agent: a, raw: a.RawClient(t), t: t, id: a.Enrollment().ComputerID}
	}
	type attempt struct {
		seq     uint64
		req     []byte
		acked   bool
		verdict protocol.Verdict
	}
	attempts := make([]attempt, n)
	for i, nd := range nodes {
		basic, _ := nd.CollectBasic(context.Background())
		basic.Plugins = []protocol.Plugin{plug("monitor", "2.0")}
		seq := nd.NextSeq(t)
		attempts[i] = attempt{seq: seq, req: agenttest.Envelope(t, protocol.KindInventory, seq, &protocol.InventoryRequest{Basic: basic})}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ackedCount := 0
	killed := make(chan struct{})
	start := make(chan struct{})
	for i := range nodes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := nodes[i].raw.RoundTrip(ctx, attempts[i].seq, attempts[i].req)
			if err != nil {
				return
			}
			var body protocol.InventoryResponse
			if err := protocol.Unmarshal(resp.Body, &body); err != nil {
				t.Errorf("decode: %v", err)
				return
			}
			mu.Lock()
			attempts[i].acked, attempts[i].verdict = true, verdictOf(body.Verdicts, "monitor")
			ackedCount++
			if ackedCount == n/3 {
				close(killed)
			}
			mu.Unlock()
		}(i)
	}
	close(start)
	select {
	case <-killed:
	case <-time.After(20 * time.Second):
		t.Fatal("no third of the race was acknowledged")
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	wg.Wait()

	p2 := startServerBinary(t, serverBin, data)
	admin := p2.admin(t)
	u, err := admin.Usage(context.Background(), "monitor")
	if err != nil {
		t.Fatal(err)
	}
	holders := map[int64]bool{}
	for _, h := range u[0].Holders {
		holders[h.ComputerID] = true
	}
	ackedLicensed := 0
	for i, a := range attempts {
		if a.acked && a.verdict == protocol.VerdictLicensed {
			ackedLicensed++
			if !holders[nodes[i].id] {
				t.Errorf("computer %d was told licensed, but holds no seat after the crash", nodes[i].id)
			}
		}
	}
	if u[0].Consumed > 40 || u[0].Consumed != len(holders) {
		t.Fatalf("after the crash: consumed %d, holders %d", u[0].Consumed, len(holders))
	}
	ev, _ := admin.Events(context.Background(), url.Values{"kind": {store.EventSeatConsumed}})
	audited := map[int64]int{}
	for _, e := range ev {
		audited[e.ComputerID]++
	}
	for id := range holders {
		if audited[id] != 1 {
			t.Fatalf("holder %d has %d consume events: half-applied", id, audited[id])
		}
	}
	if len(audited) != len(holders) {
		t.Fatalf("%d consume events for %d holders", len(audited), len(holders))
	}
	rep, err := admin.Maintenance(context.Background())
	if err != nil || len(rep.Drift) > 0 {
		t.Fatalf("drift after the crash: %v %v", rep.Drift, err)
	}
	// Retry every request exactly as sent: the ones applied before the
	// crash answer their first outcome, the others are applied now.
	for i, a := range attempts {
		nodes[i].raw.Close()
		raw := nodes[i].RawClientTo(t, p2.addrs.QUIC)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := raw.RoundTrip(ctx, a.seq, a.req)
		cancel()
		if err != nil {
			t.Fatalf("retry %d: %v", i, err)
		}
		var body protocol.InventoryResponse
		_ = protocol.Unmarshal(resp.Body, &body)
		v := verdictOf(body.Verdicts, "monitor")
		if a.acked && (v != a.verdict || !resp.Repeat) {
			t.Fatalf("retry of an acknowledged request answered %s (repeat %v), first answer was %s", v, resp.Repeat, a.verdict)
		}
	}
	u, _ = admin.Usage(context.Background(), "monitor")
	if u[0].Consumed != 40 {
		t.Fatalf("after the retries %d seats are held, want all 40", u[0].Consumed)
	}
	rep, err = admin.Maintenance(context.Background())
	if err != nil || len(rep.Drift) > 0 {
		t.Fatalf("drift after the retries: %v %v", rep.Drift, err)
	}
	t.Logf("%d of %d requests acknowledged before SIGKILL, %d of them licensed", ackedCount, n, ackedLicensed)
	p2.terminate(t)
}
