package integration

// Hostile clients at the connection level (issue 14, defects 2 and 3): idle
// TLS and plain TCP connections that never send a request, and QUIC
// Initial packets whose handshakes never complete. The attackers use
// other loopback addresses (127.0.0.2 and up) than the agent (127.0.0.1),
// as they would be other hosts; each attack is bounded in count and time
// and stops by itself.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/agent/client"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/servertest"
)

// attacker is the i-th hostile loopback address.
func attacker(i int) net.IP { return net.IPv4(127, 0, 0, byte(2+i)) }

// enrollAndPost enrolls a new key with cl and posts an inventory, within 5 s.
func clientEnrollAndPost(t *testing.T, srv *servertest.Server, cl *client.Client, name string) (time.Duration, error) {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	began := time.Now()
	enroll := protocol.EnrollRequest{Secret: srv.Secret, Hostname: name, Hints: protocol.Hints{InstanceID: name}, AgentVersion: "test"}
	var out protocol.EnrollResponse
	if _, err := cl.Call(c, protocol.KindEnroll, 1, &enroll, &out); err != nil {
		return time.Since(began), fmt.Errorf("enroll: %w", err)
	}
	inv := protocol.InventoryRequest{Basic: protocol.BasicInventory{Hostname: name, Hints: enroll.Hints}}
	if _, err := cl.Call(c, protocol.KindInventory, 2, &inv, nil); err != nil {
		return time.Since(began), fmt.Errorf("post: %w", err)
	}
	return time.Since(began), nil
}

// Defect 2: idle TLS connections with self-signed keys and TCP connections
// that never start TLS, from several addresses, more than the server's
// connection bound, re-dialled as soon as they are closed. A real agent's
// TCP connection still enrolls and posts within 5 s, and every idle
// connection is closed within the start timeout.
func TestIdleTCPConnectionsDoNotBlockTheTCPFallback(t *testing.T) {
	const start = time.Second
	srv := servertest.New(t, func(c *daemon.Config) {
		c.MaxTCPConns = 12
		c.MaxConnsPerAddr = 4
		c.MaxHandshakes = 4
		c.MaxHandshakesPerAddr = 2
		c.TCPStartTimeout = start
	})
	tcpAddr := srv.Addresses().TCP
	key, _ := identity.NewKey()
	cert, err := identity.SelfSigned(key, "intruder")
	if err != nil {
		t.Fatal(err)
	}
	hostileTLS := &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true,
		NextProtos: []string{protocol.ALPN}, MinVersion: tls.VersionTLS13}

	var (
		stop      = make(chan struct{})
		wg        sync.WaitGroup
		open      atomic.Int64 // hostile connections open now
		mu        sync.Mutex
		longest   time.Duration // the longest an idle TLS connection stayed open
		idleTLS   int           // idle TLS connections the server closed
		idlePlain int           // plain ones the server closed
	)
	hold := func(from net.IP, useTLS bool) {
		defer wg.Done()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: from}, Timeout: 2 * time.Second}
		for range 40 { // bounded: at most 40 connections each
			select {
			case <-stop:
				return
			default:
			}
			nc, err := d.Dial("tcp", tcpAddr)
			if err != nil {
				continue
			}
			began := time.Now()
			nc.SetDeadline(began.Add(10 * time.Second))
			var conn net.Conn = nc
			if useTLS {
				tc := tls.Client(nc, hostileTLS)
				if tc.Handshake() != nil {
					nc.Close()
					time.Sleep(20 * time.Millisecond) // turned away: pace the re-dial
					continue
				}
				conn = tc
			}
			open.Add(1)
			done := make(chan struct{})
			go func() {
				select {
				case <-stop:
					nc.Close()
				case <-done:
				}
			}()
			_, err = conn.Read(make([]byte, 1)) // says nothing; waits to be closed
			close(done)
			open.Add(-1)
			nc.Close()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("a hostile connection (TLS %v) was kept open 10 s", useTLS)
				return
			}
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			if useTLS {
				idleTLS++
				longest = max(longest, time.Since(began))
			} else {
				idlePlain++
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}
	for i := range 4 {
		for range 4 {
			wg.Add(2)
			go hold(attacker(i), true)
			go hold(attacker(i), false)
		}
	}
	t.Cleanup(func() { close(stop); wg.Wait() })
	waitFor(t, 5*time.Second, "the attack to hold the server's TCP connections", func() bool { return open.Load() >= 12 })

	agentKey, _ := identity.NewKey()
	cl, err := client.New(client.Config{Server: srv.Addr(), Fingerprint: srv.Fingerprint(), Key: agentKey, Transport: client.TransportTCP})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	took, err := clientEnrollAndPost(t, srv, cl, "tcp-under-attack")
	if err != nil {
		t.Fatalf("a real agent over TCP during the attack, after %v: %v", took.Round(time.Millisecond), err)
	}
	t.Logf("enrolled and posted over TCP in %v during the attack", took.Round(time.Millisecond))

	waitFor(t, 5*time.Second, "the server to close idle TLS and plain connections", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return idleTLS > 0 && idlePlain > 0
	})
	mu.Lock()
	defer mu.Unlock()
	// The start timeout runs from the accept, a little before the client's
	// clock starts; the margin is the scheduling of a loaded machine.
	if longest > start+time.Second {
		t.Fatalf("an idle TLS connection stayed open %v, with a start timeout of %v", longest, start)
	}
	t.Logf("%d idle TLS and %d plain connections closed; the longest lived %v", idleTLS, idlePlain, longest.Round(time.Millisecond))
}

