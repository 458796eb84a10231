package listener

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
)

// Stream and connection error codes sent on resets.
const (
	codeTooLarge quic.StreamErrorCode      = 1
	codeShutdown quic.ApplicationErrorCode = 0x10
	codeNoKey    quic.ApplicationErrorCode = 0x11
)

// QUIC is a running QUIC listener.
type QUIC struct {
	*core
	tr        *quic.Transport
	ln        *quic.EarlyListener
	acceptCtx context.Context
	stopAcc   context.CancelFunc
	connWG    sync.WaitGroup // connection goroutines
	mu        sync.Mutex
	conns     map[*quic.Conn]struct{}
	adm       *admission
	completed [2]atomic.Int64 // handshakes completed: full, resumed
	// streams hands a stream to an idle worker (see worker).
	streams chan streamJob
}

// streamJob is a request stream to serve, its peer's key and the
// connection's stream credits.
type streamJob struct {
	key ed25519.PublicKey
	st  *quic.Stream
	cr  *credits
}

// credits defers the stream credit of a connection's answered streams to
// the connection's next answer. quic-go grants the peer a new stream (a
// MAX_STREAMS frame) the moment one completes, which is when the agent's
// acknowledgement of the answer arrives: on a connection that is
// otherwise quiet, as an agent's is between posts, that frame would go
// alone in a packet of its own, which the agent acknowledges in another
// one; granted with the next answer instead, it rides in the packet that
// carries it (BenchmarkQuietConnectionPackets; the counts are in
// docs/PERFORMANCE.md). At most half of the connection's streams are
// deferred, so the peer always has credit left to open the stream that
// releases them.
//
// Only when the peer has no credit left (its streams in flight and the
// held credits fill the connection's bound) are the held credits granted
// creditWait after, without waiting for an answer, so that a slow answer
// never keeps the peer from opening its whole bound. An agent has one
// request in flight at a time and never gets there; granting them after
// creditWait whenever a stream is in flight would cost every answer
// slower than that two more packets, which past capacity is every answer.
type credits struct {
	mu     sync.Mutex
	max    int // credits held at most: half the bound
	bound  int // the connection's stream bound
	held   []*quic.Stream
	active int         // streams arrived and not yet done
	timer  *time.Timer // grants the held credits if no answer does first
	armed  bool
}

func newCredits(bound int) *credits { return &credits{max: bound / 2, bound: bound} }

// creditWait is how long held credits wait for an answer once the peer
// has no credit left.
const creditWait = 20 * time.Millisecond

// arrived counts a new stream in flight; the held credits are granted
// with its answer (release), or after creditWait if the peer has no
// credit left.
func (c *credits) arrived() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active++
	c.armLocked()
}

// armLocked starts the timer that grants the held credits, if there are
// any, the peer can open no stream, and it is not running.
func (c *credits) armLocked() {
	if len(c.held) == 0 || c.active+len(c.held) < c.bound || c.armed {
		return
	}
	c.armed = true
	if c.timer == nil {
		c.timer = time.AfterFunc(creditWait, c.release)
	} else {
		c.timer.Reset(creditWait)
	}
}

// done ends st, answered or not: its credit is held (or granted at once
// past the bound), and granted within creditWait should the peer then
// have no credit left.
func (c *credits) done(st *quic.Stream) {
	c.mu.Lock()
	c.active--
	if len(c.held) >= c.max {
		c.mu.Unlock()
		st.ReleaseStreamCredit()
		return
	}
	c.held = append(c.held, st)
	c.armLocked()
	c.mu.Unlock()
}

// release grants every held credit.
func (c *credits) release() {
	c.mu.Lock()
	held := c.held
	c.held = nil
	if c.armed {
		c.timer.Stop()
		c.armed = false
	}
	c.mu.Unlock()
	for _, st := range held {
		st.ReleaseStreamCredit()
	}
}

// workerIdle is how long a stream worker waits for another stream before
// it ends.
const workerIdle = 10 * time.Second

