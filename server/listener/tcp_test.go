package listener

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
)

// echo answers every request with its length in Message; a request whose
// body is "block" waits until release is closed.
type echo struct {
	release chan struct{}
	started chan struct{}
	calls   atomic.Int64
}

func newEcho() *echo { return &echo{release: make(chan struct{}), started: make(chan struct{}, 16)} }

func (e *echo) Handle(ctx context.Context, key ed25519.PublicKey, raw []byte) protocol.Response {
	e.calls.Add(1)
	if string(raw) == "slow" { // answered after the peers' acknowledgement delay
		time.Sleep(40 * time.Millisecond)
	}
	if string(raw) == "block" {
		e.started <- struct{}{}
		select {
		case <-e.release:
		case <-ctx.Done():
			return protocol.ErrorResponse(0, protocol.Errorf(protocol.StatusInternal, "cancelled"))
		}
	}
	return protocol.Response{Major: protocol.Major, Status: protocol.StatusOK, Message: strconv.Itoa(len(raw)) + " " + identity.NodeID(key)}
}

func refuse(err error) protocol.Response {
	if errors.Is(err, protocol.ErrTooLarge) {
		return protocol.ErrorResponse(0, protocol.Errorf(protocol.StatusTooLarge, "too large"))
	}
	return protocol.ErrorResponse(0, protocol.Errorf(protocol.StatusBadRequest, "could not read: %v", err))
}

type testServer struct {
	t    testing.TB
	tcp  *TCP
	quic *QUIC
	key  ed25519.PrivateKey // a client's
	pin  string
	cert tls.Certificate // the server's
}

func start(t testing.TB, h Handler, tune func(*Config)) *testServer {
	t.Helper()
	skey, _ := identity.NewKey()
	scert, err := identity.SelfSigned(skey, "test server")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Addr: "127.0.0.1:0", TLS: identity.ServerTLS(scert, protocol.ALPN), Handler: h, Refuse: refuse}
	if tune != nil {
		tune(&cfg)
	}
	q, tc, err := Listen(cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	go q.Serve()
	go tc.Serve()
	ckey, _ := identity.NewKey()
	s := &testServer{t: t, tcp: tc, quic: q, key: ckey, pin: identity.Fingerprint(scert.Leaf), cert: scert}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tc.Shutdown(ctx)
		q.Shutdown(ctx)
	})
	return s
}

func (s *testServer) dial() *tls.Conn {
	s.t.Helper()
	cert, err := identity.SelfSigned(s.key, "test agent")
	if err != nil {
		s.t.Fatal(err)
	}
	c, err := tls.Dial("tcp", s.tcp.Addr().String(), identity.ClientTLS(cert, s.pin, protocol.ALPN))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

func writeFrame(t testing.TB, w io.Writer, b []byte) {
	t.Helper()
	if _, err := w.Write(protocol.Frame(b)); err != nil {
		t.Fatal(err)
	}
}

func readResponse(r io.Reader) (protocol.Response, error) {
	raw, _, err := protocol.ReadFrame(r, protocol.MaxResponseSize)
	if err != nil {
		return protocol.Response{}, err
	}
	var resp protocol.Response
	return resp, protocol.Unmarshal(raw, &resp)
}

func (s *testServer) ask(c *tls.Conn, body []byte) protocol.Response {
	s.t.Helper()
	writeFrame(s.t, c, body)
	resp, err := readResponse(c)
	if err != nil {
		s.t.Fatalf("no answer: %v", err)
	}
	return resp
}

func TestListenBindsTCPOnTheQUICPort(t *testing.T) {
	s := start(t, newEcho(), nil)
	udp, tcp := s.quic.Addr().(*net.UDPAddr), s.tcp.Addr().(*net.TCPAddr)
	if udp.Port != tcp.Port || !udp.IP.Equal(tcp.IP) {
		t.Fatalf("QUIC on %v, TCP on %v: want the same address", udp, tcp)
	}

	// A fixed port whose TCP twin is taken fails with a sentence that says so.
	cfg := Config{Addr: s.tcp.Addr().String(), TLS: identity.ServerTLS(s.cert, protocol.ALPN), Handler: newEcho(), Refuse: refuse}
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := taken.LocalAddr().(*net.UDPAddr).Port
	taken.Close()
	hold, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Skipf("cannot hold TCP %d: %v", port, err)
	}
	defer hold.Close()
	cfg.Addr = "127.0.0.1:" + strconv.Itoa(port)
	if _, _, err := Listen(cfg, false); err == nil || !strings.Contains(err.Error(), "needs TCP") {
		t.Fatalf("Listen with TCP %d taken: %v, want an error that explains", port, err)
	}
	// ... and the UDP socket it bound is free again.
	q, _, err := Listen(cfg, true)
	if err != nil {
		t.Fatalf("Listen without TCP after the failure: %v", err)
	}
	q.Shutdown(context.Background())
}

