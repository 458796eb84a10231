package loadgen

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tallyhq/tally/agent/client"
)

// link is one agent's connection to the server: QUIC (quicLink) or TLS
// over TCP (tcpLink, in tcp.go). An agent sends one request at a time.
type link interface {
	// exchange sends one request envelope and returns the answer's.
	exchange(ctx context.Context, req []byte) ([]byte, error)
	// alive reports whether the link may carry another request.
	alive() bool
	// resumed reports whether the TLS handshake resumed a session.
	resumed() bool
	// wireBytes counts the bytes the link carried, both directions, so
	// far; it may be called after close.
	wireBytes() uint64
	// close ends the link; it may be called more than once.
	close()
}

// linker opens the agents' links to the server.
type linker interface {
	// connect opens agent i's link to the server's address srv (an index
	// of Target.addrs), with its TLS configuration.
	connect(ctx context.Context, i, srv int, tc *tls.Config) (link, error)
	close()
}

// dialer connects simulated agents to the server's addresses. Each agent has
// its own certificate and so its own QUIC connection, but connections
// share a few UDP sockets (quic.Transport demultiplexes by connection ID):
// 10,000 agents need 10,000 connections, not 10,000 sockets.
type dialer struct {
	addrs []*net.UDPAddr
	trs   []*quic.Transport
	qcfg  *quic.Config
}

// clientQUICConfig mirrors the real agent's (agent/client): the same
// timeouts and keep-alives, so that the server sees the same traffic.
func clientQUICConfig(handshake time.Duration) *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:    handshake,
		MaxIdleTimeout:          90 * time.Second,
		KeepAlivePeriod:         25 * time.Second,
		MaxIncomingStreams:      -1,
		DisablePathMTUDiscovery: true,
	}
}

// newDialer opens the sockets to dial addrs (replicas of one server:
// the same address family).
func newDialer(addrs []string, sockets int, handshake time.Duration) (*dialer, error) {
	d := &dialer{qcfg: clientQUICConfig(handshake)}
	for _, addr := range addrs {
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("server address %q: %w", addr, err)
		}
		if len(d.addrs) > 0 && (ua.IP.To4() == nil) != (d.addrs[0].IP.To4() == nil) {
			return nil, fmt.Errorf("server addresses %s and %s: give every replica's address in one family, IPv4 or IPv6", d.addrs[0], ua)
		}
		d.addrs = append(d.addrs, ua)
	}
	if sockets <= 0 {
		sockets = 1
	}
	network := "udp4"
	if d.addrs[0].IP.To4() == nil {
		network = "udp6"
	}
	for range sockets {
		pc, err := net.ListenUDP(network, nil)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("open a UDP socket: %w", err)
		}
		d.trs = append(d.trs, &quic.Transport{Conn: pc})
	}
	return d, nil
}

// dial connects agent i over its socket to the first address; early
// selects DialEarly (0-RTT when the session cache holds a ticket that
// allows it).
func (d *dialer) dial(ctx context.Context, i int, tc *tls.Config, early bool) (*quic.Conn, error) {
	return d.dialTo(ctx, i, 0, tc, early)
}

func (d *dialer) dialTo(ctx context.Context, i, srv int, tc *tls.Config, early bool) (*quic.Conn, error) {
	tr := d.trs[i%len(d.trs)]
	if early {
		return tr.DialEarly(ctx, d.addrs[srv], tc, d.qcfg)
	}
	return tr.Dial(ctx, d.addrs[srv], tc, d.qcfg)
}

// connect opens agent i's QUIC link to address srv.
func (d *dialer) connect(ctx context.Context, i, srv int, tc *tls.Config) (link, error) {
	c, err := d.dialTo(ctx, i, srv, tc, false)
	if err != nil {
		return nil, err
	}
	return quicLink{c}, nil
}

func (d *dialer) close() {
	for _, tr := range d.trs {
		tr.Close()
		tr.Conn.Close()
	}
}

// quicLink is a QUIC connection: a fresh stream per request, exactly like
// agent/client.RoundTrip.
type quicLink struct{ c *quic.Conn }

func (l quicLink) alive() bool { return l.c.Context().Err() == nil }

func (l quicLink) resumed() bool { return l.c.ConnectionState().TLS.DidResume }

// wireBytes is every QUIC byte (headers, handshakes, acknowledgements,
// retransmissions; not UDP/IP headers) the connection carried.
func (l quicLink) wireBytes() uint64 {
	st := l.c.ConnectionStats()
	return st.BytesSent + st.BytesReceived
}

func (l quicLink) close() { l.c.CloseWithError(0, "") }

func (l quicLink) exchange(ctx context.Context, req []byte) ([]byte, error) {
	st, err := l.c.OpenStreamSync(ctx)
	if err != nil {
		l.close()
		return nil, fmt.Errorf("open stream: %w", err)
	}
	return client.StreamExchange(ctx, st, req)
}
