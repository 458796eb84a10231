package listener

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

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
