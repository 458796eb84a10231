package integration

// Transport fallback (issue 5, item 5): where UDP to the server is dropped,
// the agent posts over TLS 1.3 on TCP, on the same port number, with the
// same identities and pinning, and says so in its status; once UDP gets
// through again, it returns to QUIC.
//
// UDP is dropped for real, in two ways:
//
//   - TestAgentFallsBackToTCPWhereUDPIsDropped always runs. Between the
//     agent and the real server stands a front, as a firewall or a NAT
//     would: on one port number it passes TCP through to the server's TCP
//     listener byte for byte (TLS stays end to end: the pin is checked
//     against the real server's key) and swallows every UDP datagram
//     without an answer, which is what a firewall that drops UDP does. The
//     server itself runs as always: QUIC and TCP on one port. Later the
//     front relays UDP to the server's QUIC port, as a network that lets
//     UDP through again.
//   - TestAgentBinaryFallsBackWhereTheKernelDropsUDP puts the built server
//     and agent in two network namespaces joined by a veth pair, and drops
//     UDP in the kernel with a policy-routing rule (a blackhole for
//     "ipproto udp" arriving from the agent's side), with iproute2 alone.
//     It needs root and ip(8); without them it is skipped and says why.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/agent/client"
	"github.com/tallyhq/tally/agent/runner"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/common/logging"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

// samePort binds UDP and TCP on one loopback port number, as the server
// does, for the fronts and impostors below.
func samePort(t *testing.T) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		udp, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tcp, err := net.Listen("tcp", udp.LocalAddr().String())
		if err == nil {
			t.Cleanup(func() { udp.Close(); tcp.Close() })
			return udp, tcp
		}
		udp.Close()
	}
	t.Fatal("no port free for both UDP and TCP")
	return nil, nil
}

// front stands between agents and a server: TCP is passed through, UDP is
// dropped until relayUDP is called, then relayed.
type front struct {
	addr    string
	server  string
	udp     net.PacketConn
	relay   atomic.Bool
	dropped atomic.Int64 // UDP datagrams swallowed
	relayed atomic.Int64 // UDP datagrams passed to the server

	mu       sync.Mutex
	upstream map[string]net.Conn // agent's UDP address → socket to the server
}

func newFront(t *testing.T, server string) *front {
	t.Helper()
	udp, tcp := samePort(t)
	f := &front{addr: udp.LocalAddr().String(), server: server, udp: udp, upstream: map[string]net.Conn{}}
	go f.serveUDP()
	go f.serveTCP(tcp)
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.upstream {
			c.Close()
		}
	})
	return f
}

func (f *front) relayUDP() { f.relay.Store(true) }

func (f *front) serveUDP() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := f.udp.ReadFrom(buf)
		if err != nil {
			return
		}
		if !f.relay.Load() {
			f.dropped.Add(1)
			continue
		}
		up, err := f.upstreamFor(from)
		if err != nil {
			continue
		}
		f.relayed.Add(1)
		up.Write(buf[:n])
	}
}

func (f *front) upstreamFor(from net.Addr) (net.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.upstream[from.String()]; ok {
		return c, nil
	}
	c, err := net.Dial("udp", f.server)
	if err != nil {
		return nil, err
	}
	f.upstream[from.String()] = c
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			f.udp.WriteTo(buf[:n], from)
		}
	}()
	return c, nil
}

func (f *front) serveTCP(ln net.Listener) {
	for {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer in.Close()
			out, err := net.Dial("tcp", f.server)
			if err != nil {
				return
			}
			defer out.Close()
			done := make(chan struct{}, 2)
			go func() { io.Copy(out, in); done <- struct{}{} }()
			go func() { io.Copy(in, out); done <- struct{}{} }()
			<-done
		}()
	}
}

// at is a server as agenttest sees it, reached at another address.
type at struct{ addr, fingerprint string }

func (s at) Addr() string        { return s.addr }
func (s at) Fingerprint() string { return s.fingerprint }

