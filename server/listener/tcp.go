package listener

import (
	"container/list"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
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
	hs     chan struct{} // one per TLS handshake in progress, up to MaxHandshakes (nil: no bound)
	connWG sync.WaitGroup

	mu       sync.Mutex
	stopping bool
	conns    map[*tcpConn]struct{}
	open     int                     // connections counted against MaxConns
	starting list.List               // of *tcpConn yet to send their first request, oldest first
	peers    map[netip.Addr]*tcpPeer // per client address
	lastFull time.Time               // when a turned-away connection was last logged
	refused  atomic.Int64            // handshakes refused
	turned   atomic.Int64            // connections closed by the connection limits
}

// tcpPeer counts one client address's connections, and holds its
// handshake slots (nil: no bound).
type tcpPeer struct {
	conns int
	hs    chan struct{}
}

type tcpConn struct {
	*tls.Conn
	peer  netip.Addr
	busy  bool          // a request is being read or answered; guarded by TCP.mu
	start *list.Element // in TCP.starting until the first request; guarded by TCP.mu
	shed  bool          // closed to make room: its MaxConns slot went to another; guarded by TCP.mu
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
	t := &TCP{core: newCore(cfg), ln: ln, conns: map[*tcpConn]struct{}{}, peers: map[netip.Addr]*tcpPeer{}}
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
		c := &tcpConn{Conn: tls.Server(nc, t.cfg.TLS), peer: peerOf(nc.RemoteAddr())}
		shed, why := t.track(c)
		if shed != nil {
			shed.NetConn().Close() // wakes it; its goroutine cleans up
		}
		if why != "" {
			t.turnAway(nc, why)
			continue
		}
		go t.serveConn(c)
	}
}

// turnAway closes a connection over a limit at once: the agent sees a
// transport error and tries again after its back-off.
func (t *TCP) turnAway(nc net.Conn, why string) {
	nc.Close()
	t.turned.Add(1)
	t.mu.Lock()
	now := time.Now()
	logIt := now.Sub(t.lastFull) >= time.Minute
	if logIt {
		t.lastFull = now
	}
	t.mu.Unlock()
	if logIt {
		t.log.Warn("TCP connections closed at once: "+why, "remote", nc.RemoteAddr().String(),
			"max_conns", t.cfg.MaxConns, "max_conns_per_addr", t.cfg.MaxConnsPerAddr)
	}
}

// track counts c against the connection limits. Past MaxConns the oldest
// connection yet to send its first request is shed to make room, and
// returned for the caller to close. why says why c must be turned away
// instead, when it must.
func (t *TCP) track(c *tcpConn) (shed *tcpConn, why string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopping {
		return nil, "the server is stopping"
	}
	p := t.peers[c.peer]
	if p == nil {
		p = &tcpPeer{}
		if t.cfg.MaxHandshakesPerAddr > 0 {
			p.hs = make(chan struct{}, t.cfg.MaxHandshakesPerAddr)
		}
	}
	if over(p.conns, t.cfg.MaxConnsPerAddr) {
		return nil, "too many from one address"
	}
	if t.open >= t.cfg.MaxConns {
		victim := t.victim()
		if victim == nil {
			return nil, "too many TCP connections, every one of them serving an agent"
		}
		shed = t.starting.Remove(victim).(*tcpConn)
		shed.start = nil
		shed.shed = true
		t.open-- // its slot is given to c
		t.turned.Add(1)
	}
	t.open++
	t.peers[c.peer] = p
	p.conns++
	c.start = t.starting.PushBack(c)
	t.conns[c] = struct{}{}
	t.connWG.Add(1)
	return shed, ""
}

// victim picks the connection to shed: of those yet to send their first
// request, the oldest from the address that holds the most connections. A
// flood from a few addresses then churns through its own connections, and
// an agent's new connection, alone from its address, is not cut while its
// handshake runs however fast the flood dials. Called with t.mu held; the
// scan (at most MaxConns) runs only when the bound is reached.
func (t *TCP) victim() *list.Element {
	var best *list.Element
	most := 0
	for e := t.starting.Front(); e != nil; e = e.Next() {
		if n := t.peers[e.Value.(*tcpConn).peer].conns; n > most {
			best, most = e, n
		}
	}
	return best
}

// untrack forgets c when it ends.
func (t *TCP) untrack(c *tcpConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.conns, c)
	if c.start != nil {
		t.starting.Remove(c.start)
		c.start = nil
	}
	if !c.shed {
		t.open--
	}
	if p := t.peers[c.peer]; p != nil {
		if p.conns--; p.conns == 0 {
			delete(t.peers, c.peer) // its handshake slots went with its connections
		}
	}
}

// served marks c as past its first request: an agent's, kept between
// requests for IdleTimeout and never shed.
func (t *TCP) served(c *tcpConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.start != nil {
		t.starting.Remove(c.start)
		c.start = nil
	}
}

func (t *TCP) serveConn(c *tcpConn) {
	defer func() {
		c.Close()
		t.untrack(c)
		t.connWG.Done()
	}()
	// Until its first request, a connection has StartTimeout in all: an
	// agent sends it as soon as TLS is up.
	deadline := time.Now().Add(t.cfg.StartTimeout)
	if !t.idleUntil(c, deadline) || !started(c.NetConn()) {
		return
	}
	if !t.handshake(c, deadline) {
		return
	}
	cs := c.ConnectionState()
	key, err := identity.PeerKey(cs)
	if err != nil || cs.NegotiatedProtocol == "" {
		// The TLS configuration demands the key; a client that offered no
		// application protocol does not speak ours.
		return
	}
	for first := true; ; first = false {
		if !first && !t.idle(c, t.cfg.IdleTimeout) {
			return
		}
		var hdr [protocol.FrameHeader]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return // the agent closed, went silent, or the server is stopping
		}
		if first {
			t.served(c)
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
// until deadline; past it the connection is closed and the agent retries
// after its back-off. It first waits for one of its address's
// MaxHandshakesPerAddr slots, so that one address cannot hold every
// MaxHandshakes slot, while agents behind one NAT address take turns.
func (t *TCP) handshake(c *tcpConn, deadline time.Time) bool {
	t.mu.Lock()
	perAddr := t.peers[c.peer].hs
	t.mu.Unlock()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for _, slots := range []chan struct{}{perAddr, t.hs} {
		if slots == nil {
			continue
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
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
// (of their address's, or of all) came free before the start timeout.
func (t *TCP) HandshakesRefused() int64 { return t.refused.Load() }

// ConnsTurnedAway counts connections closed by the connection limits:
// turned away at once, or shed (the oldest yet to send a request) to make
// room for a new one.
func (t *TCP) ConnsTurnedAway() int64 { return t.turned.Load() }

// idle marks c as waiting for its next request, for at most d. It returns
// false once the server is stopping.
func (t *TCP) idle(c *tcpConn, d time.Duration) bool { return t.idleUntil(c, time.Now().Add(d)) }

// idleUntil marks c as waiting for its next request (or its handshake)
// until deadline. It returns false once the server is stopping. The
// deadline is set under the lock so that Shutdown's wake-up cannot be
// overwritten.
func (t *TCP) idleUntil(c *tcpConn, deadline time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopping {
		return false
	}
	c.busy = false
	c.SetDeadline(deadline)
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
