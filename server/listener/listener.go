// Package listener accepts agents' connections and carries their requests
// to a Handler: QUIC on UDP (one request per stream), and TLS 1.3 over TCP
// on the same port number for agents whose network drops UDP (one request
// per length-prefixed frame, sequentially on a connection). Both use the
// same TLS configuration (mutual TLS 1.3, ALPN tally/1), bound what each
// connection and each request may cost, shed load with a retry-after when
// too many requests are in flight, and shut down gracefully: in-flight
// requests finish, then connections close. A request's key is looked up
// before it takes anything (Config.Authenticate), so that clients that
// never enrolled only ever spend a small budget of their own.
package listener

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tallyhq/tally/protocol"
)

// Handler answers one request; see nodeapi.Handler.
type Handler interface {
	Handle(ctx context.Context, key ed25519.PublicKey, raw []byte) protocol.Response
}

// RefuseFunc builds the response for a request that could not be read.
type RefuseFunc func(err error) protocol.Response

// Config configures a listener. Fields that only one transport uses say so.
type Config struct {
	Addr    string // host:port; port 0 picks a free one
	TLS     *tls.Config
	Handler Handler
	Refuse  RefuseFunc
	Logger  *slog.Logger
	// StatelessResetKey and TokenKey (QUIC) are kept in the data folder so
	// that agents recover quickly across restarts (see TECH-NOTES).
	StatelessResetKey *quic.StatelessResetKey
	TokenKey          *quic.TokenGeneratorKey
	// MaxStreamsPerConn (QUIC) bounds concurrent requests on one
	// connection (default 8). A TCP connection carries one at a time.
	MaxStreamsPerConn int64
	// MaxConns (TCP) bounds open connections (default 1024). Past it the
	// oldest connection that has not yet sent its first request is closed
	// to make room (an agent sends its request as soon as TLS is up, so
	// such a connection is an attacker's or a stuck one); when there is
	// none, the new connection is closed at once and the agent retries
	// later.
	MaxConns int
	// MaxConnsPerAddr bounds the connections from one client address (an
	// IPv6 /64 counts as one), on each transport (default 512; negative:
	// no bound). A site whose agents share one NAT address needs one per
	// agent connected at once.
	MaxConnsPerAddr int
	// MaxHandshakes bounds the handshakes in progress: past it new QUIC
	// connections are refused at once, and TCP ones wait for a free slot
	// within StartTimeout (default 64; negative: no bound).
	MaxHandshakes int
	// MaxHandshakesPerAddr bounds the handshakes in progress from one
	// client address, on each transport (default half of MaxHandshakes, at
	// least 1; negative: no bound), so that one address cannot hold every
	// MaxHandshakes slot. Past it a QUIC connection is refused and the
	// agent retries after a jittered wait; a TCP one waits its turn within
	// StartTimeout.
	MaxHandshakesPerAddr int
	// RetryAbove (QUIC) is the number of handshakes in progress past which
	// a new connection must first prove its address with a QUIC Retry (one
	// more round trip) unless it holds a token from an earlier connection
	// (default a quarter of MaxHandshakes; negative: never). A flood of
	// Initial packets from spoofed addresses then gets Retry packets and
	// holds at most RetryAbove handshake slots.
	RetryAbove int
	// StartTimeout (TCP) bounds how long a new connection may take to
	// start and finish TLS and send its first request, waiting for a
	// handshake slot included (default 5 s): connections that never start
	// TLS, or never send a request, are closed within it.
	StartTimeout time.Duration
	// MaxInFlight bounds concurrent requests on the listener; past it
	// requests are answered busy with a retry-after (default 2048).
	MaxInFlight int
	// IdleTimeout closes silent connections (default 60 s).
	IdleTimeout time.Duration
	// RequestTimeout bounds reading one request and writing its answer (default 30 s).
	RequestTimeout time.Duration
	// Allow0RTT (QUIC) accepts requests in 0-RTT data on resumed
	// connections; safe because every request is applied once per sequence
	// number.
	Allow0RTT bool
	// Authenticate tells, cheaply (a cached lookup), whether key belongs to
	// an enrolled node in good standing: nil, and its requests take one of
	// MaxInFlight and their bodies bytes of BodyBytes. Otherwise it returns
	// the answer to such a key (not enrolled, revoked), whose requests may
	// then carry at most protocol.MaxUnauthenticatedSize bytes (an
	// enrollment), read under UnauthenticatedBytes and handled under
	// MaxUnauthenticated, so that clients that never enrolled cannot
	// starve enrolled agents; or a retryable answer (busy) when it cannot
	// tell. Nil takes every key as known, for tests of the transport alone.
	Authenticate func(ctx context.Context, key ed25519.PublicKey) *protocol.Error
	// MaxUnauthenticated bounds the requests of unknown keys being handled
	// at once (default 32); a request waits for one at most a second.
	MaxUnauthenticated int
	// UnauthenticatedBytes bounds the bytes of unknown keys' requests
	// being read (default 2 MiB).
	UnauthenticatedBytes int64
	// BodyBytes bounds the bytes of known keys' requests being read and
	// handled (default 64 MiB; at least one request of the largest size).
	// A request that cannot get its bytes within a second is answered busy.
	BodyBytes int64
	// BodyTimeout is the grace for a request's body to arrive, from its
	// first byte, plus one second for every 64 KiB of it (default 5 s;
	// never past RequestTimeout): a client that trickles holds nothing for
	// long.
	BodyTimeout time.Duration
	// HandshakeTimeout bounds a silent QUIC handshake (default 10 s).
	// QUIC aborts a handshake that has not finished in twice this time, so
	// it also bounds how long a stuck handshake holds one of MaxHandshakes.
	// TCP has StartTimeout.
	HandshakeTimeout time.Duration
}

