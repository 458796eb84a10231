package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/quic-go/quic-go"

	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/agent/client"
	"github.com/tallyhq/tally/agent/runner"
	"github.com/tallyhq/tally/agent/state"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/common/logging"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// An agent enrolls over real QUIC and its inventory is found through the
// admin API.
func TestEndToEndInventoryThroughAdminAPI(t *testing.T) {
	srv := servertest.New(t)
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	res, err := a.Post(ctx(t))
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	if res.Sent != 1 || res.Pending != 0 {
		t.Fatalf("flush result %+v, want 1 sent, 0 pending", res)
	}
	cs, err := srv.Admin.Computers(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 {
		t.Fatalf("computers = %d, want 1", len(cs))
	}
	c, err := srv.Admin.Computer(ctx(t), cs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != "Active" || c.Basic == nil || c.Basic.Hostname == "" || c.Basic.Hints.MachineID != a.MachineID {
		t.Fatalf("computer %+v: want Active with basic inventory and machine-id %s", c, a.MachineID)
	}
	if c.Basic.CPUThreads == 0 || c.Basic.MemoryBytes == 0 || c.Basic.OS == "" {
		t.Fatalf("basic inventory incomplete: %+v", c.Basic)
	}
	if c.NodeID != a.Enrollment().NodeID {
		t.Fatalf("node %s, want %s", c.NodeID, a.Enrollment().NodeID)
	}
	if c.FirstSeen.IsZero() || c.LastSeen.Before(c.FirstSeen) {
		t.Fatalf("first/last seen %v / %v", c.FirstSeen, c.LastSeen)
	}
}

func computerCount(t *testing.T, srv *servertest.Server) int {
	t.Helper()
	cs, err := srv.Admin.Computers(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	return len(cs)
}

func TestWrongOrRevokedSecretStoresNothing(t *testing.T) {
	srv := servertest.New(t)
	_, err := agenttest.TryNew(t, srv, agenttest.Options{Secret: "not-the-secret-at-all"})
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Status != protocol.StatusBadSecret {
		t.Fatalf("wrong secret: err = %v, want StatusBadSecret", err)
	}
	if !strings.Contains(err.Error(), "enrollment secret is wrong") {
		t.Fatalf("error is not a clear sentence: %v", err)
	}

	s, err := srv.Admin.CreateSecret(ctx(t), adminapiSecret("to-revoke"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Admin.RevokeSecret(ctx(t), s.ID); err != nil {
		t.Fatal(err)
	}
	_, err = agenttest.TryNew(t, srv, agenttest.Options{Secret: s.Value})
	if !errors.As(err, &pe) || pe.Status != protocol.StatusBadSecret {
		t.Fatalf("revoked secret: err = %v, want StatusBadSecret", err)
	}
	if n := computerCount(t, srv); n != 0 {
		t.Fatalf("computers after refused enrollments = %d, want 0", n)
	}
	ev, err := srv.Admin.Events(ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ev {
		if e.ComputerID != 0 || e.NodeID != "" {
			t.Fatalf("refused enrollment left an event: %+v", e)
		}
	}
	// A valid secret still works afterwards.
	agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	if n := computerCount(t, srv); n != 1 {
		t.Fatalf("computers = %d, want 1", n)
	}
}

// countingHandler wraps the server's request count: a pinned agent that
// refuses the server must not have sent it anything.
func TestPinMismatchSendsNothing(t *testing.T) {
	srv := servertest.New(t)
	dir, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	wrong := strings.Repeat("ab", 32)
	_, _, err = runner.Enroll(ctx(t), dir, runner.EnrollOptions{Server: srv.Addr(), Fingerprint: wrong, Secret: srv.Secret,
		MachineID: "pin-test", Logger: logging.Discard()})
	if !errors.Is(err, identity.ErrFingerprintMismatch) {
		t.Fatalf("err = %v, want fingerprint mismatch", err)
	}
	if n := computerCount(t, srv); n != 0 {
		t.Fatalf("server stored %d computers for an agent that should have sent nothing", n)
	}
	ev, _ := srv.Admin.Events(ctx(t), nil)
	for _, e := range ev {
		if strings.HasPrefix(e.Actor, "node:") {
			t.Fatalf("server heard from the agent: %+v", e)
		}
	}
}

// A client without a certificate cannot even connect; an unenrolled key can
// send nothing but Enroll.
func TestNoCertificateAndUnenrolledKey(t *testing.T) {
	srv := servertest.New(t)
	pin := srv.Fingerprint()
	noCert := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{protocol.ALPN}, MinVersion: tls.VersionTLS13}
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(c, srv.Addr(), noCert, &quic.Config{})
	if err == nil {
		// The handshake may finish on the client before the server rejects
		// the missing certificate: a request must still fail.
		st, serr := conn.OpenStreamSync(c)
		if serr == nil {
			st.Write(agenttest.Envelope(t, protocol.KindInventory, 1, &protocol.InventoryRequest{}))
			st.Close()
			buf := new(bytes.Buffer)
			_, rerr := buf.ReadFrom(st)
			if rerr == nil && buf.Len() > 0 {
				t.Fatalf("server answered a client without a certificate: %x", buf.Bytes())
			}
		}
		conn.CloseWithError(0, "")
	}

	key, _ := identity.NewKey()
	cl, err := client.New(client.Config{Server: srv.Addr(), Fingerprint: pin, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	inv := protocol.InventoryRequest{Basic: protocol.BasicInventory{Hostname: "intruder", Hints: protocol.Hints{InstanceID: "x"}}}
	_, err = cl.Call(ctx(t), protocol.KindInventory, 1, &inv, nil)
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Status != protocol.StatusNotEnrolled {
		t.Fatalf("unenrolled inventory: err = %v, want StatusNotEnrolled", err)
	}
	if n := computerCount(t, srv); n != 0 {
		t.Fatalf("computers = %d, want 0", n)
	}
}

// The node is the key on the connection: nothing in a request can name
// another node, so a post made with B's key lands on B's computer only.
func TestNodeCannotPostAsAnother(t *testing.T) {
	srv := servertest.New(t)
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	b := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	if _, err := a.Post(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// B sends a post that carries A's identity hints and a forged hostname.
	bInv, _ := a.CollectBasic(ctx(t))
	bInv.Hostname = "forged-by-b"
	raw := b.RawClient(t)
	if _, err := raw.Call(ctx(t), protocol.KindInventory, b.NextSeq(t), &protocol.InventoryRequest{Basic: bInv}, nil); err != nil {
		t.Fatal(err)
	}
	ca, err := srv.Admin.Computer(ctx(t), a.Enrollment().ComputerID)
	if err != nil {
		t.Fatal(err)
	}
	if ca.Hostname == "forged-by-b" {
		t.Fatal("B's post changed A's computer")
	}
	cb, _ := srv.Admin.Computer(ctx(t), b.Enrollment().ComputerID)
	if cb.Hostname != "forged-by-b" {
		t.Fatalf("B's post did not land on B's computer: %q", cb.Hostname)
	}
}

func TestReplayAppliedOnceWithFirstOutcome(t *testing.T) {
	srv := servertest.New(t)
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	raw := a.RawClient(t)
	seq := a.NextSeq(t)
	basic, _ := a.CollectBasic(ctx(t))
	basic.Hostname = "first"
	req := agenttest.Envelope(t, protocol.KindInventory, seq, &protocol.InventoryRequest{Basic: basic})
	first, err := raw.RoundTrip(ctx(t), seq, req)
	if err != nil || first.Repeat {
		t.Fatalf("first: %+v %v", first, err)
	}
	// The same request again, and a different body under the same sequence
	// number: neither is applied a second time.
	again, err := raw.RoundTrip(ctx(t), seq, req)
	if err != nil {
		t.Fatal(err)
	}
	basic.Hostname = "second"
	other := agenttest.Envelope(t, protocol.KindInventory, seq, &protocol.InventoryRequest{Basic: basic})
	third, err := raw.RoundTrip(ctx(t), seq, other)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []protocol.Response{again, third} {
		if !r.Repeat || !bytes.Equal(r.Body, first.Body) || r.Status != first.Status {
			t.Fatalf("repeat answered %+v, want the first outcome %+v", r, first)
		}
	}
	c, _ := srv.Admin.Computer(ctx(t), a.Enrollment().ComputerID)
	if c.Hostname != "first" {
		t.Fatalf("hostname %q: the replay with another body was applied", c.Hostname)
	}
	// A sequence number far below the window is refused, not applied.
	for i := 0; i < store.SeqWindow+5; i++ {
		a.NextSeq(t)
	}
	s2 := a.NextSeq(t)
	if _, err := raw.RoundTrip(ctx(t), s2, agenttest.Envelope(t, protocol.KindInventory, s2, &protocol.InventoryRequest{Basic: basic})); err != nil {
		t.Fatal(err)
	}
	stale := seq + 1 // never used, and now more than the window behind
	_, err = raw.RoundTrip(ctx(t), stale, agenttest.Envelope(t, protocol.KindInventory, stale, &protocol.InventoryRequest{Basic: basic}))
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Status != protocol.StatusStaleSeq {
		t.Fatalf("stale sequence: err = %v, want StatusStaleSeq", err)
	}
}

// Concurrent requests of one node may arrive out of order: each is applied.
func TestOutOfOrderSequenceNumbersAreApplied(t *testing.T) {
	srv := servertest.New(t)
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	raw := a.RawClient(t)
	basic, _ := a.CollectBasic(ctx(t))
	s1, s2 := a.NextSeq(t), a.NextSeq(t)
	for _, s := range []uint64{s2, s1} {
		r, err := raw.RoundTrip(ctx(t), s, agenttest.Envelope(t, protocol.KindInventory, s, &protocol.InventoryRequest{Basic: basic}))
		if err != nil || r.Repeat {
			t.Fatalf("seq %d: %+v %v", s, r, err)
		}
	}
}

func badMessages(t *testing.T) map[string][]byte {
	good := agenttest.Envelope(t, protocol.KindInventory, 7, &protocol.InventoryRequest{Basic: protocol.BasicInventory{Hostname: "h", Hints: protocol.Hints{InstanceID: "i"}}})
	deep := []byte{}
	for i := 0; i < 40; i++ {
		deep = append(deep, 0x81) // array of one element, nested 40 deep
	}
	deep = append(deep, 0x00)
	deepReq, _ := cbor.Marshal(map[int]any{1: 1, 2: 1, 3: 2, 4: 9, 5: cbor.RawMessage(deep)})
	// Duplicate key 3 in the envelope map.
	dup := []byte{0xa5, 0x01, 0x01, 0x02, 0x01, 0x03, 0x02, 0x03, 0x02, 0x04, 0x08}
	unknownKind, _ := protocol.Marshal(protocol.Request{Major: 1, Rev: 1, Kind: 999, Seq: 10})
	badMajor, _ := protocol.Marshal(protocol.Request{Major: 9, Rev: 1, Kind: protocol.KindInventory, Seq: 11})
	wrongType, _ := cbor.Marshal(map[int]any{1: "one", 2: 1, 3: 2, 4: 12})
	indef := []byte{0xbf, 0x01, 0x01, 0xff}
	tagged := []byte{0xc1, 0x1a, 0x00, 0x00, 0x00, 0x01}
	badBody := agenttest.Envelope(t, protocol.KindInventory, 13, map[int]any{1: "not a struct"})
	return map[string][]byte{
		"garbage":        []byte("this is not cbor at all"),
		"truncated":      good[:len(good)/2],
		"trailing bytes": append(append([]byte{}, good...), 0x00),
		"empty":          {},
		"too deep":       deepReq,
		"duplicate key":  dup,
		"unknown kind":   unknownKind,
		"major version":  badMajor,
		"wrong type":     wrongType,
		"indefinite":     indef,
		"tag":            tagged,
		"bad body":       badBody,
		"oversized":      bytes.Repeat([]byte{0x00}, protocol.MaxRequestSize+10),
	}
}

func TestBadInputGetsErrorsAndChangesNothing(t *testing.T) {
	srv := servertest.New(t)
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	b := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	if _, err := a.Post(ctx(t)); err != nil {
		t.Fatal(err)
	}
	before, _ := srv.Admin.Computer(ctx(t), a.Enrollment().ComputerID)
	evBefore, _ := srv.Admin.Events(ctx(t), nil)
	raw := a.RawClient(t)
	want := map[string]protocol.Status{
		"unknown kind": protocol.StatusUnknownKind, "major version": protocol.StatusUnsupportedVersion,
		"oversized": protocol.StatusTooLarge,
	}
	for name, msg := range badMessages(t) {
		resp, err := raw.RoundTrip(ctx(t), 0, msg)
		var pe *protocol.Error
		if !errors.As(err, &pe) {
			t.Fatalf("%s: got %+v, %v; want an error response", name, resp, err)
		}
		if w, ok := want[name]; ok && pe.Status != w {
			t.Errorf("%s: status %s, want %s", name, pe.Status, w)
		} else if !ok && pe.Status != protocol.StatusBadRequest {
			t.Errorf("%s: status %s (%s), want bad-request", name, pe.Status, pe.Message)
		}
		if pe.Message == "" {
			t.Errorf("%s: error without a message", name)
		}
		// The same connection still serves a good request.
		s := a.NextSeq(t)
		basic, _ := a.CollectBasic(ctx(t))
		if _, err := raw.RoundTrip(ctx(t), s, agenttest.Envelope(t, protocol.KindInventory, s, &protocol.InventoryRequest{Basic: basic})); err != nil {
			t.Fatalf("after %s, a good request on the same connection failed: %v", name, err)
		}
	}
	// Another agent on another connection is served too.
	if _, err := b.Post(ctx(t)); err != nil {
		t.Fatalf("other agent after bad input: %v", err)
	}
	after, _ := srv.Admin.Computer(ctx(t), a.Enrollment().ComputerID)
	if after.Hostname != before.Hostname || after.Status != before.Status {
		t.Fatalf("bad input changed the computer: %+v → %+v", before, after)
	}
	evAfter, _ := srv.Admin.Events(ctx(t), nil)
	if len(evAfter) != len(evBefore)+0 {
		t.Fatalf("bad input wrote audit events: %d → %d", len(evBefore), len(evAfter))
	}
	if n := computerCount(t, srv); n != 2 {
		t.Fatalf("computers = %d, want 2", n)
	}
}

// A re-imaged machine (same hints, new key and data folder) stays one
// computer; two live agents with the same hints are two computers, flagged.
func TestReimagedMachineAndClones(t *testing.T) {
	srv := servertest.New(t)
	old := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret, MachineID: "reimaged-1"})
	if _, err := old.Post(ctx(t)); err != nil {
		t.Fatal(err)
	}
	oldNode := old.Enrollment().NodeID
	// Re-imaged: new data folder and key, same hints; the old key falls silent.
	fresh := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret, MachineID: "reimaged-1"})
	if _, err := fresh.Post(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if fresh.Enrollment().ComputerID != old.Enrollment().ComputerID {
		t.Fatalf("re-imaged machine became computer %d, want %d", fresh.Enrollment().ComputerID, old.Enrollment().ComputerID)
	}
	if n := computerCount(t, srv); n != 1 {
		t.Fatalf("computers = %d, want 1", n)
	}
	ev, _ := srv.Admin.Events(ctx(t), map[string][]string{"kind": {store.EventKeyRevoked}})
	if len(ev) != 1 || ev[0].NodeID != oldNode {
		t.Fatalf("revocation events %+v, want one for %s", ev, oldNode)
	}

	// Clones: both alive at once.
	c1 := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret, MachineID: "golden-image"})
	if _, err := c1.Post(ctx(t)); err != nil {
		t.Fatal(err)
	}
	c2 := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret, MachineID: "golden-image"})
	if _, err := c2.Post(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Post(ctx(t)); err != nil { // the first clone is still alive
		t.Fatalf("first clone's post after the second enrolled: %v", err)
	}
	if _, err := c2.Post(ctx(t)); err != nil {
		t.Fatal(err)
	}
	cs, _ := srv.Admin.Computers(ctx(t))
	var flagged []int64
	for _, c := range cs {
		for _, f := range c.Flags {
			if f == store.FlagDuplicateHints {
				flagged = append(flagged, c.ID)
			}
		}
	}
	if len(cs) != 3 || len(flagged) != 2 {
		t.Fatalf("computers %d (want 3: the re-imaged one and two clones), flagged %v (want 2)", len(cs), flagged)
	}
	x, _ := srv.Admin.Computer(ctx(t), flagged[0])
	if len(x.DuplicateOf) != 1 || x.DuplicateOf[0] != flagged[1] {
		t.Fatalf("computer %d duplicate_of %v, want [%d]", x.ID, x.DuplicateOf, flagged[1])
	}
}

// Many agents at once, to exercise group commit and concurrency.
func TestManyAgentsConcurrently(t *testing.T) {
	srv := servertest.New(t)
	const n = 40
	agents := make([]*agenttest.Agent, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range agents {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			a, err := agenttest.TryNew(t, srv, agenttest.Options{Secret: srv.Secret, MachineID: fmt.Sprintf("many-%d", i)})
			if err != nil {
				errs <- err
				return
			}
			agents[i] = a
			for j := 0; j < 3; j++ {
				if _, err := a.Post(ctx(t)); err != nil {
					errs <- err
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if c := computerCount(t, srv); c != n {
		t.Fatalf("computers = %d, want %d", c, n)
	}
}
