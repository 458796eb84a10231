package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/protocol"
)

// TLS over TCP, the server's fallback transport, as the real agent speaks
// it (agent/client/tcp.go; the server's side is server/listener/tcp.go):
// requests and answers travel as frames (protocol.Frame), one request at a
// time per connection. The server listens on TCP at the QUIC port number.

// tcpIdle is how long an unused TCP connection is kept, as in the agent:
// less than the server's idle timeout (60 s by default), so that a request
// is seldom sent on a connection the server has just closed.
const tcpIdle = 30 * time.Second

// errStale marks a request that got no answer at all on a connection that
// had served before: the server most likely closed it while idle.
var errStale = errors.New("connection closed by the server before it answered")

// tcpLinker dials TLS-over-TCP links to one server address.
type tcpLinker struct{ addr string }

func (d tcpLinker) connect(ctx context.Context, _ int, tc *tls.Config) (link, error) {
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, err
	}
	cc := &countingConn{Conn: nc}
	c := tls.Client(cc, tc) // resumes a session when tc's session cache holds a ticket
	if err := c.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != protocol.ALPN {
		c.Close()
		return nil, fmt.Errorf("the server on TCP %s does not speak %s", d.addr, protocol.ALPN)
	}
	return &tcpLink{conn: c, counted: cc, last: time.Now()}, nil
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

// tcpLink carries one agent's requests, one after the other, on a
// TLS-over-TCP connection.
type tcpLink struct {
	conn    *tls.Conn
	counted *countingConn
	reqMu   sync.Mutex // one request at a time
	served  int        // answers read; guarded by reqMu

	mu     sync.Mutex
	closed bool
	active int // requests under way
	last   time.Time
}

func (l *tcpLink) resumed() bool { return l.conn.ConnectionState().DidResume }

func (l *tcpLink) wireBytes() uint64 { return l.counted.n.Load() }

func (l *tcpLink) alive() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.closed && (l.active > 0 || time.Since(l.last) < tcpIdle)
}

func (l *tcpLink) close() {
	l.mu.Lock()
	already := l.closed
	l.closed = true
	l.mu.Unlock()
	if !already {
		l.conn.Close()
	}
}

// exchange writes req as one frame while it reads the answer's frame,
// exactly as the agent's tcpLink.roundTrip does. A failure closes the
// link: the connection is in an unknown state.
func (l *tcpLink) exchange(ctx context.Context, req []byte) ([]byte, error) {
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
		return nil, errStale
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
		l.close()
	}
	if rerr != nil {
		var ne net.Error
		if l.served > 0 && got == 0 && ctx.Err() == nil && !(errors.As(rerr, &ne) && ne.Timeout()) {
			rerr = fmt.Errorf("%w: %w", errStale, rerr)
		} else if werr != nil {
			rerr = errors.Join(werr, rerr)
		}
		return nil, rerr
	}
	l.served++
	return raw, nil
}

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
