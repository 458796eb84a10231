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
	// connect opens agent i's link, with its TLS configuration.
	connect(ctx context.Context, i int, tc *tls.Config) (link, error)
	close()
}

// dialer connects simulated agents to one server address. Each agent has
// its own certificate and so its own QUIC connection, but connections
// share a few UDP sockets (quic.Transport demultiplexes by connection ID):
// 10,000 agents need 10,000 connections, not 10,000 sockets.
type dialer struct {
	addr *net.UDPAddr
	trs  []*quic.Transport
	qcfg *quic.Config
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

func newDialer(addr string, sockets int, handshake time.Duration) (*dialer, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("server address %q: %w", addr, err)
	}
	if sockets <= 0 {
		sockets = 1
	}
	network := "udp4"
	if ua.IP.To4() == nil {
		network = "udp6"
	}
	d := &dialer{addr: ua, qcfg: clientQUICConfig(handshake)}
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

// dial connects agent i over its socket; early selects DialEarly (0-RTT
// when the session cache holds a ticket that allows it).
func (d *dialer) dial(ctx context.Context, i int, tc *tls.Config, early bool) (*quic.Conn, error) {
	tr := d.trs[i%len(d.trs)]
	if early {
		return tr.DialEarly(ctx, d.addr, tc, d.qcfg)
	}
	return tr.Dial(ctx, d.addr, tc, d.qcfg)
}

// connect opens agent i's QUIC link.
func (d *dialer) connect(ctx context.Context, i int, tc *tls.Config) (link, error) {
	c, err := d.dial(ctx, i, tc, false)
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
