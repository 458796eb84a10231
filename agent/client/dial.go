package client

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tallyhq/tally/common/identity"
)

// dial connects by the configured transport. In auto mode it races QUIC
// against TCP, QUIC first ("happy eyeballs"): TCP starts when QUIC has had
// FallbackDelay without a single datagram back, or at once when QUIC fails
// outright. The first connection to complete its handshake with the
// pinned server wins and the other is abandoned; a pin mismatch on either
// ends the dial with nothing sent, since requests go out only on the winner.
// After a fallback, TCP is dialled directly until RetryQUICAfter has passed
// or TCP fails.
//
// A QUIC handshake the server refuses (busy) is not a reason to fall back
// at first: the server answered, and the caller retries after a jittered
// wait. After refusalsBeforeTCP refusals in a row, though, the server may
// be refusing because a flood of half-open handshakes holds its QUIC side,
// while its TCP side serves: TCP is then tried alongside QUIC, from the
// start of the dial, and the first to connect wins.
func (c *Client) dial(ctx context.Context, p *peer) (link, error) {
	switch {
	case c.cfg.Transport == TransportQUIC:
		return c.dialQUIC(ctx, p.addr, nil)
	case c.cfg.Transport == TransportTCP:
		return c.dialTCP(ctx, p.addr)
	case time.Now().Before(p.quicAgain):
		l, err := c.dialTCP(ctx, p.addr)
		if err == nil || errors.Is(err, identity.ErrFingerprintMismatch) || ctx.Err() != nil {
			return l, err
		}
		// TCP fails where it worked: the network changed; try both again.
		p.quicAgain = time.Time{}
	}
	return c.race(ctx, p)
}

type dialResult struct {
	l   link
	err error
	tcp bool
}

func (c *Client) race(ctx context.Context, p *peer) (link, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan dialResult, 2)
	start := func(dial func(context.Context) (link, error), tcp bool) {
		go func() {
			l, err := dial(ctx)
			results <- dialResult{l, err, tcp}
		}()
	}
	began := time.Now()
	heard := new(atomic.Bool)
	start(func(ctx context.Context) (link, error) { return c.dialQUIC(ctx, p.addr, heard) }, false)
	pending, tcpStarted := 1, false
	startTCP := func(why string) {
		c.log.Debug("trying TLS over TCP alongside QUIC", "server", p.addr, "why", why)
		start(func(ctx context.Context) (link, error) { return c.dialTCP(ctx, p.addr) }, true)
		pending++
		tcpStarted = true
	}
	why := "QUIC (UDP) to the server got no answer"
	if p.refusals >= refusalsBeforeTCP {
		why = "the server refused QUIC handshakes repeatedly (busy)"
		startTCP(why)
	}
	timer := time.NewTimer(c.cfg.FallbackDelay)
	defer timer.Stop()
	var quicErr, tcpErr error
	for pending > 0 {
		select {
		case <-timer.C:
			// Only silence means UDP is blocked: a server that answers,
			// however slowly, is better waited for than given a second
			// handshake to do.
			if !tcpStarted && !heard.Load() {
				startTCP("no answer over UDP")
			}
		case r := <-results:
			pending--
			if r.err == nil || errors.Is(r.err, identity.ErrFingerprintMismatch) {
				cancel()
				abandon(results, pending)
				if r.err != nil {
					return nil, r.err
				}
				c.won(p, r.l, time.Since(began), why)
				return r.l, nil
			}
			if r.tcp {
				tcpErr = r.err
			} else {
				quicErr = r.err
				if Refused(r.err) && !tcpStarted {
					// The server answered over UDP: it is busy, not
					// unreachable. Another transport would only hand it
					// another handshake to do, unless it keeps refusing.
					if p.refusals++; p.refusals < refusalsBeforeTCP {
						return nil, r.err
					}
					why = "the server refused QUIC handshakes repeatedly (busy)"
				}
			}
			if !tcpStarted && ctx.Err() == nil {
				startTCP("QUIC failed: " + r.err.Error())
			}
		}
	}
	if tcpErr == nil {
		return nil, quicErr
	}
	return nil, fmt.Errorf("QUIC: %w; TCP: %w", quicErr, tcpErr)
}

// abandon closes the connections that the n dials still running make.
func abandon(results <-chan dialResult, n int) {
	if n == 0 {
		return
	}
	go func() {
		for range n {
			if r := <-results; r.err == nil {
				r.l.close("")
			}
		}
	}()
}

// refusalsBeforeTCP is how many QUIC handshakes refused in a row make the
// client try TCP too.
const refusalsBeforeTCP = 3

// won records which transport a race chose, and why TCP when it did.
// Called with c.mu held.
func (c *Client) won(p *peer, l link, took time.Duration, why string) {
	prev := c.Transport()
	p.refusals = 0
	if l.transport() == TransportTCP {
		p.quicAgain = time.Now().Add(c.cfg.RetryQUICAfter)
		if prev != TransportTCP {
			c.log.Warn(why+": using TLS over TCP", "server", p.addr,
				"after", took.Round(time.Millisecond), "retry_quic_in", c.cfg.RetryQUICAfter)
		}
		return
	}
	p.quicAgain = time.Time{}
	if prev == TransportTCP {
		c.log.Info("back on QUIC", "server", p.addr)
	}
}

// Refused reports whether the server refused the connection because it is
// busy (too many handshakes at once): a reason to come back after a short,
// jittered wait, not to fall back to another transport.
func Refused(err error) bool {
	var te *quic.TransportError
	return errors.As(err, &te) && te.ErrorCode == quic.ConnectionRefused
}
