// Package client is the agent's side of the wire: it dials the server with
// mutual TLS, pinning the server's fingerprint so that nothing is sent to
// any other server, keeps one connection open for later requests, and
// sends each request on it. It speaks QUIC (one request per stream) and,
// where UDP to the server gets no answer or the server keeps refusing QUIC
// handshakes, falls back to TLS 1.3 over TCP on the same port (one request
// per length-prefixed frame), trying QUIC again later.
package client

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
)

// Transports, as Config.Transport takes them and Client.Transport names them.
const (
	TransportAuto = "auto" // QUIC, falling back to TCP where UDP gets no answer
	TransportQUIC = "quic"
	TransportTCP  = "tcp"
)

// Config configures a client.
type Config struct {
	// Servers are the server's addresses, HOST:PORT, in order of
	// preference: replicas that share one identity, so one fingerprint is
	// pinned for all. Server, when Servers is empty, is a list of one.
	Servers     []string
	Server      string
	Fingerprint string // pinned server fingerprint
	Key         ed25519.PrivateKey
	Logger      *slog.Logger
	// DialTimeout bounds connecting (default 10 s); RequestTimeout bounds
	// one request once connected (default 60 s).
	DialTimeout    time.Duration
	RequestTimeout time.Duration
	// Transport is "auto" (the default when empty), "quic" or "tcp".
	Transport string
	// FallbackDelay is how long, in auto mode, a QUIC handshake may go
	// unanswered before TLS over TCP is tried alongside it (default 2 s;
	// at most half of DialTimeout). A QUIC dial that fails outright starts
	// TCP at once; a pin mismatch on either ends the dial.
	FallbackDelay time.Duration
	// RetryQUICAfter is how long, in auto mode, the client keeps to TCP
	// after falling back before it tries QUIC again (default 10 min).
	RetryQUICAfter time.Duration
	// RefusedFor is how long a connection refused by a busy server (one
	// shedding a storm of handshakes) is retried before the request fails
	// (default 60 s; each attempt bounded by DialTimeout). The caller's
	// context bounds it too.
	RefusedFor time.Duration
	// Prefer is the address that answered last (as an earlier run
	// recorded it): it is dialed first. PreferSince is when the client
	// moved to it from the first address.
	Prefer      string
	PreferSince time.Time
	// ReturnAfter is how long after moving off the first address a new
	// connection tries the addresses from the first again (default
	// 30 min), so that a fleet drifts back to the preferred server once
	// it is back, without leaving a working one at every request.
	ReturnAfter time.Duration
	// Clock times ReturnAfter (default: the system clock).
	Clock clock.Clock
}

// Client sends requests to a server, failing over between its addresses.
//
// The policy: a new connection dials the address that answered last,
// then the others in list order; a request whose server cannot be reached
// (the connection fails, the handshake times out, the connection dies
// before the answer) is sent again, the same bytes with the same sequence
// number, to the next address, so that a server that applied it answers
// with its first outcome and none applies it twice. A server that refuses
// handshakes because it is busy is up: it is waited for (RefusedFor)
// before the next address is tried. ReturnAfter the move off the first
// address, new connections start at the first again.
type Client struct {
	cfg   Config
	tls   *tls.Config
	qcfg  *quic.Config
	log   *slog.Logger
	peers []*peer // one per address, in the configured order

	transport atomic.Value // string: of the current or last connection

	mu        sync.Mutex
	cur       link // nil until connected
	curPeer   int  // index of cur's address
	pref      int  // index of the address that answered last
	prefSince time.Time
}

// peer is one address of the server, with what the client learned of the
// transports that reach it.
type peer struct {
	addr      string
	quicAgain time.Time // auto mode: dial TCP directly until then
	refusals  int       // QUIC handshakes refused in a row (see race)
}