// busyRetryAfter is the retry-after, in seconds, of a busy answer.
const busyRetryAfter = 2

// The smallest byte budgets, room for one request of the largest size: a
// buffer grows to one byte past it, to tell a request too large.
const (
	MinBodyBytes            = protocol.MaxRequestSize + 1
	MinUnauthenticatedBytes = protocol.MaxUnauthenticatedSize + 1
)

// withDefaults fills in the defaults and checks what has none.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxStreamsPerConn <= 0 {
		cfg.MaxStreamsPerConn = 8
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 1024
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 2048
	}
	if cfg.MaxConnsPerAddr == 0 {
		cfg.MaxConnsPerAddr = 512
	}
	if cfg.MaxHandshakes == 0 {
		cfg.MaxHandshakes = 64
	}
	if cfg.MaxHandshakesPerAddr == 0 {
		cfg.MaxHandshakesPerAddr = -1
		if cfg.MaxHandshakes > 0 {
			cfg.MaxHandshakesPerAddr = max(cfg.MaxHandshakes/2, 1)
		}
	}
	if cfg.RetryAbove == 0 {
		cfg.RetryAbove = -1
		if cfg.MaxHandshakes > 0 {
			cfg.RetryAbove = max(cfg.MaxHandshakes/4, 1)
		}
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 5 * time.Second
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.MaxUnauthenticated <= 0 {
		cfg.MaxUnauthenticated = 32
	}
	if cfg.UnauthenticatedBytes <= 0 {
		cfg.UnauthenticatedBytes = 2 << 20
	}
	if cfg.BodyBytes <= 0 {
		cfg.BodyBytes = 64 << 20
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = 5 * time.Second
	}
	if cfg.BodyBytes < MinBodyBytes {
		return cfg, fmt.Errorf("listener: a byte budget for request bodies of %d bytes is below %d, one request of the largest size", cfg.BodyBytes, MinBodyBytes)
	}
	if cfg.UnauthenticatedBytes < MinUnauthenticatedBytes {
		return cfg, fmt.Errorf("listener: a byte budget for unauthenticated requests of %d bytes is below %d, one enrollment of the largest size", cfg.UnauthenticatedBytes, MinUnauthenticatedBytes)
	}
	if cfg.Refuse == nil {
		return cfg, errors.New("listener: Refuse is required")
	}
	if cfg.Handler == nil {
		return cfg, errors.New("listener: Handler is required")
	}
	if cfg.TLS == nil {
		return cfg, errors.New("listener: TLS is required")
	}
	return cfg, nil
}

