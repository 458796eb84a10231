package loadgen

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/agent/client"
)

// TLS over TCP, the server's fallback transport, as the real agent speaks
// it (agent/client/tcp.go; the server's side is server/listener/tcp.go):
// requests and answers travel as frames (protocol.Frame), one request at a
// time per connection, sent by the agent's own code (client.TCPConn). The server listens on TCP at the QUIC port number.

// tcpLinker dials TLS-over-TCP links to the server's addresses.
type tcpLinker struct{ addrs []string }

func (d tcpLinker) connect(ctx context.Context, _, srv int, tc *tls.Config) (link, error) {
	var counted *countingConn
	c, err := client.DialTCP(ctx, d.addrs[srv], tc, func(nc net.Conn) net.Conn { // resumes when tc's cache holds a ticket
		counted = &countingConn{Conn: nc}
		return counted
	})
	if err != nil {
		return nil, err
	}
	return &tcpLink{c: c, counted: counted}, nil
}

func (tcpLinker) close() {}

// countingConn counts the bytes read and written on a TCP connection:
// TLS records, handshakes included; not TCP and IP headers.
type countingConn struct {
	net.Conn
	n atomic.Uint64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(uint64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(uint64(n))
	return n, err
}

// tcpLink carries one agent's requests on the real agent's TCP connection
// (agent/client.TCPConn): the same framing, one request at a time, the
// same idle limit and stale-connection handling.
type tcpLink struct {
	c       *client.TCPConn
	counted *countingConn
}

func (l *tcpLink) exchange(ctx context.Context, req []byte) ([]byte, error) {
	return l.c.RoundTrip(ctx, req)
}
func (l *tcpLink) alive() bool       { return l.c.Alive() }
func (l *tcpLink) resumed() bool     { return l.c.Resumed() }
func (l *tcpLink) wireBytes() uint64 { return l.counted.n.Load() }
func (l *tcpLink) close()            { l.c.Close() }

// checkTCP tells early, and plainly, that nothing accepts TCP at addr
// (a server started with --no-tcp), rather than failing every agent's
// handshake. Nothing is sent on the connection.
func checkTCP(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("TCP: cannot connect to %s (%w): the server does not listen on TCP there (started with --no-tcp?); run over QUIC", addr, err)
	}
	return c.Close()
}
