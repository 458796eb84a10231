// Package client is the agent's side of the wire: it dials the server over
// QUIC with mutual TLS, pinning the server's fingerprint so that nothing is
// sent to any other server, keeps one connection open for later requests,
// and sends each request on its own stream.
package client

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

// Config configures a client.
type Config struct {
	Server      string // host:port
	Fingerprint string // pinned server fingerprint
	Key         ed25519.PrivateKey
	Logger      *slog.Logger
	// DialTimeout bounds connecting (default 10 s); RequestTimeout bounds
	// one request once connected (default 60 s).
	DialTimeout    time.Duration
	RequestTimeout time.Duration
}

// Client sends requests to one server.
type Client struct {
	cfg  Config
	tls  *tls.Config
	qcfg *quic.Config
	log  *slog.Logger

	mu   sync.Mutex
	conn *quic.Conn
}

// ErrPinMismatch is returned when the server is not the pinned one: nothing
// was sent.
var ErrPinMismatch = identity.ErrFingerprintMismatch

// New builds a client; it does not connect until the first request.
func New(cfg Config) (*Client, error) {
	pin, err := identity.ParseFingerprint(cfg.Fingerprint)
	if err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(cfg.Server); err != nil {
		return nil, fmt.Errorf("server address %q: want HOST:PORT", cfg.Server)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 60 * time.Second
	}
	cert, err := identity.SelfSigned(cfg.Key, "tally-agent "+identity.NodeID(cfg.Key.Public().(ed25519.PublicKey)))
	if err != nil {
		return nil, err
	}
	return &Client{
		cfg: cfg,
		tls: identity.ClientTLS(cert, pin, protocol.ALPN),
		qcfg: &quic.Config{
			HandshakeIdleTimeout: cfg.DialTimeout,
			MaxIdleTimeout:       90 * time.Second,
			KeepAlivePeriod:      25 * time.Second,
			MaxIncomingStreams:   -1,
		},
		log: cfg.Logger,
	}, nil
}

// Transport names the transport in use, for status output.
func (c *Client) Transport() string { return "quic" }

func (c *Client) connection(ctx context.Context) (*quic.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil && c.conn.Context().Err() == nil {
		return c.conn, nil
	}
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	conn, err := quic.DialAddr(dctx, c.cfg.Server, c.tls, c.qcfg)
	if err != nil {
		if errors.Is(err, identity.ErrFingerprintMismatch) {
			return nil, fmt.Errorf("refusing to talk to %s: %w; nothing was sent (re-enroll with the right --fingerprint if the server's key really changed)", c.cfg.Server, identity.ErrFingerprintMismatch)
		}
		return nil, &TransportError{Op: "connect to " + c.cfg.Server, Err: err}
	}
	c.conn = conn
	return conn, nil
}

// TransportError is a failure to reach the server or to get an answer: the
// request may or may not have been applied, and can be retried as is.
type TransportError struct {
	Op  string
	Err error
}

func (e *TransportError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

// Do sends one request whose body is already encoded and returns the
// server's response. A non-OK status is returned as a *protocol.Error
// alongside the response.
func (c *Client) Do(ctx context.Context, kind protocol.Kind, seq uint64, body []byte) (protocol.Response, error) {
	req, err := protocol.Marshal(protocol.Request{Major: protocol.Major, Rev: protocol.Revision, Kind: kind, Seq: seq, Body: body})
	if err != nil {
		return protocol.Response{}, fmt.Errorf("encode request: %w", err)
	}
	return c.RoundTrip(ctx, seq, req)
}

// RoundTrip sends one encoded envelope and reads the answer. Tests use it
// to send hand-made (and malformed) requests.
func (c *Client) RoundTrip(ctx context.Context, seq uint64, req []byte) (protocol.Response, error) {
	conn, err := c.connection(ctx)
	if err != nil {
		return protocol.Response{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	st, err := conn.OpenStreamSync(rctx)
	if err != nil {
		c.drop(conn)
		return protocol.Response{}, &TransportError{Op: "open stream", Err: err}
	}
	if dl, ok := rctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	stop := context.AfterFunc(rctx, func() { st.CancelRead(0); st.CancelWrite(0) })
	defer stop()
	_, werr := st.Write(req)
	if werr == nil {
		werr = st.Close()
	}
	// Even if the write failed (the server stopped reading an oversized
	// request), the server may have answered why.
	raw, rerr := protocol.ReadMessage(st, protocol.MaxResponseSize)
	if rerr != nil || len(raw) == 0 {
		st.CancelRead(0)
		if werr != nil {
			rerr = errors.Join(werr, rerr)
		}
		if rerr == nil {
			rerr = errors.New("empty answer")
		}
		c.dropIfDead(conn)
		return protocol.Response{}, &TransportError{Op: "request to " + c.cfg.Server, Err: rerr}
	}
	var resp protocol.Response
	if err := protocol.Unmarshal(raw, &resp); err != nil {
		return protocol.Response{}, fmt.Errorf("malformed answer from server: %w", err)
	}
	if err := resp.Err(); err != nil {
		return resp, err
	}
	if resp.Seq != seq {
		return resp, fmt.Errorf("server answered sequence %d to request %d", resp.Seq, seq)
	}
	return resp, nil
}

// Call encodes in, sends it, and decodes an OK response's body into out.
func (c *Client) Call(ctx context.Context, kind protocol.Kind, seq uint64, in, out any) (protocol.Response, error) {
	body, err := protocol.Marshal(in)
	if err != nil {
		return protocol.Response{}, fmt.Errorf("encode %s: %w", kind, err)
	}
	resp, err := c.Do(ctx, kind, seq, body)
	if err != nil {
		return resp, err
	}
	if out != nil && len(resp.Body) > 0 {
		if err := protocol.Unmarshal(resp.Body, out); err != nil {
			return resp, fmt.Errorf("malformed %s answer: %w", kind, err)
		}
	}
	return resp, nil
}

func (c *Client) drop(conn *quic.Conn) {
	c.mu.Lock()
	if c.conn == conn {
		c.conn = nil
	}
	c.mu.Unlock()
	conn.CloseWithError(0, "")
}

func (c *Client) dropIfDead(conn *quic.Conn) {
	if conn.Context().Err() != nil {
		c.drop(conn)
	}
}

// Close closes the connection, if any.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		err := c.conn.CloseWithError(0, "agent closing")
		c.conn = nil
		return err
	}
	return nil
}

// Retryable reports whether err may go away if the same request is sent
// again later (transport failures, a busy or failing server).
func Retryable(err error) bool {
	var te *TransportError
	if errors.As(err, &te) {
		return true
	}
	var pe *protocol.Error
	return errors.As(err, &pe) && pe.Status.Retryable()
}
