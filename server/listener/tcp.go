package listener

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
)

// On TCP there is no stream per request, so requests and answers travel as
// frames (protocol.Frame: the bytes a QUIC stream would carry, after their
// length), one request at a time per connection.

// After an oversized request the listener answers, then reads and throws
// away up to lingerBytes for up to lingerTime before it closes, so that
// the agent, still sending, reads the answer instead of a reset.
const (
	lingerBytes = 2 * protocol.MaxRequestSize
	lingerTime  = 2 * time.Second
)

// TCP is a running listener of TLS 1.3 over TCP, for agents whose network
// drops UDP.
type TCP struct {
	*core
	ln     net.Listener
	slots  chan struct{} // one per open connection, up to MaxConns
	hs     chan struct{} // one per TLS handshake in progress, up to MaxHandshakes (nil: no bound)
	connWG sync.WaitGroup

	mu       sync.Mutex
	stopping bool
	conns    map[*tcpConn]struct{}
	lastFull time.Time // when a turned-away connection was last logged
	refused  atomic.Int64
}

type tcpConn struct {
	*tls.Conn
	busy bool // a request is being read or answered; guarded by TCP.mu
}

// ListenTCP binds the TCP socket; Serve starts accepting.
func ListenTCP(cfg Config) (*TCP, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on TCP %s: %w", cfg.Addr, err)
	}
	t := &TCP{core: newCore(cfg), ln: ln, slots: make(chan struct{}, cfg.MaxConns), conns: map[*tcpConn]struct{}{}}
	if cfg.MaxHandshakes > 0 {
		t.hs = make(chan struct{}, cfg.MaxHandshakes)
	}
	return t, nil
}

// Addr is the bound TCP address.
func (t *TCP) Addr() net.Addr { return t.ln.Addr() }

// Serve accepts connections until Shutdown. It returns nil after Shutdown.
func (t *TCP) Serve() error {
	var delay time.Duration
	for {
		nc, err := t.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: wait, and try again.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.log.Warn("accept TCP connection", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		select {
		case t.slots <- struct{}{}:
		default:
			t.turnAway(nc)
			continue
		}
		c := &tcpConn{Conn: tls.Server(nc, t.cfg.TLS)}
		if !t.track(c) {
			nc.Close()
			<-t.slots
			continue
		}
		go t.serveConn(c)
	}
}

// turnAway closes a connection over MaxConns at once: the agent sees a
// transport error and tries again after its back-off.
func (t *TCP) turnAway(nc net.Conn) {
	nc.Close()
	t.mu.Lock()
	now := time.Now()
	logIt := now.Sub(t.lastFull) >= time.Minute
	if logIt {
		t.lastFull = now
	}
	t.mu.Unlock()
	if logIt {
		t.log.Warn("too many TCP connections: new ones are closed until some end", "max", t.cfg.MaxConns)
	}
}

func (t *TCP) track(c *tcpConn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopping {
		return false
	}
	t.conns[c] = struct{}{}
	t.connWG.Add(1)
	return true
}

func (t *TCP) serveConn(c *tcpConn) {
	defer func() {
		c.Close()
		t.mu.Lock()
		delete(t.conns, c)
		t.mu.Unlock()
		<-t.slots
		t.connWG.Done()
	}()
	if !t.idle(c, t.cfg.HandshakeTimeout) {
		return
	}
	if !t.handshake(c) {
		return
	}
	cs := c.ConnectionState()
	key, err := identity.PeerKey(cs)
	if err != nil || cs.NegotiatedProtocol == "" {
		// The TLS configuration demands the key; a client that offered no
		// application protocol does not speak ours.
		return
	}
	for {
		if !t.idle(c, t.cfg.IdleTimeout) {
			return
		}
		var hdr [protocol.FrameHeader]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return // the agent closed, went silent, or the server is stopping
		}
		if !t.busy(c) || !t.begin() {
			return // the server is stopping: the agent sends it again later
		}
		keep := t.serveRequest(c, key, protocol.FrameLength(hdr))
		t.end()
		if !keep {
			return
		}
	}
}