// link is one connection to the server, over either transport.
type link interface {
	// roundTrip sends one encoded request and returns the raw answer.
	// Its errors are *TransportError.
	roundTrip(ctx context.Context, req []byte) ([]byte, error)
	alive() bool
	close(why string)
	transport() string
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
	addrs := cfg.Servers
	if len(addrs) == 0 {
		addrs = []string{cfg.Server}
	}
	var peers []*peer
	pref := 0
	for i, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("server address %q: want HOST:PORT", a)
		}
		for _, p := range peers {
			if strings.EqualFold(p.addr, a) {
				return nil, fmt.Errorf("server address %s is listed twice", a)
			}
		}
		if a == cfg.Prefer {
			pref = i
		}
		peers = append(peers, &peer{addr: a})
	}
	switch cfg.Transport {
	case "":
		cfg.Transport = TransportAuto
	case TransportAuto, TransportQUIC, TransportTCP:
	default:
		return nil, fmt.Errorf("transport %q: want auto, quic or tcp", cfg.Transport)
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
	if cfg.FallbackDelay <= 0 {
		cfg.FallbackDelay = 2 * time.Second
	}
	cfg.FallbackDelay = min(cfg.FallbackDelay, cfg.DialTimeout/2)
	if cfg.RetryQUICAfter <= 0 {
		cfg.RetryQUICAfter = 10 * time.Minute
	}
	if cfg.RefusedFor <= 0 {
		cfg.RefusedFor = 60 * time.Second
	}
	if cfg.ReturnAfter <= 0 {
		cfg.ReturnAfter = 30 * time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	cert, err := identity.SelfSigned(cfg.Key, "tally-agent "+identity.NodeID(cfg.Key.Public().(ed25519.PublicKey)))
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg: cfg,
		tls: identity.ClientTLS(cert, pin, protocol.ALPN),
		qcfg: &quic.Config{
			HandshakeIdleTimeout: cfg.DialTimeout,
			MaxIdleTimeout:       90 * time.Second,
			KeepAlivePeriod:      25 * time.Second,
			MaxIncomingStreams:   -1,
			// A connection carries a few small posts: probing for a path
			// MTU above 1,280 bytes costs each of them two large packets
			// and an acknowledgement of its own, while only a rare full
			// inventory would fill the larger packets (docs/PERFORMANCE.md).
			DisablePathMTUDiscovery: true,
			// The server's tokens (NEW_TOKEN) prove the agent's address
			// on its next connection, which then skips the Retry a server
			// under load asks of unproven addresses (a round trip).
			TokenStore: quic.NewLRUTokenStore(1, 4),
		},
		log:   cfg.Logger,
		peers: peers,
		pref:  pref,
	}
	if pref != 0 {
		c.prefSince = cfg.PreferSince
	}
	first := TransportQUIC
	if cfg.Transport == TransportTCP {
		first = TransportTCP
	}
	c.transport.Store(first)
	return c, nil
}

// Transport names the transport of the current or last connection, "quic"
// or "tcp" (before the first connection: the one that will be tried first),
// for status output.
func (c *Client) Transport() string { return c.transport.Load().(string) }

// Addresses returns the server's addresses, in the configured order.
func (c *Client) Addresses() []string {
	out := make([]string, len(c.peers))
	for i, p := range c.peers {
		out[i] = p.addr
	}
	return out
}

// Preferred returns the address that answered last, dialed first by the
// next connection, and since when the client has left the first address
// for it (zero while on the first), for the agent to remember.
func (c *Client) Preferred() (addr string, since time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peers[c.pref].addr, c.prefSince
}

// order lists the addresses, by index, in the order a new connection
// tries them: the one that answered last, then the others in list order;
// from the first again once ReturnAfter has passed since the move off it.
func (c *Client) order() []int {
	start := c.pref
	if start != 0 && c.cfg.Clock.Now().Sub(c.prefSince) >= c.cfg.ReturnAfter {
		start = 0
	}
	out := []int{start}
	for i := range c.peers {
		if i != start {
			out = append(out, i)
		}
	}
	return out
}

