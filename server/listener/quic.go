// Package listener accepts agents' connections and carries one request per
// stream to a Handler: QUIC on UDP, with mutual TLS 1.3 and ALPN tally/1.
// It bounds what each connection and each request may cost, sheds load with
// a retry-after when too many requests are in flight, and shuts down
// gracefully: in-flight requests finish, then connections close.
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
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
)

// Handler answers one request; see nodeapi.Handler.
type Handler interface {
	Handle(ctx context.Context, key ed25519.PublicKey, raw []byte) protocol.Response
}

// RefuseFunc builds the response for a request that could not be read.
type RefuseFunc func(err error) protocol.Response

// Stream and connection error codes sent on resets.
const (
	codeTooLarge quic.StreamErrorCode      = 1
	codeShutdown quic.ApplicationErrorCode = 0x10
	codeNoKey    quic.ApplicationErrorCode = 0x11
)

// Config configures a listener.
type Config struct {
	Addr    string // host:port; port 0 picks a free one
	TLS     *tls.Config
	Handler Handler
	Refuse  RefuseFunc
	Logger  *slog.Logger
	// StatelessResetKey and TokenKey are kept in the data folder so that
	// agents recover quickly across restarts (see TECH-NOTES).
	StatelessResetKey *quic.StatelessResetKey
	TokenKey          *quic.TokenGeneratorKey
	// MaxStreamsPerConn bounds concurrent requests on one connection (default 8).
	MaxStreamsPerConn int64
	// MaxInFlight bounds concurrent requests on the whole listener; past it
	// requests are answered busy with a retry-after (default 2048).
	MaxInFlight int
	// IdleTimeout closes silent connections (default 60 s).
	IdleTimeout time.Duration
	// RequestTimeout bounds reading one request and writing its answer (default 30 s).
	RequestTimeout time.Duration
	// Allow0RTT accepts requests in 0-RTT data on resumed connections; safe
	// because every request is applied once per sequence number.
	Allow0RTT bool
}

// QUIC is a running QUIC listener.
type QUIC struct {
	cfg       Config
	tr        *quic.Transport
	ln        *quic.EarlyListener
	log       *slog.Logger
	inflight  chan struct{}
	acceptCtx context.Context
	stopAcc   context.CancelFunc
	workCtx   context.Context
	stopWork  context.CancelFunc
	wg        sync.WaitGroup // in-flight requests
	connWG    sync.WaitGroup // connection goroutines
	mu        sync.Mutex
	conns     map[*quic.Conn]struct{}
}

// ListenQUIC binds the UDP socket and starts accepting.
func ListenQUIC(cfg Config) (*QUIC, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxStreamsPerConn <= 0 {
		cfg.MaxStreamsPerConn = 8
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 2048
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.Refuse == nil {
		return nil, errors.New("listener: Refuse is required")
	}
	udpAddr, err := net.ResolveUDPAddr("udp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", cfg.Addr, err)
	}
	pc, err := net.ListenUDP("udp", udpAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on UDP %s: %w", cfg.Addr, err)
	}
	tr := &quic.Transport{Conn: pc, StatelessResetKey: cfg.StatelessResetKey, TokenGeneratorKey: cfg.TokenKey}
	qc := &quic.Config{
		HandshakeIdleTimeout:           10 * time.Second,
		MaxIdleTimeout:                 cfg.IdleTimeout,
		MaxIncomingStreams:             cfg.MaxStreamsPerConn,
		MaxIncomingUniStreams:          -1,
		InitialStreamReceiveWindow:     64 << 10,
		MaxStreamReceiveWindow:         protocol.MaxRequestSize,
		InitialConnectionReceiveWindow: 128 << 10,
		MaxConnectionReceiveWindow:     2 * protocol.MaxRequestSize,
		Allow0RTT:                      cfg.Allow0RTT,
	}
	ln, err := tr.ListenEarly(cfg.TLS, qc)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("listen QUIC on %s: %w", cfg.Addr, err)
	}
	q := &QUIC{cfg: cfg, tr: tr, ln: ln, log: cfg.Logger, inflight: make(chan struct{}, cfg.MaxInFlight),
		conns: map[*quic.Conn]struct{}{}}
	q.acceptCtx, q.stopAcc = context.WithCancel(context.Background())
	q.workCtx, q.stopWork = context.WithCancel(context.Background())
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
	// An early listener hands over connections before the handshake ends;
	// the peer's certificate is known only once it has.
	select {
	case <-conn.HandshakeComplete():
	case <-conn.Context().Done():
		return
	}
	key, err := identity.PeerKey(conn.ConnectionState().TLS)
	if err != nil {
		conn.CloseWithError(codeNoKey, "a client certificate with an Ed25519 key is required")
		return
	}
	for {
		st, err := conn.AcceptStream(q.acceptCtx)
		if err != nil {
			return
		}
		q.wg.Add(1)
		go q.serveStream(key, st)
	}
}

func (q *QUIC) serveStream(key ed25519.PublicKey, st *quic.Stream) {
	defer q.wg.Done()
	deadline := time.Now().Add(q.cfg.RequestTimeout)
	st.SetDeadline(deadline)
	var resp protocol.Response
	select {
	case q.inflight <- struct{}{}:
		raw, err := protocol.ReadMessage(st, protocol.MaxRequestSize)
		if err != nil {
			st.CancelRead(codeTooLarge)
			resp = q.cfg.Refuse(err)
		} else {
			resp = q.cfg.Handler.Handle(q.workCtx, key, raw)
		}
		<-q.inflight
	default:
		st.CancelRead(0)
		resp = protocol.ErrorResponse(0, &protocol.Error{Status: protocol.StatusBusy,
			Message: "server busy: too many requests in flight", RetryAfter: 2})
	}
	out, err := protocol.Marshal(resp)
	if err != nil {
		q.log.Error("encode response", "err", err)
		st.CancelWrite(0)
		return
	}
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
	done := make(chan struct{})
	go func() {
		q.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		q.stopWork()
		<-done
	}
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