// core is the request-handling both transports share: the handler, the
// bounds on requests in flight and on the bytes of their bodies, and the
// bookkeeping that lets a shutdown wait for the requests it did not
// refuse.
type core struct {
	cfg          Config
	log          *slog.Logger
	inflight     chan struct{}   // known keys' requests, up to MaxInFlight
	unauth       chan struct{}   // unknown keys' requests being handled, up to MaxUnauthenticated
	bodies       *byteBudget     // known keys' bodies, BodyBytes
	unauthBodies *byteBudget     // unknown keys' bodies, UnauthenticatedBytes
	work         context.Context // handlers' context, cancelled when a shutdown runs out of time
	stopWork     context.CancelFunc

	closeMu  sync.Mutex
	closing  bool
	requests sync.WaitGroup
}

func newCore(cfg Config) *core {
	c := &core{cfg: cfg, log: cfg.Logger, inflight: make(chan struct{}, cfg.MaxInFlight),
		unauth: make(chan struct{}, cfg.MaxUnauthenticated),
		bodies: newByteBudget(cfg.BodyBytes), unauthBodies: newByteBudget(cfg.UnauthenticatedBytes)}
	c.work, c.stopWork = context.WithCancel(context.Background())
	return c
}

// begin registers a request about to be read; it returns false once a
// shutdown has begun, and the request must then be dropped unread (the
// agent sends it again later, and it is applied once). Every true is
// matched by one end.
func (c *core) begin() bool {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closing {
		return false
	}
	c.requests.Add(1)
	return true
}

func (c *core) end() { c.requests.Done() }

// body is one request's body as a transport hands it to the core.
type body struct {
	r       io.Reader // to the body's end
	size    int       // the announced size (a TCP frame's), or -1 (QUIC)
	max     int       // bytes at most
	start   time.Time // when its first byte arrived
	setRead func(time.Time) error
	// skip throws the body away unread (QUIC) or read (TCP, to stay in
	// step) and reports whether the transport can carry another request.
	skip func() bool
	// abandon follows a body that could not be read whole.
	abandon func()
}

// fate says what a request left of its transport.
type fate int

const (
	consumed fate = iota // the body was read or thrown away: the transport carries on
	broken               // the body could not be read whole: nothing more is in step
	refused              // refused unread and too large to skip: answer, then close (TCP)
)

// answer looks the peer's key up, then reads one request and returns the
// handler's answer, or the refusal when it cannot be read. A known key's
// request takes one of MaxInFlight before it is read (past it, it is
// answered busy unread); an unknown key's is read under its own small
// bounds (answerUnknown).
func (c *core) answer(key ed25519.PublicKey, b *body) (protocol.Response, fate) {
	if c.cfg.Authenticate != nil {
		if refusal := c.cfg.Authenticate(c.work, key); refusal != nil {
			if refusal.Status.Retryable() { // the lookup failed: nothing is known of the key
				return c.skipped(b, protocol.ErrorResponse(0, refusal))
			}
			return c.answerUnknown(key, b, refusal)
		}
	}
	select {
	case c.inflight <- struct{}{}:
		defer func() { <-c.inflight }()
	default:
		return c.skipped(b, busy("too many requests in flight"))
	}
	raw, held, err := c.read(b, b.max, c.bodies)
	defer c.bodies.give(held)
	if err != nil {
		return c.unread(b, err)
	}
	return c.cfg.Handler.Handle(c.work, key, raw), consumed
}

// answerUnknown serves a request of a key that is not an enrolled node's:
// at most protocol.MaxUnauthenticatedSize bytes, read under the
// unauthenticated byte budget, then handled under one of
// MaxUnauthenticated, taken only once the body is whole so that clients
// that send slowly hold none. A larger request gets the key's refusal
// unread: it is no enrollment.
func (c *core) answerUnknown(key ed25519.PublicKey, b *body, refusal *protocol.Error) (protocol.Response, fate) {
	if b.size > protocol.MaxUnauthenticatedSize {
		return protocol.ErrorResponse(0, refusal), refused
	}
	raw, held, err := c.read(b, min(b.max, protocol.MaxUnauthenticatedSize), c.unauthBodies)
	defer c.unauthBodies.give(held)
	if errors.Is(err, protocol.ErrTooLarge) {
		b.abandon()
		return protocol.ErrorResponse(0, refusal), broken
	}
	if err != nil {
		return c.unread(b, err)
	}
	timer := time.NewTimer(budgetWait)
	defer timer.Stop()
	select {
	case c.unauth <- struct{}{}:
		defer func() { <-c.unauth }()
	case <-timer.C:
		return busy("too many enrollments in progress"), consumed
	}
	return c.cfg.Handler.Handle(c.work, key, raw), consumed
}