// connection returns the open connection, or makes one to the first
// address in order() that is not in skip (addresses a request already
// failed on) and can be reached; each address that cannot is added to
// skip. It returns the index of the connection's address.
func (c *Client) connection(ctx context.Context, skip map[int]bool) (link, int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil {
		if !skip[c.curPeer] && c.cur.alive() && !c.quicDue() {
			return c.cur, c.curPeer, nil
		}
		c.cur.close("")
		c.cur = nil
	}
	var errs []error
	var mismatch error
	for _, i := range c.order() {
		if skip[i] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		l, err := c.connectTo(ctx, i, nil)
		if err == nil {
			if len(errs) > 0 || mismatch != nil {
				c.log.Warn("server address unreachable; using the next", "server", c.peers[i].addr, "failed", errors.Join(append(errs, mismatch)...))
			}
			return l, i, nil
		}
		skip[i] = true
		if errors.Is(err, identity.ErrFingerprintMismatch) {
			mismatch = err
			continue
		}
		errs = append(errs, err)
	}
	// A key that does not match is what to tell about first: nothing
	// was sent, and it is a mistake to correct, not an outage to wait out.
	if mismatch != nil {
		return nil, 0, mismatch
	}
	if len(errs) == 0 {
		err := ctx.Err()
		if err == nil {
			err = errors.New("no address left to try")
		}
		return nil, 0, &TransportError{Op: "connect to " + strings.Join(c.Addresses(), ","), Err: err}
	}
	return nil, 0, joinUnreachable(errs)
}

// reconnect replaces the connection to address i with a new one, after a
// failure that calls for the same address again (see RoundTrip).
func (c *Client) reconnect(ctx context.Context, i int, refused error) (link, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil {
		c.cur.close("")
		c.cur = nil
	}
	return c.connectTo(ctx, i, refused)
}

// connectTo dials address i and makes the result the current connection.
// refused, when not nil, is a refusal the previous connection met (see
// RoundTrip): the new one is dialed after the wait a refused dial gets.
// Called with c.mu held.
func (c *Client) connectTo(ctx context.Context, i int, refused error) (link, error) {
	p := c.peers[i]
	dial := func() (link, error) {
		dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
		defer cancel()
		return c.dial(dctx, p)
	}
	var l link
	err := refused
	if err == nil {
		l, err = dial()
	}
	// The server sheds handshakes when a fleet connects at once: it is up
	// and answering, so come back after a growing, jittered wait, each
	// attempt with its own dial timeout, for at most RefusedFor. Once it
	// has refused this connection, an attempt it admitted but did not
	// finish within the dial timeout is the same storm (a busy server, not
	// an unreachable one) and is retried too.
	busy := Refused
	giveUp := time.Now().Add(c.cfg.RefusedFor)
	for wait := 100 * time.Millisecond; err != nil && busy(err) && ctx.Err() == nil && time.Now().Before(giveUp); wait = min(2*wait, 2*time.Second) {
		busy = storming
		t := time.NewTimer(time.Duration(float64(wait) * (0.5 + rand.Float64())))
		select {
		case <-t.C:
			// Refused before any cryptography: the session ticket the
			// TLS client deleted after the failed handshake is good.
			identity.RestoreSessions(c.tls)
			l, err = dial()
		case <-ctx.Done():
			t.Stop()
		}
	}
	if err != nil {
		if errors.Is(err, identity.ErrFingerprintMismatch) {
			return nil, fmt.Errorf("refusing to talk to %s: %w; nothing was sent (re-enroll with the right --fingerprint if the server's key really changed)", p.addr, identity.ErrFingerprintMismatch)
		}
		return nil, &TransportError{Op: "connect to " + p.addr, Err: err}
	}
	c.cur, c.curPeer = l, i
	c.transport.Store(l.transport())
	if i != c.pref {
		c.log.Info("now using server address", "server", p.addr, "was", c.peers[c.pref].addr)
		c.pref, c.prefSince = i, time.Time{}
		if i != 0 {
			c.prefSince = c.cfg.Clock.Now()
		}
	}
	return l, nil
}

// unreachable is every address failing: each failure, in the order tried.
type unreachable []error

