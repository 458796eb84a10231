package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/tallyhq/tally/protocol"
)

// On TCP, requests and answers travel as frames (protocol.Frame), one
// request at a time per connection. The server's side is in
// server/listener/tcp.go.

// tcpIdle is how long an unused TCP connection is kept: less than the
// server's idle timeout (60 s by default), so that the client seldom sends
// on a connection the server has just closed.
const tcpIdle = 30 * time.Second

// ErrStaleConnection marks a request that got no answer at all on a TCP
// connection that had served before: the server most likely closed it
// while idle, and the request may be sent again on a new one.
var ErrStaleConnection = errors.New("connection closed by the server before it answered")

// tcpLink carries requests one after the other on a TLS-over-TCP connection.
type tcpLink struct {
	conn   *tls.Conn
	server string
	reqMu  sync.Mutex // one request at a time
	served int        // answers read; guarded by reqMu

	mu     sync.Mutex
	closed bool
	active int // requests under way
	last   time.Time
}

func (c *Client) dialTCP(ctx context.Context, server string) (link, error) {
	return dialTCP(ctx, server, c.tls, nil)
}

// dialTCP connects over TLS over TCP with tc, which must offer
// protocol.ALPN; wrap, when not nil, wraps the TCP connection under TLS.
func dialTCP(ctx context.Context, addr string, tc *tls.Config, wrap func(net.Conn) net.Conn) (*tcpLink, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	under := nc
	if wrap != nil {
		under = wrap(nc)
	}
	c := tls.Client(under, tc)
	if err := c.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != protocol.ALPN {
		c.Close()
		return nil, fmt.Errorf("the server on TCP %s does not speak %s", addr, protocol.ALPN)
	}
	return &tcpLink{conn: c, server: addr, last: time.Now()}, nil
}

// TCPConn is one TLS-over-TCP connection carrying requests one after the
// other exactly as the agent's client does, for programs that simulate
// agents (tally-load). Its errors are those of Client.Do's transport: a
// *TransportError, wrapping ErrStaleConnection when the server had closed
// the connection.
type TCPConn struct{ l *tcpLink }

// DialTCP connects to addr with tc (the agent's TLS configuration: its
// certificate, the pinned server, protocol.ALPN). wrap, when not nil, wraps
// the TCP connection under TLS, e.g. to count its bytes.
func DialTCP(ctx context.Context, addr string, tc *tls.Config, wrap func(net.Conn) net.Conn) (*TCPConn, error) {
	l, err := dialTCP(ctx, addr, tc, wrap)
	if err != nil {
		return nil, err
	}
	return &TCPConn{l: l}, nil
}

// RoundTrip sends one encoded request envelope and returns the answer's
// bytes. A failure closes the connection.
func (c *TCPConn) RoundTrip(ctx context.Context, req []byte) ([]byte, error) {
	return c.l.roundTrip(ctx, req)
}

// Alive reports whether the connection may carry another request (open,
// and not idle long enough for the server to close it).
func (c *TCPConn) Alive() bool { return c.l.alive() }

// Resumed reports whether the TLS handshake resumed a session.
func (c *TCPConn) Resumed() bool { return c.l.conn.ConnectionState().DidResume }

// Close closes the connection; it may be called more than once.
func (c *TCPConn) Close() { c.l.close("") }

func (l *tcpLink) transport() string { return TransportTCP }

func (l *tcpLink) alive() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.closed && (l.active > 0 || time.Since(l.last) < tcpIdle)
}

func (l *tcpLink) close(string) {
	l.mu.Lock()
	already := l.closed
	l.closed = true
	l.mu.Unlock()
	if !already {
		l.conn.Close()
	}
}

func (l *tcpLink) roundTrip(ctx context.Context, req []byte) ([]byte, error) {
	l.mu.Lock()
	l.active++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.active--
		l.last = time.Now()
		l.mu.Unlock()
	}()
	l.reqMu.Lock()
	defer l.reqMu.Unlock()
	if !l.alive() {
		return nil, &TransportError{Op: "request to " + l.server, Err: ErrStaleConnection}
	}
	dl, _ := ctx.Deadline() // zero: none
	l.conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { l.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	// Written while the answer is read: a server that refuses an oversized
	// request answers before it has read it all.
	wrote := make(chan error, 1)
	go func() {
		_, err := l.conn.Write(protocol.Frame(req))
		wrote <- err
	}()
	raw, got, rerr := protocol.ReadFrame(l.conn, protocol.MaxResponseSize)
	if rerr == nil {
		// Answered: a write still going will never be read. Stop it (a
		// write that has finished is not affected).
		l.conn.SetWriteDeadline(time.Unix(1, 0))
	}
	werr := <-wrote
	if rerr != nil || werr != nil {
		l.close("") // the connection is in an unknown state
	}
	if rerr != nil {
		var ne net.Error
		if l.served > 0 && got == 0 && ctx.Err() == nil && !(errors.As(rerr, &ne) && ne.Timeout()) {
			rerr = fmt.Errorf("%w: %w", ErrStaleConnection, rerr)
		} else if werr != nil {
			rerr = errors.Join(werr, rerr)
		}
		return nil, &TransportError{Op: "request to " + l.server, Err: rerr}
	}
	l.served++
	return raw, nil
}
