package listener

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
)

// dialQUIC opens a QUIC connection to the test server.
func (s *testServer) dialQUIC() *quic.Conn {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// As the agent dials (agent/client): no path MTU probes.
	c, err := quic.DialAddr(ctx, s.quic.Addr().String(), s.clientTLS(), &quic.Config{DisablePathMTUDiscovery: true})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.CloseWithError(0, "") })
	return c
}

// askQUIC sends body on a new stream of c and reads the answer. Opening
// the stream waits for stream credit at most 5 s: a server that never
// grants it again fails here instead of hanging.
func askQUIC(c *quic.Conn, body []byte) (protocol.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.OpenStreamSync(ctx)
	if err != nil {
		return protocol.Response{}, err
	}
	st.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := st.Write(body); err != nil {
		return protocol.Response{}, err
	}
	st.Close()
	raw, err := protocol.ReadMessage(st, protocol.MaxResponseSize)
	if err != nil {
		return protocol.Response{}, err
	}
	var resp protocol.Response
	return resp, protocol.Unmarshal(raw, &resp)
}

// The listener defers the stream credit of answered streams to the
// connection's next stream (see credits): however many requests a
// connection carries, one after another or side by side up to its stream
// bound, it never runs out of credit, and after any number of requests the
// peer can still have its whole bound in flight at once.
func TestQUICStreamCreditOutlastsManyRequests(t *testing.T) {
	for _, streams := range []int64{1, 2, 8} {
		h := newEcho()
		s := start(t, h, func(c *Config) { c.MaxStreamsPerConn = streams })
		c := s.dialQUIC()
		for i := range 3 * streams * 8 {
			if resp, err := askQUIC(c, []byte("one")); err != nil || resp.Status != protocol.StatusOK {
				t.Fatalf("%d streams a connection, request %d one after another: %+v %v", streams, i, resp, err)
			}
		}
		for round := range 8 {
			var wg sync.WaitGroup
			errs := make(chan error, streams)
			for range streams {
				wg.Go(func() {
					resp, err := askQUIC(c, []byte("side by side"))
					if err == nil && resp.Status != protocol.StatusOK {
						err = protocol.Errorf(resp.Status, "%s", resp.Message)
					}
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("%d streams a connection, round %d side by side: %v", streams, round, err)
				}
			}
		}
		blocked := make(chan error, streams)
		for range streams {
			go func() {
				_, err := askQUIC(c, []byte("block"))
				blocked <- err
			}()
		}
		for i := range streams {
			select {
			case <-h.started:
			case <-time.After(5 * time.Second):
				t.Fatalf("%d streams a connection: only %d of them in flight at once after %d requests", streams, i, 3*streams*8+8*streams)
			}
		}
		close(h.release)
		for range streams {
			if err := <-blocked; err != nil {
				t.Fatalf("%d streams a connection, the whole bound at once: %v", streams, err)
			}
		}
	}
}

// A stream answered busy (past MaxInFlight) gives its credit back too.
func TestQUICBusyStreamsGiveTheirCreditBack(t *testing.T) {
	h := newEcho()
	s := start(t, h, func(c *Config) { c.MaxInFlight = 1; c.MaxStreamsPerConn = 2 })
	a, b := s.dialQUIC(), s.dialQUIC()
	blocked := make(chan error, 1)
	go func() {
		resp, err := askQUIC(a, []byte("block"))
		if err == nil && resp.Status != protocol.StatusOK {
			err = protocol.Errorf(resp.Status, "%s", resp.Message)
		}
		blocked <- err
	}()
	<-h.started
	for i := range 10 {
		resp, err := askQUIC(b, []byte("not read"))
		if err != nil || resp.Status != protocol.StatusBusy {
			t.Fatalf("request %d past MaxInFlight: %+v %v, want busy", i, resp, err)
		}
	}
	close(h.release)
	if err := <-blocked; err != nil {
		t.Fatalf("blocked request: %v", err)
	}
	if resp, err := askQUIC(b, []byte("again")); err != nil || resp.Status != protocol.StatusOK {
		t.Fatalf("after ten busy answers, on the same connection: %+v %v", resp, err)
	}
}

// BenchmarkQuietConnectionPackets counts the QUIC packets (both directions,
// seen from the client) that a request costs on a connection that is quiet
// between requests, as an agent's is between posts: each request waits
// longer than the peers' acknowledgement delay (25 ms) after the last.
// "immediate" grants stream credit back as quic-go does by default (one
// stream a connection leaves nothing to defer); "deferred" is the
// listener's default (see credits); "deferred-slow" answers each request
// after 40 ms, as a server past its capacity does.
//
//	go test -run XXX -bench QuietConnectionPackets -benchtime 40x ./server/listener
func BenchmarkQuietConnectionPackets(b *testing.B) {
	for _, c := range []struct {
		name    string
		streams int64
		body    string
	}{{"immediate", 1, "a delta post"}, {"deferred", 8, "a delta post"}, {"deferred-slow", 8, "slow"}} {
		b.Run(c.name, func(b *testing.B) {
			s := start(b, newEcho(), func(cfg *Config) { cfg.MaxStreamsPerConn = c.streams })
			conn := s.dialQUIC()
			if _, err := askQUIC(conn, []byte("warm up")); err != nil {
				b.Fatal(err)
			}
			time.Sleep(60 * time.Millisecond)
			before := conn.ConnectionStats()
			b.ResetTimer()
			for range b.N {
				if _, err := askQUIC(conn, []byte(c.body)); err != nil {
					b.Fatal(err)
				}
				time.Sleep(60 * time.Millisecond)
			}
			after := conn.ConnectionStats()
			sent, recv := after.PacketsSent-before.PacketsSent, after.PacketsReceived-before.PacketsReceived
			b.ReportMetric(float64(sent)/float64(b.N), "sent/req")
			b.ReportMetric(float64(recv)/float64(b.N), "received/req")
			b.ReportMetric(float64(sent+recv)/float64(b.N), "packets/req")
		})
	}
}

// QUIC admission: past RetryAbove handshakes, unvalidated addresses are
// asked for a Retry; a validated address is held to its own share, which
// Initial packets spoofing its address cannot use up; where even a
// validated address would be refused, no Retry is asked for.
func TestQUICAdmissionRetriesAndPerAddressShares(t *testing.T) {
	a := newAdmission(Config{MaxHandshakes: 6, MaxHandshakesPerAddr: 2, RetryAbove: 2, MaxConnsPerAddr: 100})
	victim := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4000}
	other := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 4000}
	var cancels []context.CancelFunc
	t.Cleanup(func() {
		for _, c := range cancels {
			c()
		}
	})
	admit := func(addr net.Addr, verified bool) error {
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		_, err := a.admit(ctx, &quic.ClientInfo{RemoteAddr: addr, AddrVerified: verified})
		return err
	}
	// Spoofed Initials with the victim's address: two get in, then Retry.
	for i := range 2 {
		if a.verify(victim) {
			t.Fatalf("spoofed %d: Retry with %d handshakes in progress", i, i)
		}
		if err := admit(victim, false); err != nil {
			t.Fatalf("spoofed %d: %v", i, err)
		}
	}
	if !a.verify(victim) || !a.verify(other) {
		t.Fatal("no Retry with RetryAbove handshakes in progress")
	}
	// The victim, validated, still has its own share of two.
	for i := range 2 {
		if err := admit(victim, true); err != nil {
			t.Fatalf("validated victim %d: %v", i, err)
		}
	}
	if err := admit(victim, true); err == nil {
		t.Fatal("a third validated handshake from one address with MaxHandshakesPerAddr 2")
	}
	if a.verify(victim) {
		t.Fatal("Retry asked of an address whose validated share is used up: it would be refused anyway")
	}
	if err := admit(other, true); err != nil {
		t.Fatalf("another validated address: %v", err)
	}
	if err := admit(other, true); err != nil {
		t.Fatalf("another validated address, second: %v", err)
	}
	if a.verify(&net.UDPAddr{IP: net.IPv4(192, 0, 2, 3)}) {
		t.Fatal("Retry asked with every handshake slot taken: it would be refused anyway")
	}
	if err := admit(&net.UDPAddr{IP: net.IPv4(192, 0, 2, 3)}, true); err == nil {
		t.Fatal("admitted past MaxHandshakes")
	}
	if a.retries.Load() != 2 || a.refused.Load() != 2 {
		t.Fatalf("%d retries, %d refused; want 2 and 2", a.retries.Load(), a.refused.Load())
	}
	// Closing releases every count.
	for _, c := range cancels {
		c()
	}
	cancels = nil
	deadline := time.Now().Add(5 * time.Second)
	for {
		a.mu.Lock()
		n, peers := a.inflight, len(a.peers)
		a.mu.Unlock()
		if n == 0 && peers == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after every connection closed: %d handshakes, %d addresses counted", n, peers)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkQUICHandshakeRetry measures what a Retry (address validation,
// asked past RetryAbove handshakes in progress) adds to a full handshake:
// two servers alike but for VerifySourceAddress (no, yes), dialled in
// turn, so that both see the same load; it reports each one's mean
// handshake time and their ratio. On loopback the difference is the
// Retry's CPU (a token sealed and opened, one more Initial each way);
// across a network one more round trip comes on top. docs/PERFORMANCE.md
// has the figures:
//
//	go test -run XXX -bench QUICHandshakeRetry -benchtime 300x -count 8 ./server/listener
func BenchmarkQUICHandshakeRetry(b *testing.B) {
	s := start(b, newEcho(), nil) // for its identities
	var asked atomic.Int64
	serve := func(retry bool) string {
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		tr := &quic.Transport{Conn: udp, VerifySourceAddress: func(net.Addr) bool {
			if retry {
				asked.Add(1)
			}
			return retry
		}}
		ln, err := tr.Listen(identity.ServerTLS(s.cert, protocol.ALPN), &quic.Config{DisablePathMTUDiscovery: true})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ln.Close(); tr.Close(); udp.Close() })
		go func() {
			for {
				c, err := ln.Accept(context.Background())
				if err != nil {
					return
				}
				c.CloseWithError(0, "")
			}
		}()
		return udp.LocalAddr().String()
	}
	addrs := [2]string{serve(false), serve(true)}
	ctls := s.clientTLS()
	ctls.ClientSessionCache = nil // full handshakes
	var took [2]time.Duration
	b.ResetTimer()
	for i := range b.N {
		for k := range 2 {
			k = (k + i) % 2 // each goes first every other time
			began := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, err := quic.DialAddr(ctx, addrs[k], ctls, &quic.Config{DisablePathMTUDiscovery: true})
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			took[k] += time.Since(began)
			c.CloseWithError(0, "")
		}
	}
	b.StopTimer()
	if asked.Load() < int64(b.N) {
		b.Fatalf("%d Retry asked for %d handshakes", asked.Load(), b.N)
	}
	b.ReportMetric(float64(took[0].Microseconds())/float64(b.N), "µs/handshake-no-retry")
	b.ReportMetric(float64(took[1].Microseconds())/float64(b.N), "µs/handshake-retry")
	b.ReportMetric(float64(took[1])/float64(took[0]), "retry/no-retry")
}
