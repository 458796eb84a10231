package integration

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/client"
	"github.com/tallyhq/tally/agent/runner"
	"github.com/tallyhq/tally/agent/state"
	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/common/logging"
	"github.com/tallyhq/tally/installer"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/servertest"
)

// The agent side of replicas: agents given several addresses of servers
// sharing one identity. Each test server here keeps its own SQLite store
// (real replicas share one database), which lets each test read which
// replica applied which request.

// replicaOf starts a second server sharing the identity of srv (its key,
// admin token, QUIC keys and trusted issuers, copied from its data
// folder), with a store of its own.
func replicaOf(t *testing.T, srv *servertest.Server) *servertest.Server {
	t.Helper()
	to := t.TempDir()
	for _, name := range []string{datadir.KeyFile, datadir.TokenFile, datadir.QUICKeysFile, datadir.IssuersFile} {
		b, err := os.ReadFile(filepath.Join(srv.Config.DataDir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := servertest.New(t, servertest.WithDataDir(to))
	if r.Fingerprint() != srv.Fingerprint() {
		t.Fatalf("replica fingerprint %s, want %s", r.Fingerprint(), srv.Fingerprint())
	}
	return r
}

// enrollWithReplicas enrolls an agent with the addresses, first in
// preference, through the command line (--server repeated). Each test
// server has its own store, so the node is enrolled with every one of
// them; the last enroll, at the first address, records the list.
func enrollWithReplicas(t *testing.T, data string, fp string, servers []*servertest.Server, addrs []string) state.Enrollment {
	t.Helper()
	for i := len(servers) - 1; i >= 0; i-- {
		out, code := runCLI(t, false, "enroll", "--server", addrs[i], "--fingerprint", fp, "--secret", servers[i].Secret,
			"--data", data, "--machine-id", "replicated-agent")
		if code != 0 {
			t.Fatalf("enroll with %s: exit %d\n%s", addrs[i], code, out)
		}
	}
	args := []string{"enroll", "--fingerprint", fp, "--secret", servers[0].Secret, "--data", data}
	for _, a := range addrs {
		args = append(args, "--server", a)
	}
	out, code := runCLI(t, false, args...)
	if code != 0 || !strings.Contains(out, strings.Join(addrs, ",")) {
		t.Fatalf("enroll with %v: exit %d\n%s", addrs, code, out)
	}
	e, err := (state.Dir{Path: data}).Enrollment()
	if err != nil || !slices.Equal(e.Addresses(), addrs) {
		t.Fatalf("enrollment dials %q (%v), want %q", e.Addresses(), err, addrs)
	}
	if out, code := runCLI(t, false, "status", "--data", data); code != 0 || !strings.Contains(out, "server:       "+strings.Join(addrs, ",")) {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	return e
}

// openAgent opens the enrolled agent in data with short timeouts, so that
// a replica that stopped answering is left within seconds.
func openAgent(t *testing.T, data string) *runner.Agent {
	t.Helper()
	dir, err := state.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	a, err := runner.Open(runner.Config{Dir: dir, Logger: logging.Discard(), Version: "test",
		DialTimeout: 5 * time.Second, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// postOnce queues an inventory post and flushes the spool, returning the
// sequence numbers sent.
func postOnce(t *testing.T, a *runner.Agent) []uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, _, err := a.QueueInventory(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := a.Flush(ctx)
	if err != nil {
		t.Fatalf("flush: %v", err)
	}
	var seqs []uint64
	for _, r := range res.Records {
		seqs = append(seqs, r.Seq)
	}
	if len(seqs) == 0 {
		t.Fatal("nothing sent")
	}
	return seqs
}

func seqsAppliedBy(t *testing.T, srv *servertest.Server, node string) map[uint64]bool {
	t.Helper()
	out := map[uint64]bool{}
	for _, r := range appliedByNode(t, srv.Config.DataDir, node) {
		out[r.Seq] = true
	}
	return out
}

// Two servers sharing one identity, the agent enrolled with both: while
// the first answers, posts go to it; once it is stopped, they go to the
// second, which the agent then dials first. The spool drains, every post
// is applied by exactly one server, and no sequence number is used twice.
func TestAgentFailsOverToTheNextReplica(t *testing.T) {
	a := servertest.New(t)
	b := replicaOf(t, a)
	data := filepath.Join(t.TempDir(), "agent")
	e := enrollWithReplicas(t, data, a.Fingerprint(), []*servertest.Server{a, b}, []string{a.Addr(), b.Addr()})
	addrA := a.Addr()
	ag := openAgent(t, data)

	var onA, onB []uint64
	for range 2 {
		onA = append(onA, postOnce(t, ag)...)
	}
	if ag.Server() != addrA {
		t.Fatalf("posts went to %s, want the first address %s", ag.Server(), addrA)
	}
	a.Stop()
	for range 2 {
		onB = append(onB, postOnce(t, ag)...)
	}
	if ag.Server() != b.Addr() {
		t.Fatalf("after the first server stopped, posts went to %s, want %s", ag.Server(), b.Addr())
	}
	if left := spoolSeqs(t, data); len(left) > 0 {
		t.Fatalf("spool holds %v after the failover", left)
	}
	if st, err := (state.Dir{Path: data}).LoadStatus(); err != nil || st.Server != b.Addr() || st.ServerSince.IsZero() {
		t.Fatalf("status remembers %q since %v (%v), want %s", st.Server, st.ServerSince, err, b.Addr())
	}
	if out, code := runCLI(t, false, "status", "--data", data); code != 0 || !strings.Contains(out, "answered by:  "+b.Addr()) {
		t.Fatalf("status after the failover: exit %d\n%s", code, out)
	}
	ag.Close()
	b.Stop()

	sent := append(slices.Clone(onA), onB...)
	if !slices.IsSorted(sent) || len(slices.Compact(slices.Clone(sent))) != len(sent) {
		t.Fatalf("sequence numbers sent %v: want each new and increasing", sent)
	}
	gotA, gotB := seqsAppliedBy(t, a, e.NodeID), seqsAppliedBy(t, b, e.NodeID)
	for _, s := range onA {
		if !gotA[s] || gotB[s] {
			t.Errorf("post %d: applied by the first %v, the second %v; want the first only", s, gotA[s], gotB[s])
		}
	}
	for _, s := range onB {
		if gotA[s] || !gotB[s] {
			t.Errorf("post %d: applied by the first %v, the second %v; want the second only", s, gotA[s], gotB[s])
		}
	}
}

// udpRelay forwards datagrams between one QUIC client and a server, and
// can lose every answer the server sends, as a server that dies after
// applying a request does.
type udpRelay struct {
	front, back *net.UDPConn
	client      atomic.Pointer[net.UDPAddr]
	loseAnswers atomic.Bool
	wg          sync.WaitGroup
}

func newUDPRelay(t *testing.T, server string) *udpRelay {
	t.Helper()
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	to, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.DialUDP("udp", nil, to)
	if err != nil {
		t.Fatal(err)
	}
	r := &udpRelay{front: front, back: back}
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, from, err := front.ReadFromUDP(buf)
			if err != nil {
				return
			}
			r.client.Store(from)
			back.Write(buf[:n])
		}
	}()
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, err := back.Read(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue // the server's port closed for a moment: ICMP
			}
			if c := r.client.Load(); c != nil && !r.loseAnswers.Load() {
				front.WriteToUDP(buf[:n], c)
			}
		}
	}()
	t.Cleanup(func() { front.Close(); back.Close(); r.wg.Wait() })
	return r
}

func (r *udpRelay) Addr() string { return r.front.LocalAddr().String() }

// A request the first server applied but whose answer was lost on the way
// is sent again, with the same sequence number, to the second server: the
// agent never makes a new number for a request it already sent. (Real
// replicas share one store, whose apply-once answers the repeat with the
// first outcome; here each server has its own, so both record it.)
func TestAgentResendsALostAnswerWithTheSameSeq(t *testing.T) {
	a := servertest.New(t)
	b := replicaOf(t, a)
	relay := newUDPRelay(t, a.Addr())
	data := filepath.Join(t.TempDir(), "agent")
	e := enrollWithReplicas(t, data, a.Fingerprint(), []*servertest.Server{a, b}, []string{relay.Addr(), b.Addr()})
	ag := openAgent(t, data)

	first := postOnce(t, ag) // through the relay: the connection is up
	if ag.Server() != relay.Addr() {
		t.Fatalf("first post went to %s, want the first address %s", ag.Server(), relay.Addr())
	}
	relay.loseAnswers.Store(true)
	lost := postOnce(t, ag)
	if ag.Server() != b.Addr() {
		t.Fatalf("the post whose answer was lost ended at %s, want %s", ag.Server(), b.Addr())
	}
	if left := spoolSeqs(t, data); len(left) > 0 {
		t.Fatalf("spool holds %v", left)
	}
	ag.Close()
	a.Stop()
	b.Stop()

	gotA, gotB := seqsAppliedBy(t, a, e.NodeID), seqsAppliedBy(t, b, e.NodeID)
	for _, s := range first {
		if !gotA[s] || gotB[s] {
			t.Errorf("post %d before the loss: applied by the first %v, the second %v", s, gotA[s], gotB[s])
		}
	}
	for _, s := range lost {
		if !gotA[s] || !gotB[s] {
			t.Errorf("post %d whose answer was lost: applied by the first %v, the second %v; want both, under the same number", s, gotA[s], gotB[s])
		}
	}
	for s := range gotB {
		if !slices.Contains(lost, s) && s > lost[0] {
			t.Errorf("the second server applied %d, a number the agent did not send", s)
		}
	}
}

// answeredBy sends one request and returns the address that answered it.
// The key is not enrolled: any answer at all (the server's "not
// enrolled") shows which replica was reached.
func answeredBy(t *testing.T, c *client.Client, seq uint64) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Do(ctx, protocol.KindCheckIn, seq, nil)
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		t.Fatalf("request %d: %v, want an answer from a server", seq, err)
	}
	addr, _ := c.Preferred()
	return addr
}

// The client's failover policy, on two real servers sharing one identity:
// the first address while it answers; the next when it stops; the address
// that answered last while it keeps answering (the first, back, is not
// dialed again at once); the first again on the first new connection once
// ReturnAfter has passed (on the injected clock).
func TestAgentFailoverPolicy(t *testing.T) {
	addrA := freeUDPAddr(t)
	a := servertest.New(t, listenOn(addrA))
	dirA := a.Config.DataDir
	b := replicaOf(t, a)
	key, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewManual(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	c, err := client.New(client.Config{Servers: []string{addrA, b.Addr()}, Fingerprint: a.Fingerprint(), Key: key,
		DialTimeout: 4 * time.Second, RequestTimeout: 5 * time.Second, ReturnAfter: 30 * time.Minute, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	if got := answeredBy(t, c, 1); got != addrA {
		t.Fatalf("answered by %s, want the first address %s", got, addrA)
	}
	a.Stop()
	c.Close() // a dial that fails; the tests above lose a request mid-flight
	if got := answeredBy(t, c, 2); got != b.Addr() {
		t.Fatalf("with the first stopped, answered by %s, want %s", got, b.Addr())
	}
	if _, since := c.Preferred(); !since.Equal(clk.Now()) {
		t.Fatalf("moved off the first address at %v, want %v", since, clk.Now())
	}
	servertest.New(t, servertest.WithDataDir(dirA), listenOn(addrA))
	c.Close() // a new connection, as each cycle of the agent makes
	clk.Advance(29 * time.Minute)
	if got := answeredBy(t, c, 3); got != b.Addr() {
		t.Fatalf("before ReturnAfter, answered by %s, want %s (the one that answered last)", got, b.Addr())
	}
	c.Close()
	clk.Advance(time.Minute)
	if got := answeredBy(t, c, 4); got != addrA {
		t.Fatalf("after ReturnAfter, answered by %s, want the first address %s again", got, addrA)
	}
	if _, since := c.Preferred(); !since.IsZero() {
		t.Fatalf("back on the first address since %v, want zero", since)
	}
}

// Wrong lists of server addresses are usage errors (exit 2) that change
// nothing: enroll creates no data folder and leaves an enrolled agent as
// it was; install (the agent's, and the server's --advertise) writes
// nothing under its root.
func TestWrongServerListsChangeNothing(t *testing.T) {
	srv := servertest.New(t)
	fp, addr := srv.Fingerprint(), srv.Addr()
	cases := []struct {
		servers []string // each a --server flag
		want    string
	}{
		{[]string{addr + ",," + addr}, "address 2 of 3"},
		{[]string{addr + ","}, "address 2 of 2 in"},
		{[]string{addr, ""}, "address 2 of 2 in"},
		{[]string{addr + ",127.0.0.1:http"}, `"http" is not a port number`},
		{[]string{addr + ",127.0.0.1:0"}, `"0" is not a port number`},
		{[]string{addr + ",127.0.0.1"}, `"127.0.0.1" is not HOST:PORT`},
		{[]string{addr, addr}, "is listed twice (1 and 2)"},
		{[]string{addr + ",other:1," + addr}, "is listed twice (1 and 3)"},
	}
	serverArgs := func(list []string) []string {
		var out []string
		for _, s := range list {
			out = append(out, "--server", s)
		}
		return out
	}
	enrolled := filepath.Join(t.TempDir(), "enrolled")
	if out, code := runCLI(t, false, "enroll", "--server", addr, "--fingerprint", fp, "--secret", srv.Secret, "--data", enrolled); code != 0 {
		t.Fatalf("enroll: %s", out)
	}
	before := treeOf(t, enrolled)
	root := t.TempDir()
	for _, c := range cases {
		fresh := filepath.Join(t.TempDir(), "new")
		for _, data := range []string{fresh, enrolled} {
			args := append(append([]string{"enroll"}, serverArgs(c.servers)...), "--fingerprint", fp, "--secret", srv.Secret, "--data", data)
			out, code := runCLI(t, false, args...)
			if code != 2 || !strings.Contains(out, "--server") || !strings.Contains(out, c.want) {
				t.Errorf("enroll %q: exit %d, want 2 and %q\n%s", c.servers, code, c.want, out)
			}
		}
		if _, err := os.Stat(fresh); !os.IsNotExist(err) {
			t.Errorf("enroll %q created %s", c.servers, fresh)
		}
		if now := treeOf(t, enrolled); !sameMap(before, now) {
			t.Errorf("enroll %q changed the enrolled agent's folder", c.servers)
		}
		args := append(append([]string{"install", "--root", root}, serverArgs(c.servers)...), "--fingerprint", fp, "--secret", srv.Secret)
		if out, code := runCLI(t, false, args...); code != 2 || !strings.Contains(out, c.want) {
			t.Errorf("install %q: exit %d, want 2 and %q\n%s", c.servers, code, c.want, out)
		}
		if left := treeOf(t, root); len(left) > 0 {
			t.Errorf("install %q left %v", c.servers, left)
		}
	}
	// tally-server install checks the list it puts on serve's line the same way.
	for _, c := range cases {
		if len(c.servers) != 1 {
			continue
		}
		out, code := runCLI(t, true, "install", "--root", root, "--advertise", c.servers[0])
		if code != 2 || !strings.Contains(out, "--advertise") || !strings.Contains(out, c.want) {
			t.Errorf("tally-server install --advertise %s: exit %d, want 2 and %q\n%s", c.servers[0], code, c.want, out)
		}
		if left := treeOf(t, root); len(left) > 0 {
			t.Errorf("tally-server install --advertise %s left %v", c.servers[0], left)
		}
	}
	// A bad list in agent.conf is reported with its line, and changes nothing either.
	conf := filepath.Join(t.TempDir(), "agent.conf")
	os.WriteFile(conf, []byte("server = "+addr+", ,"+addr+"\nfingerprint = "+fp+"\n"), 0o644)
	if out, code := runCLI(t, false, "enroll", "--config", conf, "--secret", srv.Secret, "--data", enrolled); code != 2 || !strings.Contains(out, conf+":1: server:") {
		t.Errorf("enroll with a bad agent.conf: exit %d\n%s", code, out)
	}
	if now := treeOf(t, enrolled); !sameMap(before, now) {
		t.Error("enroll with a bad agent.conf changed the enrolled agent's folder")
	}
}

// install writes the list to agent.conf and enrolls with it; installing
// again with another list and no secret (the same fingerprint: the same
// server, with a replica added) makes the kept enrollment dial the new list.
func TestAgentInstallWritesTheServerList(t *testing.T) {
	_, agentBin := binaries(t)
	a := servertest.New(t)
	b := replicaOf(t, a)
	root := t.TempDir()
	fp := a.Fingerprint()
	in, out := installAgent(t, agentBin, root, "--server", a.Addr(), "--fingerprint", fp, "--secret", a.Secret, "--machine-id", "install-replicas")
	if !strings.Contains(out, "Enrolled with "+a.Addr()) {
		t.Fatalf("install said:\n%s", out)
	}
	two := a.Addr() + "," + b.Addr()
	_, out = installAgent(t, agentBin, root, "--server", two, "--fingerprint", fp)
	if !strings.Contains(out, "the agent now dials "+two) {
		t.Fatalf("install with a second address said:\n%s", out)
	}
	conf, _ := os.ReadFile(in.conf)
	if !strings.Contains(string(conf), "server = "+two+"\n") {
		t.Fatalf("agent.conf:\n%s", conf)
	}
	e, err := (state.Dir{Path: in.data}).Enrollment()
	if err != nil || e.AddressList() != two {
		t.Fatalf("enrollment dials %q (%v), want %s", e.AddressList(), err, two)
	}
	if out, code := in.run(t, "status"); code != 0 || !strings.Contains(out, "server:       "+two) {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(root, installer.AgentConfig)); err != nil {
		t.Fatal(err)
	}
}