// silentUDP is a hostile client's socket: it lets the first Initial out,
// then goes silent at the first packet that comes back, as a client that
// never completes its handshake does. With passRetry it answers a Retry
// first, as a client at a real address may; without, it is a spoofed source
// that never sees the server's answers.
// It offers quic-go no batch methods (ReadMsgUDP), so that every datagram
// goes through ReadFrom and WriteTo.
type silentUDP struct {
	net.PacketConn
	udp       *net.UDPConn
	passRetry bool
	mute      atomic.Bool
}

func (s *silentUDP) SetReadBuffer(n int) error  { return s.udp.SetReadBuffer(n) }
func (s *silentUDP) SetWriteBuffer(n int) error { return s.udp.SetWriteBuffer(n) }

func (s *silentUDP) ReadFrom(p []byte) (int, net.Addr, error) {
	n, from, err := s.PacketConn.ReadFrom(p)
	// A QUIC v1 Retry: long header, fixed bit, type 3.
	if err == nil && !(s.passRetry && n > 0 && p[0]&0xf0 == 0xf0) {
		s.mute.Store(true)
	}
	return n, from, err
}

func (s *silentUDP) WriteTo(p []byte, addr net.Addr) (int, error) {
	if s.mute.Load() {
		return len(p), nil
	}
	return s.PacketConn.WriteTo(p, addr)
}

// halfOpen starts a QUIC handshake from addr that never completes, and
// abandons it after a while (the server is not told).
func halfOpen(server *net.UDPAddr, from net.IP, passRetry bool, tc *tls.Config) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: from})
	if err != nil {
		return
	}
	defer udp.Close()
	tr := &quic.Transport{Conn: &silentUDP{PacketConn: udp, udp: udp, passRetry: passRetry}}
	defer tr.Close()
	c, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if conn, err := tr.Dial(c, server, tc, &quic.Config{HandshakeIdleTimeout: time.Second}); err == nil {
		conn.CloseWithError(0, "")
	}
}