// admission bounds the handshakes in progress. A handshake is most of what
// a connection costs the server (the key exchange); when a fleet comes back
// at once, accepting every handshake together starves everything (requests,
// retransmissions, the admin API) and most time out. Past the bound a new
// connection is refused at once, before any cryptography, and the agent
// retries after a jittered back-off: the server works at the rate it can.
//
// Half-open handshakes (Initial packets that never complete) would hold the
// slots until they time out, so admission also keeps per-address counts and
// asks quic-go for address validation (a Retry, see verify) once handshakes
// queue up: a flood from spoofed addresses then holds at most retryAbove
// slots, and one from real addresses at most perAddr per address. The
// counts of validated connections are kept apart, so that spoofing a
// victim's address cannot use up the victim's own limits.
type admission struct {
	max, perAddr, retryAbove, connsPerAddr int // 0 or less: no bound

	mu         sync.Mutex
	inflight   int // handshakes in progress
	unverified int // of which from addresses not validated
	peers      map[netip.Addr]*quicPeer

	refused atomic.Int64
	retries atomic.Int64
}

// quicPeer counts one client address's handshakes and connections (from
// admission to close), all and validated.
type quicPeer struct {
	hs, hsValid, conns, connsValid int
}

func newAdmission(cfg Config) *admission {
	return &admission{max: cfg.MaxHandshakes, perAddr: cfg.MaxHandshakesPerAddr, retryAbove: cfg.RetryAbove,
		connsPerAddr: cfg.MaxConnsPerAddr, peers: map[netip.Addr]*quicPeer{}}
}

// over reports whether n has reached the bound b (b <= 0: no bound).
func over(n, b int) bool { return b > 0 && n >= b }

// verify is the Transport's VerifySourceAddress: it asks for a Retry when
// handshakes queue up, or when this address already has its share of
// handshakes or connections. It is called only for Initial packets without
// a valid token, just before admit, on quic-go's one packet-handling
// goroutine. Where admit would refuse even a validated address (every slot
// taken, or the address's validated share used up), no Retry is asked for:
// admit's refusal is as cheap and stateless, and spares an agent in a
// storm a round trip and the server a second Initial.
func (a *admission) verify(addr net.Addr) bool {
	if a.retryAbove <= 0 {
		return false
	}
	a.mu.Lock()
	p := a.peers[peerOf(addr)]
	if p == nil {
		p = &quicPeer{}
	}
	retry := !over(a.inflight, a.max) && !over(p.hsValid, a.perAddr) && !over(p.connsValid, a.connsPerAddr) &&
		(over(a.inflight, a.retryAbove) || over(p.hs, a.perAddr) || over(p.conns, a.connsPerAddr))
	a.mu.Unlock()
	if retry {
		a.retries.Add(1)
	}
	return retry
}

type ticketKey struct{}

// ticket is one admitted connection; its handshake slot is released once,
// on completion or failure, and its per-address count when it closes.
type ticket struct {
	adm      *admission
	peer     netip.Addr
	verified bool
	hsOnce   sync.Once
}

func (t *ticket) release() {
	t.hsOnce.Do(func() {
		a := t.adm
		a.mu.Lock()
		defer a.mu.Unlock()
		a.inflight--
		if !t.verified {
			a.unverified--
		}
		p := a.peers[t.peer]
		p.hs--
		if t.verified {
			p.hsValid--
		}
	})
}

// closed ends the connection's count, and its handshake's if still held.
func (t *ticket) closed() {
	t.release()
	a := t.adm
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.peers[t.peer]
	p.conns--
	if t.verified {
		p.connsValid--
	}
	if p.conns == 0 {
		delete(a.peers, t.peer)
	}
}

// admit is the Transport's ConnContext. A client whose address was not
// validated is held to the limits of all connections from its address; a
// validated one only to those of the validated ones.
func (a *admission) admit(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
	key := peerOf(info.RemoteAddr)
	a.mu.Lock()
	p := a.peers[key]
	if p == nil {
		p = &quicPeer{}
	}
	hs, conns := p.hs, p.conns
	if info.AddrVerified {
		hs, conns = p.hsValid, p.connsValid
	}
	var err error
	switch {
	case over(a.inflight, a.max):
		err = errTooManyHandshakes
	case !info.AddrVerified && over(a.inflight, a.retryAbove):
		err = errTooManyHandshakes // a Retry was due: only when verify raced a release
	case over(hs, a.perAddr):
		err = errTooManyFromAddr
	case over(conns, a.connsPerAddr):
		err = errTooManyConnsFromAddr
	}
	if err != nil {
		a.mu.Unlock()
		a.refused.Add(1)
		return nil, err
	}
	a.peers[key] = p
	a.inflight++
	p.hs++
	p.conns++
	if info.AddrVerified {
		p.hsValid++
		p.connsValid++
	} else {
		a.unverified++
	}
	a.mu.Unlock()
	t := &ticket{adm: a, peer: key, verified: info.AddrVerified}
	ctx = context.WithValue(ctx, ticketKey{}, t)
	context.AfterFunc(ctx, t.closed) // closed, or a handshake that failed or timed out
	return ctx, nil
}