func TestServerListensOnTCPAtTheQUICPort(t *testing.T) {
	srv := servertest.New(t)
	a := srv.Addresses()
	udp, err := net.ResolveUDPAddr("udp", a.QUIC)
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.ResolveTCPAddr("tcp", a.TCP)
	if err != nil {
		t.Fatalf("addresses.json tcp %q: %v", a.TCP, err)
	}
	if udp.Port != tcp.Port || !udp.IP.Equal(tcp.IP) {
		t.Fatalf("QUIC on %s, TCP on %s: want one address", a.QUIC, a.TCP)
	}
	onDisk, err := srv.Dir().ReadAddresses()
	if err != nil || onDisk.TCP != a.TCP {
		t.Fatalf("addresses.json: %+v %v", onDisk, err)
	}
}

// Must hold: with UDP to the server dropped, the agent posts over TCP and
// the server stores it; the agent says "tcp" in its status, and an agent
// started once UDP gets through again is back on QUIC.
func TestAgentFallsBackToTCPWhereUDPIsDropped(t *testing.T) {
	srv := servertest.New(t)
	f := newFront(t, srv.Addr())

	began := time.Now()
	a := agenttest.New(t, at{f.addr, srv.Fingerprint()}, agenttest.Options{Secret: srv.Secret})
	res, err := a.Post(ctx(t))
	if err != nil || res.Sent != 1 {
		t.Fatalf("post with UDP dropped: %+v %v", res, err)
	}
	took := time.Since(began)
	if f.dropped.Load() == 0 {
		t.Fatal("no UDP datagram reached the front: QUIC was never tried")
	}
	c, err := srv.Admin.Computer(ctx(t), a.Enrollment().ComputerID)
	if err != nil || c.Basic == nil || c.LastSeen.IsZero() || c.Hostname == "" {
		t.Fatalf("the post over TCP was not stored: %+v %v", c, err)
	}
	st, err := a.Dir.LoadStatus()
	if err != nil || st.Transport != client.TransportTCP {
		t.Fatalf("status transport %q (%v), want tcp", st.Transport, err)
	}
	t.Logf("enrolled and posted over TCP in %v (%d QUIC datagrams dropped)", took.Round(time.Millisecond), f.dropped.Load())

	// UDP gets through again: the next agent run is back on QUIC.
	f.relayUDP()
	dropped := f.dropped.Load()
	b, err := runner.Open(runner.Config{Dir: a.Dir, Logger: logging.Discard(), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, _, err := b.QueueInventory(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if res, err := b.Flush(ctx(t)); err != nil || res.Sent != 1 {
		t.Fatalf("post with UDP back: %+v %v", res, err)
	}
	if st, _ := a.Dir.LoadStatus(); st.Transport != client.TransportQUIC {
		t.Fatalf("status transport %q once UDP gets through, want quic", st.Transport)
	}
	if f.relayed.Load() == 0 || f.dropped.Load() != dropped {
		t.Fatalf("relayed %d, dropped %d more: the post did not go over UDP", f.relayed.Load(), f.dropped.Load()-dropped)
	}
	c2, err := srv.Admin.Computer(ctx(t), a.Enrollment().ComputerID)
	if err != nil || c2.LastSeen.Before(c.LastSeen) {
		t.Fatalf("second post: %+v %v", c2, err)
	}
}

// A client that fell back remembers it: it dials TCP directly (no wait for
// QUIC) until RetryQUICAfter, then tries QUIC again and returns to it.
func TestClientKeepsToTCPForAWhileThenRetriesQUIC(t *testing.T) {
	srv := servertest.New(t)
	f := newFront(t, srv.Addr())
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	key, _, err := a.Dir.Key()
	if err != nil {
		t.Fatal(err)
	}
	const fallback, retry = 700 * time.Millisecond, 2 * time.Second
	cl, err := client.New(client.Config{Server: f.addr, Fingerprint: srv.Fingerprint(), Key: key,
		FallbackDelay: fallback, RetryQUICAfter: retry})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	post := func() time.Duration {
		t.Helper()
		began := time.Now()
		basic, _ := a.CollectBasic(ctx(t))
		if _, err := cl.Call(ctx(t), protocol.KindInventory, a.NextSeq(t), &protocol.InventoryRequest{Basic: basic}, nil); err != nil {
			t.Fatal(err)
		}
		return time.Since(began)
	}
	if took := post(); took < fallback || cl.Transport() != client.TransportTCP {
		t.Fatalf("first post took %v over %s; want tcp after the %v fallback delay", took, cl.Transport(), fallback)
	}
	fellBack := time.Now() // a little after the client chose TCP
	cl.Close()             // a new connection now goes straight to TCP
	if took := post(); took >= fallback || cl.Transport() != client.TransportTCP {
		t.Fatalf("post after the fallback took %v over %s; want tcp at once", took, cl.Transport())
	}
	f.relayUDP()
	time.Sleep(time.Until(fellBack.Add(retry)))
	post()
	if cl.Transport() != client.TransportQUIC || f.relayed.Load() == 0 {
		t.Fatalf("after RetryQUICAfter with UDP back: %s, %d datagrams relayed; want quic", cl.Transport(), f.relayed.Load())
	}
}

// The transports can be chosen: "tcp" never sends UDP, "quic" never falls
// back.
func TestClientTransportChoice(t *testing.T) {
	srv := servertest.New(t)
	f := newFront(t, srv.Addr())
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	key, _, _ := a.Dir.Key()
	tcp, err := client.New(client.Config{Server: f.addr, Fingerprint: srv.Fingerprint(), Key: key, Transport: client.TransportTCP})
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	if tcp.Transport() != client.TransportTCP {
		t.Fatalf("before connecting: %s", tcp.Transport())
	}
	basic, _ := a.CollectBasic(ctx(t))
	if _, err := tcp.Call(ctx(t), protocol.KindInventory, a.NextSeq(t), &protocol.InventoryRequest{Basic: basic}, nil); err != nil {
		t.Fatal(err)
	}
	if f.dropped.Load() != 0 {
		t.Fatalf("transport tcp sent %d UDP datagrams", f.dropped.Load())
	}

	quicOnly, err := client.New(client.Config{Server: f.addr, Fingerprint: srv.Fingerprint(), Key: key, Transport: client.TransportQUIC,
		DialTimeout: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer quicOnly.Close()
	_, err = quicOnly.Call(ctx(t), protocol.KindInventory, a.NextSeq(t), &protocol.InventoryRequest{Basic: basic}, nil)
	if !client.Retryable(err) || quicOnly.Transport() != client.TransportQUIC {
		t.Fatalf("transport quic with UDP dropped: %v over %s; want a transport error", err, quicOnly.Transport())
	}
	if _, err := client.New(client.Config{Server: f.addr, Fingerprint: srv.Fingerprint(), Key: key, Transport: "udp"}); err == nil {
		t.Fatal("an unknown transport was accepted")
	}
}

// tcpClient is a client of a's identity that speaks TCP only.
func tcpClient(t *testing.T, a *agenttest.Agent, srv *servertest.Server) *client.Client {
	t.Helper()
	key, _, err := a.Dir.Key()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{Server: srv.Addr(), Fingerprint: srv.Fingerprint(), Key: key, Transport: client.TransportTCP})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Bad input over TCP gets the same error answers as over QUIC, and the
// server, and the connection where the framing allows, carry on.
func TestTCPBadInputGetsErrorsAndServerServesOn(t *testing.T) {
	srv := servertest.New(t)
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	if _, err := a.Post(ctx(t)); err != nil {
		t.Fatal(err)
	}
	before, _ := srv.Admin.Computer(ctx(t), a.Enrollment().ComputerID)
	raw := tcpClient(t, a, srv)
	want := map[string]protocol.Status{
		"unknown kind": protocol.StatusUnknownKind, "major version": protocol.StatusUnsupportedVersion,
		"oversized": protocol.StatusTooLarge,
	}
	basic, _ := a.CollectBasic(ctx(t))
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
		s := a.NextSeq(t)
		if _, err := raw.RoundTrip(ctx(t), s, agenttest.Envelope(t, protocol.KindInventory, s, &protocol.InventoryRequest{Basic: basic})); err != nil {
			t.Fatalf("after %s, a good request failed: %v", name, err)
		}
		if raw.Transport() != client.TransportTCP {
			t.Fatalf("transport %s", raw.Transport())
		}
	}

	// Frames by hand, on one connection: garbage and an empty frame are
	// answered and the connection serves on; an oversized length is
	// answered, then the connection is closed.
	conn := dialTLS(t, a, srv.Addresses().TCP, srv.Fingerprint())
	for name, frame := range map[string][]byte{"garbage": []byte("\xff\xfe not cbor"), "empty": {}} {
		if resp := exchange(t, conn, frame); resp.Status != protocol.StatusBadRequest || resp.Message == "" {
			t.Errorf("%s frame: %+v, want bad-request with a message", name, resp)
		}
	}
	s := a.NextSeq(t)
	if resp := exchange(t, conn, agenttest.Envelope(t, protocol.KindInventory, s, &protocol.InventoryRequest{Basic: basic})); resp.Status != protocol.StatusOK || resp.Seq != s {
		t.Fatalf("good frame after bad ones on the same connection: %+v", resp)
	}
	conn.Write(binary.BigEndian.AppendUint32(nil, 1<<31))
	if resp, err := readFrameResponse(conn); err != nil || resp.Status != protocol.StatusTooLarge {
		t.Fatalf("oversized length: %+v %v, want too-large", resp, err)
	}
	if _, err := readFrameResponse(conn); err == nil {
		t.Fatal("the connection stayed open after an oversized length")
	}
	// A frame cut short, then the connection closed.
	cut := dialTLS(t, a, srv.Addresses().TCP, srv.Fingerprint())
	cut.Write(append(binary.BigEndian.AppendUint32(nil, 1000), "abc"...))
	cut.Close()

	if _, err := a.Post(ctx(t)); err != nil {
		t.Fatalf("post after bad input over TCP: %v", err)
	}
	after, _ := srv.Admin.Computer(ctx(t), a.Enrollment().ComputerID)
	if after.Hostname != before.Hostname || after.Status != before.Status {
		t.Fatalf("bad input changed the computer: %+v → %+v", before, after)
	}
}

func dialTLS(t *testing.T, a *agenttest.Agent, addr, pin string) *tls.Conn {
	t.Helper()
	key, _, err := a.Dir.Key()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := identity.SelfSigned(key, "test")
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", addr, identity.ClientTLS(cert, pin, protocol.ALPN))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func exchange(t *testing.T, c *tls.Conn, req []byte) protocol.Response {
	t.Helper()
	if _, err := c.Write(protocol.Frame(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := readFrameResponse(c)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	return resp
}

func readFrameResponse(r io.Reader) (protocol.Response, error) {
	raw, _, err := protocol.ReadFrame(r, protocol.MaxResponseSize)
	if err != nil {
		return protocol.Response{}, err
	}
	var resp protocol.Response
	return resp, protocol.Unmarshal(raw, &resp)
}

// Over TCP as over QUIC, an unknown key may only enroll.
func TestTCPUnenrolledKeyCanOnlyEnroll(t *testing.T) {
	srv := servertest.New(t)
	key, _ := identity.NewKey()
	cl, err := client.New(client.Config{Server: srv.Addr(), Fingerprint: srv.Fingerprint(), Key: key, Transport: client.TransportTCP})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	inv := protocol.InventoryRequest{Basic: protocol.BasicInventory{Hostname: "intruder", Hints: protocol.Hints{InstanceID: "x"}}}
	var pe *protocol.Error
	if _, err := cl.Call(ctx(t), protocol.KindInventory, 1, &inv, nil); !errors.As(err, &pe) || pe.Status != protocol.StatusNotEnrolled {
		t.Fatalf("unenrolled inventory over TCP: %v, want not-enrolled", err)
	}
	enroll := protocol.EnrollRequest{Secret: "wrong", Hostname: "newcomer", Hints: protocol.Hints{InstanceID: "tcp-newcomer"}, AgentVersion: "test"}
	if _, err := cl.Call(ctx(t), protocol.KindEnroll, 2, &enroll, nil); !errors.As(err, &pe) || pe.Status != protocol.StatusBadSecret {
		t.Fatalf("enroll with a wrong secret over TCP: %v, want bad-secret", err)
	}
	if n := computerCount(t, srv); n != 0 {
		t.Fatalf("computers = %d, want 0", n)
	}
	enroll.Secret = srv.Secret
	var out protocol.EnrollResponse
	if _, err := cl.Call(ctx(t), protocol.KindEnroll, 3, &enroll, &out); err != nil || out.ComputerID == 0 {
		t.Fatalf("enroll over TCP: %+v %v", out, err)
	}
	inv.Basic.Hostname = "newcomer"
	if _, err := cl.Call(ctx(t), protocol.KindInventory, 4, &inv, nil); err != nil {
		t.Fatalf("inventory after enrolling over TCP: %v", err)
	}
	if c, err := srv.Admin.Computer(ctx(t), out.ComputerID); err != nil || c.Hostname != "newcomer" {
		t.Fatalf("computer: %+v %v", c, err)
	}
}

// impostor is another server (another key) on one port number: its TCP
// side reports what each connection got; its UDP side is a QUIC server
// (answering) or a black hole.
type impostor struct {
	addr     string
	accepted atomic.Int64
	got      chan string // per TCP connection: how its handshake ended and what came after
}

func newImpostor(t *testing.T, answerQUIC bool) *impostor {
	t.Helper()
	key, _ := identity.NewKey()
	cert, err := identity.SelfSigned(key, "impostor")
	if err != nil {
		t.Fatal(err)
	}
	udp, tcp := samePort(t)
	im := &impostor{addr: udp.LocalAddr().String(), got: make(chan string, 8)}
	if answerQUIC {
		tr := &quic.Transport{Conn: udp}
		ln, err := tr.Listen(identity.ServerTLS(cert, protocol.ALPN), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close(); tr.Close() })
		go func() {
			for {
				c, err := ln.Accept(context.Background())
				if err != nil {
					return
				}
				go func() {
					st, err := c.AcceptStream(context.Background())
					if err == nil {
						b, _ := io.ReadAll(st)
						im.got <- fmt.Sprintf("QUIC request of %d bytes", len(b))
					}
				}()
			}
		}()
	} else {
		go func() {
			buf := make([]byte, 2048)
			for {
				if _, _, err := udp.ReadFrom(buf); err != nil {
					return
				}
			}
		}()
	}
	go func() {
		for {
			nc, err := tcp.Accept()
			if err != nil {
				return
			}
			im.accepted.Add(1)
			go func() {
				defer nc.Close()
				nc.SetDeadline(time.Now().Add(10 * time.Second))
				c := tls.Server(nc, identity.ServerTLS(cert, protocol.ALPN))
				herr := c.Handshake()
				n, _ := io.Copy(io.Discard, c)
				im.got <- fmt.Sprintf("handshake: %v; application bytes: %d", herr, n)
			}()
		}
	}()
	return im
}

// A server whose key is not the pinned one gets nothing, over either
// transport, and a pin mismatch on QUIC never falls back to TCP.
func TestPinMismatchSendsNothingOverTCP(t *testing.T) {
	srv := servertest.New(t)
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	key, _, _ := a.Dir.Key()
	basic, _ := a.CollectBasic(ctx(t))
	post := func(addr, transport string) error {
		cl, err := client.New(client.Config{Server: addr, Fingerprint: srv.Fingerprint(), Key: key, Transport: transport,
			FallbackDelay: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		_, err = cl.Call(ctx(t), protocol.KindInventory, a.NextSeq(t), &protocol.InventoryRequest{Basic: basic}, nil)
		return err
	}
	expectNothing := func(what string, im *impostor) {
		t.Helper()
		select {
		case got := <-im.got:
			if !strings.Contains(got, "application bytes: 0") || strings.Contains(got, "handshake: <nil>") {
				t.Errorf("%s: the impostor got %s", what, got)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s: the impostor's connection did not end", what)
		}
	}

	// TCP only, to an impostor.
	im := newImpostor(t, false)
	if err := post(im.addr, client.TransportTCP); !errors.Is(err, client.ErrPinMismatch) || client.Retryable(err) {
		t.Fatalf("tcp to an impostor: %v, want the pin mismatch", err)
	}
	expectNothing("tcp", im)

	// Auto, UDP dropped: the fallback to TCP meets the impostor.
	im = newImpostor(t, false)
	if err := post(im.addr, client.TransportAuto); !errors.Is(err, client.ErrPinMismatch) {
		t.Fatalf("auto to an impostor with UDP dropped: %v, want the pin mismatch", err)
	}
	expectNothing("auto over tcp", im)

	// Auto, the impostor answers QUIC: the mismatch ends it, no fallback.
	im = newImpostor(t, true)
	began := time.Now()
	if err := post(im.addr, client.TransportAuto); !errors.Is(err, client.ErrPinMismatch) {
		t.Fatalf("auto to a QUIC impostor: %v, want the pin mismatch", err)
	}
	if took := time.Since(began); took > 400*time.Millisecond {
		t.Logf("the QUIC mismatch took %v (fallback delay 500ms)", took)
	}
	time.Sleep(700 * time.Millisecond) // past the fallback delay
	if n := im.accepted.Load(); n != 0 {
		t.Fatalf("a pin mismatch on QUIC fell back to TCP (%d connections)", n)
	}
	select {
	case got := <-im.got:
		t.Fatalf("the QUIC impostor got %s", got)
	default:
	}
}

// netnsPair is two network namespaces joined by a veth pair: the server's
// (10.213.0.1) and the agent's (10.213.0.2).
type netnsPair struct {
	t             *testing.T
	server, agent string // namespace names
	serverIf      string
	serverIP      string
}

func (n *netnsPair) ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

var netnsCount atomic.Int64

// newNetnsPair makes the namespaces, or skips the test saying why it cannot.
func newNetnsPair(t *testing.T) *netnsPair {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8) from iproute2")
	}
	id := fmt.Sprintf("tly%d%d", os.Getpid()%100000, netnsCount.Add(1))
	n := &netnsPair{t: t, server: id + "s", agent: id + "a", serverIf: id + "s", serverIP: "10.213.0.1"}
	if err := n.ip("netns", "add", n.server); err != nil {
		t.Skipf("cannot make a network namespace here: %v", err)
	}
	t.Cleanup(func() { n.ip("netns", "del", n.server) })
	if err := n.ip("netns", "add", n.agent); err != nil {
		t.Skipf("cannot make a network namespace here: %v", err)
	}
	t.Cleanup(func() { n.ip("netns", "del", n.agent) })
	for _, args := range [][]string{
		{"link", "add", n.serverIf, "netns", n.server, "type", "veth", "peer", "name", id + "a", "netns", n.agent},
		{"-n", n.server, "addr", "add", n.serverIP + "/30", "dev", n.serverIf},
		{"-n", n.agent, "addr", "add", "10.213.0.2/30", "dev", id + "a"},
		{"-n", n.server, "link", "set", n.serverIf, "up"},
		{"-n", n.agent, "link", "set", id + "a", "up"},
		{"-n", n.server, "link", "set", "lo", "up"},
		{"-n", n.agent, "link", "set", "lo", "up"},
	} {
		if err := n.ip(args...); err != nil {
			t.Skipf("cannot join the namespaces: %v", err)
		}
	}
	return n
}

// dropUDP makes the server's namespace drop, silently, every UDP packet
// that arrives from the agent's side: a blackhole route chosen by a
// policy-routing rule that runs before local delivery.
func (n *netnsPair) dropUDP() error {
	for _, args := range [][]string{
		{"-n", n.server, "rule", "add", "pref", "100", "iif", n.serverIf, "ipproto", "udp", "blackhole"},
		{"-n", n.server, "rule", "add", "pref", "200", "lookup", "local"},
		{"-n", n.server, "rule", "del", "pref", "0"},
	} {
		if err := n.ip(args...); err != nil {
			return err
		}
	}
	return nil
}

func (n *netnsPair) allowUDP() error {
	return n.ip("-n", n.server, "rule", "del", "pref", "100")
}

// inNetns returns a program that runs bin in namespace ns: a script that
// execs ip(8), which execs bin, so the process keeps the script's PID and
// the helpers that start and stop binaries work unchanged.
func (n *netnsPair) inNetns(ns, bin string) string {
	n.t.Helper()
	path := filepath.Join(n.t.TempDir(), filepath.Base(bin)+"-in-"+ns)
	script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", ns, bin)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		n.t.Fatal(err)
	}
	return path
}

// Must hold, with the kernel dropping UDP: the built agent, in its own
// network namespace, enrolls and posts over TCP to the built server in
// another, which stores the post; 'tally-agent status' says tcp. With the
// rule removed, the next run is over QUIC.
func TestAgentBinaryFallsBackWhereTheKernelDropsUDP(t *testing.T) {
	n := newNetnsPair(t)
	if err := n.dropUDP(); err != nil {
		t.Skipf("cannot drop UDP with a routing rule here: %v", err)
	}
	serverBin, agentBin := binaries(t)
	server, agent := n.inNetns(n.server, serverBin), n.inNetns(n.agent, agentBin)
	data := t.TempDir()
	p := startServerBinaryAt(t, server, data, n.serverIP+":0")
	if p.addrs.TCP == "" {
		t.Fatalf("the server does not listen on TCP: %+v", p.addrs)
	}
	out, code := runBin(t, server, "enroll-info", "--data", data, "--json")
	var info struct{ Server, Fingerprint, Secret string }
	if code != 0 || json.Unmarshal([]byte(out), &info) != nil {
		t.Fatalf("enroll-info: %d %s", code, out)
	}

	agentData := filepath.Join(t.TempDir(), "agent")
	began := time.Now()
	if out, code := runBin(t, agent, "enroll", "--server", info.Server, "--fingerprint", info.Fingerprint,
		"--secret", info.Secret, "--machine-id", "netns-agent", "--data", agentData); code != 0 {
		t.Fatalf("enroll with UDP dropped: exit %d\n%s\nserver log:\n%s", code, out, p.stderr)
	}
	if out, code := runBin(t, agent, "run", "--once", "--data", agentData); code != 0 || !strings.Contains(out, "Posted inventory") {
		t.Fatalf("run --once with UDP dropped: exit %d\n%s", code, out)
	}
	t.Logf("enrolled and posted with UDP dropped in %v", time.Since(began).Round(time.Millisecond))
	if got := agentTransport(t, agentBin, agentData); got != client.TransportTCP {
		t.Fatalf("status transport %q with UDP dropped, want tcp", got)
	}
	first := computerOf(t, server, data, agentData)
	if first.Basic == nil || first.LastSeen.IsZero() {
		t.Fatalf("the post over TCP was not stored: %+v", first)
	}

	if err := n.allowUDP(); err != nil {
		t.Fatal(err)
	}
	if out, code := runBin(t, agent, "run", "--once", "--data", agentData); code != 0 {
		t.Fatalf("run --once with UDP back: exit %d\n%s", code, out)
	}
	if got := agentTransport(t, agentBin, agentData); got != client.TransportQUIC {
		t.Fatalf("status transport %q with UDP back, want quic", got)
	}
	if second := computerOf(t, server, data, agentData); second.LastSeen.Before(first.LastSeen) {
		t.Fatalf("second post: %+v", second)
	}
	p.terminate(t)
}

func agentTransport(t *testing.T, agentBin, agentData string) string {
	t.Helper()
	out, code := runBin(t, agentBin, "status", "--json", "--data", agentData)
	var st struct {
		Status struct {
			Transport string `json:"transport"`
		} `json:"status"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status --json: %d %s", code, out)
	}
	return st.Status.Transport
}

// computerOf asks the server, with its CLI, for the agent's computer.
func computerOf(t *testing.T, serverBin, data, agentData string) store.Computer {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(agentData, "enrollment.json"))
	var e struct {
		ComputerID int64 `json:"computer_id"`
	}
	if err != nil || json.Unmarshal(b, &e) != nil || e.ComputerID == 0 {
		t.Fatalf("agent enrollment: %s %v", b, err)
	}
	out, code := runBin(t, serverBin, "computers", "show", strconv.FormatInt(e.ComputerID, 10), "--data", data, "--json")
	var c store.Computer
	if code != 0 || json.Unmarshal([]byte(out), &c) != nil {
		t.Fatalf("computers show: %d %s", code, out)
	}
	return c
}
