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

// errStale marks a request that got no answer at all on a connection that
// had served before: the server most likely closed it while idle.
var errStale = errors.New("connection closed by the server before it answered")

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

func (c *Client) dialTCP(ctx context.Context) (link, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", c.cfg.Server)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(nc, c.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != protocol.ALPN {
		tc.Close()
		return nil, fmt.Errorf("the server on TCP %s does not speak %s", c.cfg.Server, protocol.ALPN)
	}
	return &tcpLink{conn: tc, server: c.cfg.Server, last: time.Now()}, nil
}

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
		return nil, &TransportError{Op: "request to " + l.server, Err: errStale}
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
			rerr = fmt.Errorf("%w: %w", errStale, rerr)
		} else if werr != nil {
			rerr = errors.Join(werr, rerr)
		}
		return nil, &TransportError{Op: "request to " + l.server, Err: rerr}
	}
	l.served++
	return raw, nil
}