// Defect 3: a flood of QUIC Initial packets that never complete, from
// spoofed sources (which never see the server's answers) and from a real
// address (which answers a Retry, then goes silent). The server asks for
// Retry once handshakes queue up, so the spoofed ones hold few handshake
// slots, and the real address holds its share only; a real agent connects
// over QUIC at its first or second attempt and posts within 5 s.
func TestQUICHalfOpenFloodIsAnsweredWithRetry(t *testing.T) {
	srv := servertest.New(t, func(c *daemon.Config) {
		c.MaxHandshakes = 8
		c.MaxHandshakesPerAddr = 2
		c.QUICRetryAbove = 2
	})
	server, err := net.ResolveUDPAddr("udp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := identity.NewKey()
	cert, err := identity.SelfSigned(key, "intruder")
	if err != nil {
		t.Fatal(err)
	}
	hostileTLS := &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true,
		NextProtos: []string{protocol.ALPN}, MinVersion: tls.VersionTLS13}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent atomic.Int64
	flood := func(worker int) {
		defer wg.Done()
		for i := range 30 { // bounded: 30 handshakes per worker
			select {
			case <-stop:
				return
			default:
			}
			// Worker 0 is the real address; the others spoof a new one each time.
			from, passRetry := attacker(0), true
			if worker > 0 {
				from, passRetry = attacker(1+(worker*30+i)%200), false
			}
			sent.Add(1)
			halfOpen(server, from, passRetry, hostileTLS)
		}
	}
	for w := range 12 {
		wg.Add(1)
		go flood(w)
	}
	t.Cleanup(func() { close(stop); wg.Wait() })
	waitFor(t, 5*time.Second, "the flood to start", func() bool { return sent.Load() >= 24 })

	agentKey, _ := identity.NewKey()
	var took time.Duration
	for attempt := 1; ; attempt++ {
		// One QUIC dial per attempt: a refusal is not retried inside.
		cl, err := client.New(client.Config{Server: srv.Addr(), Fingerprint: srv.Fingerprint(), Key: agentKey,
			Transport: client.TransportQUIC, RefusedFor: time.Nanosecond})
		if err != nil {
			t.Fatal(err)
		}
		took, err = clientEnrollAndPost(t, srv, cl, "quic-under-flood")
		cl.Close()
		if err == nil {
			t.Logf("enrolled and posted over QUIC at attempt %d in %v during the flood (%d half-open handshakes begun)",
				attempt, took.Round(time.Millisecond), sent.Load())
			break
		}
		if attempt == 2 {
			t.Fatalf("a real agent over QUIC during the flood, attempt %d after %v: %v", attempt, took.Round(time.Millisecond), err)
		}
	}
	m := scrapeMetrics(t, srv)
	if m["tally_quic_retries_total"] == 0 {
		t.Fatal("the server sent no Retry during the flood")
	}
	t.Logf("%v Retry packets, %v handshakes refused", m["tally_quic_retries_total"], m["tally_handshakes_refused_total"])
}

// refusingFront stands before a server: on UDP it refuses every QUIC
// handshake at once (CONNECTION_REFUSED, what a server's admission sends
// when busy), on TCP it passes connections through to the server.
func refusingFront(t *testing.T, srv *servertest.Server) (addr string, refused *atomic.Int64) {
	t.Helper()
	udp, tcp := samePort(t)
	refused = new(atomic.Int64)
	tr := &quic.Transport{Conn: udp, ConnContext: func(context.Context, *quic.ClientInfo) (context.Context, error) {
		refused.Add(1)
		return nil, errors.New("busy")
	}}
	ln, err := tr.Listen(identity.ServerTLS(srv.Identity().Cert, protocol.ALPN), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); tr.Close() })
	f := &front{server: srv.Addresses().TCP}
	go f.serveTCP(tcp)
	return udp.LocalAddr().String(), refused
}

// An agent whose QUIC handshakes the server keeps refusing (busy at the
// handshake: the server answers, so this is not UDP silence) tries TCP
// too after a few refusals, and uses it: it enrolls and posts within 5 s.
func TestAgentTriesTCPWhenQUICHandshakesAreRefused(t *testing.T) {
	srv := servertest.New(t)
	addr, refused := refusingFront(t, srv)
	began := time.Now()
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := agenttest.TryNew(t, at{addr, srv.Fingerprint()}, agenttest.Options{Secret: srv.Secret})
	if err != nil {
		t.Fatalf("enroll with every QUIC handshake refused: %v", err)
	}
	if res, err := a.Post(c); err != nil || res.Sent != 1 {
		t.Fatalf("post with every QUIC handshake refused, after %v: %+v %v", time.Since(began).Round(time.Millisecond), res, err)
	}
	took := time.Since(began)
	if took > 5*time.Second {
		t.Fatalf("enroll and post took %v, want within 5 s", took)
	}
	if st := a.Status(t); st.Transport != client.TransportTCP {
		t.Fatalf("status transport %q, want tcp", st.Transport)
	}
	if n := refused.Load(); n < 2 {
		t.Fatalf("%d QUIC handshakes refused: the agent did not try QUIC first", n)
	}
	t.Logf("enrolled and posted over TCP in %v; %d QUIC handshakes refused", took.Round(time.Millisecond), refused.Load())
}
