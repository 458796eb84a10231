package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
)

// stallingServer is a QUIC server on loopback that refuses the connection
// attempts for which refuse returns true (CONNECTION_REFUSED, as a busy
// server's admission does) and stalls the handshakes it admits for which
// stall returns true (counted from 1 among the admitted) until the test
// ends, as a server too busy to finish them would. It returns the address, the
// pinned fingerprint and the count of attempts.
func stallingServer(t *testing.T, refuse, stall func(attempt int64) bool) (addr, fp string, attempts *atomic.Int64) {
	t.Helper()
	key, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := identity.SelfSigned(key, "tally-server test")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	attempts = new(atomic.Int64)
	// An attempt is a dial: the client dials each from a socket of its
	// own. A retransmitted Initial of a refused dial (the refusal late on a
	// loaded machine) is the same attempt, refused again, not a new one.
	var mu sync.Mutex
	refused := map[string]bool{}
	tr := &quic.Transport{Conn: udp, ConnContext: func(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
		mu.Lock()
		defer mu.Unlock()
		from := info.RemoteAddr.String()
		r, seen := refused[from]
		if !seen {
			r = refuse(attempts.Add(1))
			refused[from] = r
		}
		if r {
			return nil, errors.New("busy")
		}
		return ctx, nil
	}}
	admitted := new(atomic.Int64)
	unblock := make(chan struct{})
	base := identity.ServerTLS(cert, protocol.ALPN)
	cfg := base.Clone()
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if stall(admitted.Add(1)) {
			<-unblock
		}
		return base, nil
	}
	ln, err := tr.Listen(cfg, &quic.Config{HandshakeIdleTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(unblock); ln.Close(); tr.Close(); udp.Close() })
	return udp.LocalAddr().String(), identity.Fingerprint(leaf), attempts
}

func stormClient(t *testing.T, addr, fp string, dialTimeout time.Duration) *Client {
	t.Helper()
	key, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Server: addr, Fingerprint: fp, Key: key, Transport: TransportQUIC, DialTimeout: dialTimeout, RefusedFor: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A server shedding a storm refuses an agent, then admits it but does not
// finish the handshake within the agent's dial timeout (too busy): that is
// still the storm, and the agent comes back until it is served, within
// RefusedFor, instead of giving up on the first slow handshake.
func TestConnectRetriesASlowHandshakeAfterARefusal(t *testing.T) {
	addr, fp, attempts := stallingServer(t,
		func(n int64) bool { return n == 1 },
		func(n int64) bool { return n == 1 })
	c := stormClient(t, addr, fp, 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := c.connection(ctx, map[int]bool{}); err != nil {
		t.Fatalf("connect after a refusal and a stalled handshake (%d attempts): %v", attempts.Load(), err)
	}
	if n := attempts.Load(); n < 3 {
		t.Fatalf("%d attempts, want a refused one, a stalled one, and one served", n)
	}
}

// A server that never answered with a refusal is not known to be up: a
// handshake that does not finish within the dial timeout fails the
// connection at once, not after RefusedFor of retries.
func TestConnectGivesUpOnASlowHandshakeWithoutARefusal(t *testing.T) {
	addr, fp, attempts := stallingServer(t,
		func(int64) bool { return false },
		func(int64) bool { return true })
	c := stormClient(t, addr, fp, time.Second)
	began := time.Now()
	_, _, err := c.connection(context.Background(), map[int]bool{})
	if err == nil {
		t.Fatal("connected to a server that never finishes a handshake")
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Fatalf("gave up after %v, want about the 1 s dial timeout: %v", took, err)
	}
	if n := attempts.Load(); n != 1 {
		t.Fatalf("%d attempts, want 1: %v", n, err)
	}
}