func TestTCPCarriesManyRequestsOnOneConnection(t *testing.T) {
	s := start(t, newEcho(), nil)
	c := s.dial()
	want := identity.NodeID(s.key.Public().(ed25519.PublicKey))
	for i, body := range [][]byte{[]byte("a"), bytes.Repeat([]byte("b"), 70000), {}, []byte("ccc")} {
		resp := s.ask(c, body)
		if resp.Status != protocol.StatusOK || resp.Message != strconv.Itoa(len(body))+" "+want {
			t.Fatalf("request %d: %+v", i, resp)
		}
	}
}

func TestTCPOversizedFrameIsAnsweredThenClosed(t *testing.T) {
	h := newEcho()
	s := start(t, h, nil)
	c := s.dial()
	hdr := binary.BigEndian.AppendUint32(nil, protocol.MaxRequestSize+1)
	if _, err := c.Write(append(hdr, make([]byte, 1000)...)); err != nil {
		t.Fatal(err)
	}
	resp, err := readResponse(c)
	if err != nil || resp.Status != protocol.StatusTooLarge {
		t.Fatalf("oversized: %+v %v, want too-large", resp, err)
	}
	if _, err := readResponse(c); err == nil {
		t.Fatal("the connection stayed open after an oversized frame")
	}
	if h.calls.Load() != 0 {
		t.Fatal("the handler saw an oversized request")
	}
	// The server serves on.
	if resp := s.ask(s.dial(), []byte("x")); resp.Status != protocol.StatusOK {
		t.Fatalf("after an oversized frame: %+v", resp)
	}
}

func TestTCPTruncatedFrameClosesOnlyItsConnection(t *testing.T) {
	s := start(t, newEcho(), func(c *Config) { c.RequestTimeout = 300 * time.Millisecond })
	c := s.dial()
	hdr := binary.BigEndian.AppendUint32(nil, 100)
	c.Write(append(hdr, "short"...))
	// The rest never comes: the request times out and the connection,
	// out of step, is closed.
	if resp, err := readResponse(c); err == nil {
		t.Fatalf("truncated frame answered %+v; want the connection closed", resp)
	}
	if resp := s.ask(s.dial(), []byte("x")); resp.Status != protocol.StatusOK {
		t.Fatalf("after a truncated frame: %+v", resp)
	}
}

func TestTCPBusyAnswersRetryAfterAndKeepsTheConnection(t *testing.T) {
	h := newEcho()
	s := start(t, h, func(c *Config) { c.MaxInFlight = 1 })
	a, b := s.dial(), s.dial()
	writeFrame(t, a, []byte("block"))
	<-h.started
	resp := s.ask(b, []byte("this one is not read"))
	if resp.Status != protocol.StatusBusy || resp.RetryAfter == 0 {
		t.Fatalf("over MaxInFlight: %+v, want busy with a retry-after", resp)
	}
	close(h.release)
	if resp, err := readResponse(a); err != nil || resp.Status != protocol.StatusOK {
		t.Fatalf("blocked request: %+v %v", resp, err)
	}
	if resp := s.ask(b, []byte("again")); resp.Status != protocol.StatusOK || resp.Message[:2] != "5 " {
		t.Fatalf("after busy, on the same connection: %+v", resp)
	}
}

