// Package listener accepts agents' connections and carries their requests
// to a Handler: QUIC on UDP (one request per stream), and TLS 1.3 over TCP
// on the same port number for agents whose network drops UDP (one request
// per length-prefixed frame, sequentially on a connection). Both use the
// same TLS configuration (mutual TLS 1.3, ALPN tally/1), bound what each
// connection and each request may cost, shed load with a retry-after when
// too many requests are in flight, and shut down gracefully: in-flight
// requests finish, then connections close.
package listener

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
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
	// HandshakeTimeout bounds a silent QUIC handshake (default 10 s).
	// QUIC aborts a handshake that has not finished in twice this time, so
	// it also bounds how long a stuck handshake holds one of MaxHandshakes.
	// TCP has StartTimeout.
	HandshakeTimeout time.Duration
}

// busyRetryAfter is the retry-after, in seconds, of a busy answer.
const busyRetryAfter = 2

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
// bound on requests in flight, and the bookkeeping that lets a shutdown
// wait for the requests it did not refuse.
type core struct {
	cfg      Config
	log      *slog.Logger
	inflight chan struct{}
	work     context.Context // handlers' context, cancelled when a shutdown runs out of time
	stopWork context.CancelFunc

	closeMu  sync.Mutex
	closing  bool
	requests sync.WaitGroup
}

func newCore(cfg Config) *core {
	c := &core{cfg: cfg, log: cfg.Logger, inflight: make(chan struct{}, cfg.MaxInFlight)}
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

// answer reads one request with read and returns the handler's answer, or
// the refusal when read fails. When MaxInFlight requests are already in
// hand it does not read: it calls skip, which must leave the transport
// ready for the next request, and answers busy with a retry-after.
func (c *core) answer(key ed25519.PublicKey, read func() ([]byte, error), skip func()) protocol.Response {
	select {
	case c.inflight <- struct{}{}:
		defer func() { <-c.inflight }()
		raw, err := read()
		if err != nil {
			return c.cfg.Refuse(err)
		}
		return c.cfg.Handler.Handle(c.work, key, raw)
	default:
		skip()
		return protocol.ErrorResponse(0, &protocol.Error{Status: protocol.StatusBusy,
			Message: "server busy: too many requests in flight", RetryAfter: busyRetryAfter})
	}
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
