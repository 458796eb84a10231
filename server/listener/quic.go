package listener

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"sync"
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
	tr := &quic.Transport{Conn: pc, StatelessResetKey: cfg.StatelessResetKey, TokenGeneratorKey: cfg.TokenKey}
	qc := &quic.Config{
		HandshakeIdleTimeout:           handshakeTimeout,
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
	q := &QUIC{core: newCore(cfg), tr: tr, ln: ln, conns: map[*quic.Conn]struct{}{}}
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
		if !q.begin() {
			st.CancelRead(0)
			st.CancelWrite(0)
			return
		}
		go q.serveStream(key, st)
	}
}

func (q *QUIC) serveStream(key ed25519.PublicKey, st *quic.Stream) {
	defer q.end()
	st.SetDeadline(time.Now().Add(q.cfg.RequestTimeout))
	resp := q.answer(key, func() ([]byte, error) {
		raw, err := protocol.ReadMessage(st, protocol.MaxRequestSize)
		if err != nil {
			st.CancelRead(codeTooLarge)
		}
		return raw, err
	}, func() { st.CancelRead(0) })
	out, err := q.encode(resp)
	if err != nil {
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