func (u unreachable) Error() string {
	s := make([]string, len(u))
	for i, e := range u {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

func (u unreachable) Unwrap() []error { return u }

// joinUnreachable makes one *TransportError of the failures of several
// addresses; a single failure is returned as it is.
func joinUnreachable(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return &TransportError{Op: fmt.Sprintf("no address of the server answered (%d tried)", len(errs)), Err: unreachable(errs)}
}

// storming reports whether err, met by a dial after the server refused an
// earlier one for the same connection, is still the server shedding a
// storm: another refusal, or a handshake that timed out.
func storming(err error) bool {
	var idle *quic.IdleTimeoutError
	var hs *quic.HandshakeTimeoutError
	return Refused(err) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &idle) || errors.As(err, &hs)
}

// quicDue reports whether an open TCP connection should make way for a
// new attempt at QUIC, so that a network that lets UDP through again
// returns to it.
func (c *Client) quicDue() bool {
	return c.cfg.Transport == TransportAuto && c.cur.transport() == TransportTCP && !time.Now().Before(c.peers[c.curPeer].quicAgain)
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

// RoundTrip sends one encoded envelope and reads the answer, failing over
// to the server's next address when one cannot be reached (see Client).
// Tests use it to send hand-made (and malformed) requests.
func (c *Client) RoundTrip(ctx context.Context, seq uint64, req []byte) (protocol.Response, error) {
	skip := map[int]bool{}
	var failed []error
	for {
		l, i, err := c.connection(ctx, skip)
		if err != nil {
			if len(failed) > 0 && !errors.Is(err, identity.ErrFingerprintMismatch) {
				err = joinUnreachable(append(failed, err))
			}
			return protocol.Response{}, err
		}
		raw, l, err := c.exchange(ctx, l, i, req)
		var te *TransportError
		if err != nil && errors.As(err, &te) && ctx.Err() == nil && len(skip)+1 < len(c.peers) {
			// The same bytes, sequence number included, go to the next
			// address: a replica that applied them answers with the
			// first outcome.
			c.log.Warn("no answer from the server; sending the same request to its next address", "server", c.peers[i].addr, "seq", seq, "err", err)
			skip[i] = true
			failed = append(failed, err)
			c.drop(l)
			continue
		}
		if err != nil {
			if !l.alive() {
				c.drop(l)
			}
			return protocol.Response{}, err
		}
		var resp protocol.Response
		if err := protocol.Unmarshal(raw, &resp); err != nil {
			return protocol.Response{}, fmt.Errorf("malformed answer from server: %w", err)
		}
		if resp.Status == protocol.StatusTooLarge && l.transport() == TransportTCP {
			c.drop(l) // the server closes a TCP connection after an oversized request
		}
		if err := resp.Err(); err != nil {
			return resp, err
		}
		if resp.Seq != seq {
			return resp, fmt.Errorf("server answered sequence %d to request %d", resp.Seq, seq)
		}
		return resp, nil
	}
}

// exchange sends req on l, a connection to address i, and reads the raw
// answer; it returns the connection last used.
//
// It tries once more, on a new connection to the same address (the
// request is applied once whatever happens), if the server closed this
// one while it sat idle; and again while it refuses the handshake, busy,
// after a resumed session sent the request in 0-RTT (such a dial returns
// before the handshake ends): each new connection then waits as a
// refused dial does, for at most RefusedFor in all.
func (c *Client) exchange(ctx context.Context, l link, i int, req []byte) ([]byte, link, error) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	raw, err := l.roundTrip(rctx, req)
	cancel()
	giveUp := time.Now().Add(c.cfg.RefusedFor)
	for stale := errors.Is(err, ErrStaleConnection); stale || (Refused(err) && time.Now().Before(giveUp)); stale = false {
		var refused error
		if Refused(err) {
			refused = err
		}
		c.drop(l)
		next, cerr := c.reconnect(ctx, i, refused)
		if cerr != nil {
			return nil, l, cerr
		}
		l = next
		rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
		raw, err = l.roundTrip(rctx, req)
		cancel()
	}
	return raw, l, err
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

// drop forgets l, if it is still the current connection, and closes it.
func (c *Client) drop(l link) {
	c.mu.Lock()
	if c.cur == l {
		c.cur = nil
	}
	c.mu.Unlock()
	l.close("")
}

// Close closes the connection, if any.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil {
		c.cur.close("agent closing")
		c.cur = nil
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