// read reads b, at most max bytes, under the body timeout, holding its
// buffer's bytes of bb; the caller gives held back once done with raw.
func (c *core) read(b *body, max int, bb *byteBudget) (raw []byte, held int64, err error) {
	p := &paced{r: b.r, setRead: b.setRead, start: b.start, grace: c.cfg.BodyTimeout,
		last: b.start.Add(c.cfg.RequestTimeout)}
	raw, err = protocol.ReadMessageGrow(p, max, func(capacity int) error {
		if !bb.take(int64(capacity)-held, budgetWait) {
			return errNoBudget
		}
		held = int64(capacity)
		return nil
	})
	if err == nil && b.size >= 0 && len(raw) < b.size {
		err = io.ErrUnexpectedEOF
	}
	return raw, held, err
}

// unread answers a request whose body could not be read.
func (c *core) unread(b *body, err error) (protocol.Response, fate) {
	if errors.Is(err, errNoBudget) {
		return c.skipped(b, busy("too many request bytes in flight"))
	}
	b.abandon()
	return c.cfg.Refuse(err), broken
}

// skipped throws b away and answers resp.
func (c *core) skipped(b *body, resp protocol.Response) (protocol.Response, fate) {
	if !b.skip() {
		return resp, broken
	}
	return resp, consumed
}

// busy is the answer of a request refused for want of room, with a retry-after.
func busy(why string) protocol.Response {
	return protocol.ErrorResponse(0, &protocol.Error{Status: protocol.StatusBusy,
		Message: "server busy: " + why, RetryAfter: busyRetryAfter})
}

// encode marshals a response; a failure is a bug, logged here.
func (c *core) encode(resp protocol.Response) ([]byte, error) {
	out, err := protocol.Marshal(resp)
	if err != nil {
		c.log.Error("encode response", "err", err)
	}
	return out, err
}

// drain refuses new requests and waits for those in flight to be
// answered. When ctx ends first, the handlers' context is cancelled, and
// drain still waits for them to return.
func (c *core) drain(ctx context.Context) {
	c.closeMu.Lock()
	c.closing = true
	c.closeMu.Unlock()
	done := make(chan struct{})
	go func() {
		c.requests.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		c.stopWork()
		<-done
	}
}

// Listen starts the QUIC listener and, unless noTCP, the TCP listener on
// the same IP address and port number, so that agents behind networks
// that drop UDP reach the server at the address they were given. With
// port 0, a port free for both is looked for; with a fixed port, a TCP
// port already taken is an error that says so.
func Listen(cfg Config, noTCP bool) (*QUIC, *TCP, error) {
	_, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen address %q: %w", cfg.Addr, err)
	}
	attempts := 1
	if port == "0" {
		attempts = 20
	}
	for i := 0; ; i++ {
		q, err := ListenQUIC(cfg)
		if err != nil || noTCP {
			return q, nil, err
		}
		tcfg := cfg
		tcfg.Addr = q.Addr().String()
		t, err := ListenTCP(tcfg)
		if err == nil {
			return q, t, nil
		}
		_ = q.Shutdown(context.Background()) // never served: returns at once
		if i+1 < attempts && errors.Is(err, syscall.EADDRINUSE) {
			continue // that UDP port's TCP twin is taken: pick another pair
		}
		if errors.Is(err, syscall.EADDRINUSE) {
			err = fmt.Errorf("%w: agents fall back to TLS over TCP on the QUIC port where UDP is blocked, so tally-server needs TCP %s too; free it, pick another port, or turn the TCP listener off", err, tcfg.Addr)
		}
		return nil, nil, err
	}
}