func TestTCPBoundsConnections(t *testing.T) {
	s := start(t, newEcho(), func(c *Config) { c.MaxConns = 1 })
	first := s.dial()
	if resp := s.ask(first, []byte("x")); resp.Status != protocol.StatusOK {
		t.Fatal(resp)
	}
	cert, _ := identity.SelfSigned(s.key, "second")
	second, err := tls.Dial("tcp", s.tcp.Addr().String(), identity.ClientTLS(cert, s.pin, protocol.ALPN))
	if err == nil {
		second.SetDeadline(time.Now().Add(5 * time.Second))
		writeFrame(t, second, []byte("x"))
		if _, err := readResponse(second); err == nil {
			t.Fatal("a connection over MaxConns was served")
		}
		second.Close()
	}
	first.Close()
	// The slot is freed when the first connection ends.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := tls.Dial("tcp", s.tcp.Addr().String(), identity.ClientTLS(cert, s.pin, protocol.ALPN))
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			writeFrame(t, c, []byte("x"))
			_, err = readResponse(c)
			c.Close()
			if err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection served after the first one ended: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTCPRequiresAClientCertificateAndALPN(t *testing.T) {
	s := start(t, newEcho(), nil)
	for name, cfg := range map[string]*tls.Config{
		"no certificate": {InsecureSkipVerify: true, NextProtos: []string{protocol.ALPN}, MinVersion: tls.VersionTLS13},
		"no ALPN":        func() *tls.Config { c := s.clientTLS(); c.NextProtos = nil; return c }(),
	} {
		c, err := tls.Dial("tcp", s.tcp.Addr().String(), cfg)
		if err != nil {
			continue
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		writeFrame(t, c, []byte("x"))
		if resp, err := readResponse(c); err == nil {
			t.Errorf("%s: answered %+v", name, resp)
		}
		c.Close()
	}
}

func (s *testServer) clientTLS() *tls.Config {
	cert, _ := identity.SelfSigned(s.key, "agent")
	return identity.ClientTLS(cert, s.pin, protocol.ALPN)
}

func TestTCPIdleConnectionsAreClosed(t *testing.T) {
	s := start(t, newEcho(), func(c *Config) { c.IdleTimeout = 200 * time.Millisecond })
	c := s.dial()
	s.ask(c, []byte("x"))
	time.Sleep(500 * time.Millisecond)
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("an idle connection was kept past IdleTimeout")
	}
}

// Shutdown closes idle connections at once, lets the request in flight
// finish and be answered, and only then returns.
func TestTCPShutdownLetsInFlightRequestsFinish(t *testing.T) {
	h := newEcho()
	s := start(t, h, nil)
	busy, idle := s.dial(), s.dial()
	s.ask(idle, []byte("x"))
	writeFrame(t, busy, []byte("block"))
	<-h.started

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- s.tcp.Shutdown(ctx)
	}()
	if _, err := idle.Read(make([]byte, 1)); err == nil {
		t.Fatal("an idle connection got data at shutdown")
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := net.DialTimeout("tcp", s.tcp.Addr().String(), time.Second); err == nil {
		t.Error("new connections are accepted during shutdown")
	}
	close(h.release)
	if resp, err := readResponse(busy); err != nil || resp.Status != protocol.StatusOK {
		t.Fatalf("in-flight request at shutdown: %+v %v", resp, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// When the shutdown's time runs out, the handlers' context is cancelled and
// Shutdown still returns.
func TestTCPShutdownCancelsHandlersWhenTimeRunsOut(t *testing.T) {
	h := newEcho()
	s := start(t, h, nil)
	c := s.dial()
	writeFrame(t, c, []byte("block"))
	<-h.started
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	began := time.Now()
	s.tcp.Shutdown(ctx)
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("Shutdown took %v", took)
	}
	if resp, err := readResponse(c); err == nil && resp.Status != protocol.StatusInternal {
		t.Fatalf("cancelled request: %+v", resp)
	}
}

// Over TCP as over QUIC, at most MaxHandshakes key exchanges run at once:
// a connection past the bound waits for a slot, and is served once one
// frees.
func TestTCPHandshakesWaitForAFreeSlot(t *testing.T) {
	s := start(t, newEcho(), func(c *Config) { c.MaxHandshakes = 1; c.StartTimeout = 10 * time.Second })
	holder, err := net.Dial("tcp", s.tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	// Starts a ClientHello (a TLS handshake record's first byte), takes the
	// only slot, and says no more.
	if _, err := holder.Write([]byte{22}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // accepted and holding the slot
	done := make(chan *tls.Conn, 1)
	go func() { done <- s.dial() }()
	select {
	case <-done:
		t.Fatal("a second handshake ran while the only slot was taken")
	case <-time.After(500 * time.Millisecond):
	}
	holder.Close() // the silent handshake fails and gives its slot back
	select {
	case c := <-done:
		if resp := s.ask(c, []byte("hello")); resp.Status != protocol.StatusOK {
			t.Fatalf("answer %+v", resp)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("the waiting handshake never got the freed slot")
	}
	if n := s.tcp.HandshakesRefused(); n != 0 {
		t.Fatalf("%d handshakes refused; the waiting one was served", n)
	}
}

// A connection that never starts TLS holds no handshake slot, and it and a
// TLS connection that never sends a request are closed within
// StartTimeout; an agent's connection, once it has sent a request, stays
// open between requests.
func TestTCPStartTimeoutClosesSilentConnections(t *testing.T) {
	const startTimeout = 300 * time.Millisecond
	s := start(t, newEcho(), func(c *Config) { c.MaxHandshakes = 1; c.StartTimeout = startTimeout })
	began := time.Now()
	plain, err := net.Dial("tcp", s.tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	idle := s.dial() // TLS done, no request
	agent := s.dial()
	if took := time.Since(began); took > startTimeout/2 {
		t.Fatalf("two handshakes took %v with a silent plain connection open: it held the only handshake slot", took)
	}
	s.ask(agent, []byte("x"))
	for name, c := range map[string]net.Conn{"plain": plain, "idle TLS": idle} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("%s connection: got data", name)
		}
		if lived := time.Since(began); lived > startTimeout+time.Second {
			t.Fatalf("%s connection closed after %v, start timeout %v", name, lived, startTimeout)
		}
	}
	time.Sleep(startTimeout) // past the start timeout, within the idle timeout
	if resp := s.ask(agent, []byte("again")); resp.Status != protocol.StatusOK {
		t.Fatalf("an agent's connection between requests: %+v", resp)
	}
}

// Past MaxConnsPerAddr a new connection from that address is closed at
// once; past MaxConns the oldest connection yet to send a request, from
// the address with the most, is closed to make room for the new one.
func TestTCPConnectionLimits(t *testing.T) {
	s := start(t, newEcho(), func(c *Config) { c.MaxConns = 3; c.MaxConnsPerAddr = 2; c.StartTimeout = 10 * time.Second })
	dialFrom := func(ip string) (*tls.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(&d, "tcp", s.tcp.Addr().String(), s.clientTLS())
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(5 * time.Second))
		return c, nil
	}
	from := func(ip string) *tls.Conn {
		t.Helper()
		c, err := dialFrom(ip)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	closed := func(c *tls.Conn) bool {
		writeFrame(t, c, []byte("x"))
		_, err := readResponse(c)
		return err != nil
	}
	a1, a2 := from("127.0.0.2"), from("127.0.0.2")
	if a3, err := dialFrom("127.0.0.2"); err == nil && !closed(a3) {
		t.Fatal("a third connection from one address was served with MaxConnsPerAddr 2")
	}
	waitTurned(t, s.tcp, 1)
	agent := from("127.0.0.1") // the third connection: fits
	s.ask(agent, []byte("x"))
	newcomer := from("127.0.0.3") // the fourth: the oldest of 127.0.0.2 makes room
	s.ask(newcomer, []byte("x"))
	if !closed(a1) {
		t.Fatal("the oldest silent connection of the busiest address was kept past MaxConns")
	}
	s.ask(a2, []byte("x")) // not shed
	if resp := s.ask(agent, []byte("y")); resp.Status != protocol.StatusOK {
		t.Fatalf("the agent's connection: %+v", resp)
	}
}

func waitTurned(t *testing.T, tc *TCP, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for tc.ConnsTurnedAway() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections turned away, want %d", tc.ConnsTurnedAway(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