var (
	errTooManyHandshakes    = errors.New("too many handshakes in progress")
	errTooManyFromAddr      = errors.New("too many handshakes in progress from one address")
	errTooManyConnsFromAddr = errors.New("too many connections from one address")
)

func releaseHandshake(ctx context.Context) {
	if t, ok := ctx.Value(ticketKey{}).(*ticket); ok {
		t.release()
	}
}

// Retries counts the Retry packets asked for (address validation under
// load).
func (q *QUIC) Retries() int64 { return q.adm.retries.Load() }

// HandshakesRefused counts connections refused because too many
// handshakes were in progress, or too many handshakes or connections from
// one address.
func (q *QUIC) HandshakesRefused() int64 { return q.adm.refused.Load() }

// Handshakes counts the QUIC handshakes completed, full and resumed (a
// TLS session ticket, with or without 0-RTT data).
func (q *QUIC) Handshakes() (full, resumed int64) {
	return q.completed[0].Load(), q.completed[1].Load()
}

// ListenQUIC binds the UDP socket and starts accepting.
func ListenQUIC(cfg Config) (*QUIC, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	udpAddr, err := net.ResolveUDPAddr("udp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", cfg.Addr, err)
	}
	pc, err := net.ListenUDP("udp", udpAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on UDP %s: %w", cfg.Addr, err)
	}
	adm := newAdmission(cfg)
	tr := &quic.Transport{Conn: pc, StatelessResetKey: cfg.StatelessResetKey, TokenGeneratorKey: cfg.TokenKey,
		ConnContext: adm.admit, VerifySourceAddress: adm.verify}
	qc := &quic.Config{
		HandshakeIdleTimeout:           cfg.HandshakeTimeout,
		MaxIdleTimeout:                 cfg.IdleTimeout,
		MaxIncomingStreams:             cfg.MaxStreamsPerConn,
		MaxIncomingUniStreams:          -1,
		RequireStreamCreditRelease:     true, // see credits
		InitialStreamReceiveWindow:     64 << 10,
		MaxStreamReceiveWindow:         protocol.MaxRequestSize,
		InitialConnectionReceiveWindow: 128 << 10,
		MaxConnectionReceiveWindow:     2 * protocol.MaxRequestSize,
		Allow0RTT:                      cfg.Allow0RTT,
		// The server's answers are small: probing for a path MTU above
		// 1,280 bytes gains them nothing, and each probe cost the
		// agent's quiet connection two packets of ~1,400 bytes and the
		// acknowledgements that could not ride with an answer.
		DisablePathMTUDiscovery: true,
	}
	ln, err := tr.ListenEarly(cfg.TLS, qc)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("listen QUIC on %s: %w", cfg.Addr, err)
	}
	q := &QUIC{core: newCore(cfg), tr: tr, ln: ln, conns: map[*quic.Conn]struct{}{}, adm: adm, streams: make(chan streamJob)}
	q.acceptCtx, q.stopAcc = context.WithCancel(context.Background())
	return q, nil
}

// Addr is the bound UDP address.
func (q *QUIC) Addr() net.Addr { return q.ln.Addr() }