// handshake runs c's TLS handshake once one of MaxHandshakes is free: as
// over QUIC, a fleet connecting at once must not start every key exchange
// together. Unlike QUIC's refusal, an accepted TCP connection waits for its
// turn (it is already counted in MaxConns, and the kernel queues the rest),
// within the handshake timeout; past it the connection is closed and the
// agent retries after its back-off.
func (t *TCP) handshake(c *tcpConn) bool {
	if t.hs != nil {
		timer := time.NewTimer(t.cfg.HandshakeTimeout)
		select {
		case t.hs <- struct{}{}:
			timer.Stop()
			defer func() { <-t.hs }()
		case <-timer.C:
			t.refused.Add(1)
			t.log.Debug("TLS handshake over TCP: no free handshake slot in time", "remote", c.RemoteAddr().String())
			return false
		}
	}
	if err := c.Handshake(); err != nil {
		t.log.Debug("TLS handshake over TCP", "remote", c.RemoteAddr().String(), "err", err)
		return false
	}
	return true
}

// HandshakesRefused counts connections closed because no handshake slot
// came free within the handshake timeout.
func (t *TCP) HandshakesRefused() int64 { return t.refused.Load() }

// idle marks c as waiting for its next request (or its handshake), for at
// most d. It returns false once the server is stopping. The deadline is
// set under the lock so that Shutdown's wake-up cannot be overwritten.
func (t *TCP) idle(c *tcpConn, d time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopping {
		return false
	}
	c.busy = false
	c.SetDeadline(time.Now().Add(d))
	return true
}

// busy marks c as serving a request, which Shutdown lets finish.
func (t *TCP) busy(c *tcpConn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopping {
		return false
	}
	c.busy = true
	return true
}

// serveRequest reads the rest of a request whose frame announced n bytes,
// answers it, and reports whether the connection may carry another.
func (t *TCP) serveRequest(c *tcpConn, key ed25519.PublicKey, n uint32) bool {
	start := time.Now()
	c.SetDeadline(start.Add(t.cfg.RequestTimeout))
	if n > protocol.MaxRequestSize {
		// Refused before a byte of it is read. Skipping it could take as
		// long as reading it: answer, and close the connection.
		if t.reply(c, t.cfg.Refuse(protocol.ErrTooLarge)) {
			t.linger(c, n)
		}
		return false
	}
	lr := &io.LimitedReader{R: c, N: int64(n)}
	resp, f := t.answer(key, &body{r: lr, size: int(n), max: int(n), start: start,
		setRead: c.SetReadDeadline,
		skip: func() bool {
			_, err := io.Copy(io.Discard, lr)
			return err == nil && lr.N == 0
		},
		abandon: func() {},
	})
	switch f {
	case broken:
		return false // the frame was cut short or timed out: nothing more can be read in step
	case refused:
		if t.reply(c, resp) {
			t.linger(c, n)
		}
		return false
	}
	return t.reply(c, resp)
}

// reply writes resp as one frame.
func (t *TCP) reply(c *tcpConn, resp protocol.Response) bool {
	out, err := t.encode(resp)
	if err != nil {
		return false
	}
	if _, err := c.Write(protocol.Frame(out)); err != nil {
		t.log.Debug("write response over TCP", "err", err)
		return false
	}
	return true
}

// linger ends the sending side and throws away what the agent still sends
// of a refused request, for a bounded time and size.
func (t *TCP) linger(c *tcpConn, n uint32) {
	_ = c.CloseWrite() // close_notify: the agent reads the end after the answer
	nc := c.NetConn()
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = nc.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, nc, min(int64(n), lingerBytes))
}

// Shutdown stops accepting connections and requests, closes idle
// connections, waits until the requests in flight are answered (or ctx
// ends), then closes every connection and the socket.
func (t *TCP) Shutdown(ctx context.Context) error {
	t.mu.Lock()
	t.stopping = true
	for c := range t.conns {
		if !c.busy {
			c.SetReadDeadline(time.Now()) // wakes it from waiting for its next request
		}
	}
	t.mu.Unlock()
	err := t.ln.Close()
	t.drain(ctx)
	t.mu.Lock()
	for c := range t.conns {
		c.NetConn().Close() // left: stuck writing to an agent that does not read
	}
	t.mu.Unlock()
	t.connWG.Wait()
	t.stopWork()
	return err
}