// Serve accepts connections until Shutdown. It returns nil after Shutdown.
func (q *QUIC) Serve() error {
	for {
		conn, err := q.ln.Accept(q.acceptCtx)
		if err != nil {
			if q.acceptCtx.Err() != nil || errors.Is(err, quic.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("accept QUIC connection: %w", err)
		}
		q.mu.Lock()
		if q.acceptCtx.Err() != nil {
			q.mu.Unlock()
			conn.CloseWithError(codeShutdown, "server shutting down")
			continue
		}
		q.conns[conn] = struct{}{}
		q.connWG.Add(1)
		q.mu.Unlock()
		go q.serveConn(conn)
	}
}

func (q *QUIC) serveConn(conn *quic.Conn) {
	defer func() {
		q.mu.Lock()
		delete(q.conns, conn)
		q.mu.Unlock()
		q.connWG.Done()
	}()
	go func() {
		select {
		case <-conn.HandshakeComplete():
			releaseHandshake(conn.Context())
			if conn.ConnectionState().TLS.DidResume {
				q.completed[1].Add(1)
			} else {
				q.completed[0].Add(1)
			}
		case <-conn.Context().Done():
		}
	}()
	// An early listener hands over connections before the handshake ends.
	// A resumed connection that sent 0-RTT data carries its peer's
	// certificate from the session it resumes (verified then, and checked
	// again by VerifyConnection): its requests are served at once, which is
	// safe because each is applied once by its sequence number, replayed
	// or not. Any other connection waits for its handshake.
	if !conn.ConnectionState().Used0RTT {
		select {
		case <-conn.HandshakeComplete():
		case <-conn.Context().Done():
			return
		}
	}
	key, err := identity.PeerKey(conn.ConnectionState().TLS)
	if err != nil {
		conn.CloseWithError(codeNoKey, "a client certificate with an Ed25519 key is required")
		return
	}
	cr := newCredits(int(q.cfg.MaxStreamsPerConn))
	for {
		st, err := conn.AcceptStream(q.acceptCtx)
		if err != nil {
			return
		}
		if !q.begin() {
			cr.release()
			st.CancelRead(0)
			st.CancelWrite(0)
			st.ReleaseStreamCredit()
			return
		}
		cr.arrived()
		q.dispatch(streamJob{key, st, cr})
	}
}

// dispatch serves a stream on an idle worker, or on a new one when none
// is idle. A goroutine per stream would grow its stack again for every
// request (decoding, the store call), a cost a worker pays once: it keeps
// its grown stack from one request to the next (until the collector
// shrinks it; docs/PERFORMANCE.md has the profile), and the number of
// workers follows the requests in flight, which --max-in-flight bounds.
func (q *QUIC) dispatch(j streamJob) {
	select {
	case q.streams <- j:
	default:
		go q.worker(j)
	}
}

// worker serves j, then the streams handed to it, until it has been idle
// for workerIdle or the listener has shut down.
func (q *QUIC) worker(j streamJob) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		q.serveStream(j.key, j.st, j.cr)
		j.cr.done(j.st)
		idle.Reset(workerIdle)
		select {
		case j = <-q.streams:
		case <-idle.C:
			return
		case <-q.work.Done():
			return
		}
	}
}

func (q *QUIC) serveStream(key ed25519.PublicKey, st *quic.Stream, cr *credits) {
	defer q.end()
	// A stream is accepted when its first bytes arrive.
	start := time.Now()
	st.SetDeadline(start.Add(q.cfg.RequestTimeout))
	resp, _ := q.answer(key, &body{r: st, size: -1, max: protocol.MaxRequestSize, start: start,
		setRead: st.SetReadDeadline,
		skip:    func() bool { st.CancelRead(0); return true },
		abandon: func() { st.CancelRead(codeTooLarge) },
	})
	out, err := q.encode(resp)
	if err != nil {
		st.CancelWrite(0)
		return
	}
	// The credits held for earlier streams are granted now, so that the
	// MAX_STREAMS frame is queued just before the answer and leaves with
	// it (granted when the stream arrived, it left in a packet of its own
	// for one request in ten, the answer being not yet ready), or after
	// creditWait if the answer takes longer (credits.arrived).
	cr.release()
	if _, err := st.Write(out); err != nil {
		q.log.Debug("write response", "err", err)
		st.CancelWrite(0)
		return
	}
	st.Close()
}

// Shutdown stops accepting connections and requests, waits until the
// requests in flight are answered (or ctx ends), then closes every
// connection and the socket.
func (q *QUIC) Shutdown(ctx context.Context) error {
	q.mu.Lock()
	q.stopAcc()
	q.mu.Unlock()
	err := q.ln.Close()
	q.drain(ctx)
	q.mu.Lock()
	for c := range q.conns {
		c.CloseWithError(codeShutdown, "server shutting down")
	}
	q.mu.Unlock()
	q.connWG.Wait()
	q.stopWork()
	// quic-go's Transport does not close a socket it was handed.
	return errors.Join(err, q.tr.Close(), q.tr.Conn.Close())
}
