package alerting

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/store"
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body
// under the webhook's secret.
const SignatureHeader = "Tally-Signature"

// Sign returns the signature header's value for body.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header's value, in constant time.
func Verify(secret string, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

// Backoff is the wait before attempt n+1 after n failed ones: base
// doubled at each failure, at most an hour.
func Backoff(base time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// Store is what the notifier needs.
type Store interface {
	PositionSnapshot(ctx context.Context) (positions.Snapshot, error)
	// RaiseAlerts records which of the conditions are new (and queues a
	// delivery of each to every webhook), forgets those that ended, and
	// returns the new ones, in one transaction.
	RaiseAlerts(ctx context.Context, conds []store.AlertCondition) ([]store.AlertCondition, error)
	DueDeliveries(ctx context.Context, now time.Time, limit int) ([]store.AlertDelivery, error)
	RecordAttempt(ctx context.Context, id int64, a store.AlertAttempt) error
	AlertFacts(ctx context.Context, discardsSince time.Time) (store.AlertFacts, error)
}

// Config configures a Notifier.
type Config struct {
	Store Store
	Clock clock.Clock
	// Zone is the server's time zone: "today" is the day there.
	Zone *time.Location
	HTTP *http.Client
	// Every is how often the conditions are evaluated (default 1 min);
	// Poll how often due deliveries are looked for (default 1 s).
	Every, Poll time.Duration
	// Backoff is the first retry's wait (default 10 s); MaxAttempts
	// the attempts before a delivery is given up (default 12).
	Backoff     time.Duration
	MaxAttempts int
	Windows     []int
	// DiscardWindow is how long without a discard ends a product's
	// discards condition (default DefaultDiscardWindow).
	DiscardWindow time.Duration
	Logger        *slog.Logger
}

// Notifier evaluates conditions and delivers their alerts.
type Notifier struct {
	cfg    Config
	kick   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start starts the notifier's loops.
func Start(cfg Config) *Notifier {
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.Zone == nil {
		cfg.Zone = time.UTC
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 10 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 12
	}
	if cfg.Windows == nil {
		cfg.Windows = DefaultWindows
	}
	if cfg.DiscardWindow <= 0 {
		cfg.DiscardWindow = DefaultDiscardWindow
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Notifier{cfg: cfg, kick: make(chan struct{}, 1), cancel: cancel}
	n.wg.Add(1)
	go n.loop(ctx)
	return n
}

// Stop ends the loops; deliveries not made stay queued in the store.
func (n *Notifier) Stop() {
	n.cancel()
	n.wg.Wait()
}

// Kick evaluates the conditions now (after an admin change).
func (n *Notifier) Kick() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

func (n *Notifier) loop(ctx context.Context) {
	defer n.wg.Done()
	eval := time.NewTicker(n.cfg.Every)
	defer eval.Stop()
	poll := time.NewTicker(n.cfg.Poll)
	defer poll.Stop()
	n.evaluate(ctx)
	n.deliver(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-eval.C:
			n.evaluate(ctx)
		case <-n.kick:
			n.evaluate(ctx)
		case <-poll.C:
		}
		n.deliver(ctx)
	}
}

// Evaluate raises the conditions that hold now and returns the new ones.
func (n *Notifier) Evaluate(ctx context.Context) ([]store.AlertCondition, error) {
	snap, err := n.cfg.Store.PositionSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	now := n.cfg.Clock.Now()
	facts, err := n.cfg.Store.AlertFacts(ctx, now.Add(-n.cfg.DiscardWindow))
	if err != nil {
		return nil, err
	}
	today := positions.DateOf(now.In(n.cfg.Zone))
	var conds []store.AlertCondition
	for _, c := range append(Conditions(snap, today, n.cfg.Windows), FactConditions(facts)...) {
		conds = append(conds, store.AlertCondition{Key: c.Key, Kind: c.Kind, License: c.License, Product: c.Product, Message: c.Message, Action: c.Action})
	}
	return n.cfg.Store.RaiseAlerts(ctx, conds)
}

func (n *Notifier) evaluate(ctx context.Context) {
	raised, err := n.Evaluate(ctx)
	if err != nil {
		if ctx.Err() == nil {
			n.cfg.Logger.Error("alert conditions not evaluated", "err", err)
		}
		return
	}
	for _, c := range raised {
		n.cfg.Logger.Info("alert raised", "kind", c.Kind, "license", c.License, "message", c.Message)
	}
}

// deliver sends the deliveries that are due.
func (n *Notifier) deliver(ctx context.Context) {
	for ctx.Err() == nil {
		due, err := n.cfg.Store.DueDeliveries(ctx, n.cfg.Clock.Now(), 32)
		if err != nil {
			if ctx.Err() == nil {
				n.cfg.Logger.Error("alert deliveries not read", "err", err)
			}
			return
		}
		if len(due) == 0 {
			return
		}
		for _, d := range due {
			a := n.send(ctx, d)
			if ctx.Err() != nil {
				return // shutting down: the attempt did not end; it stays due
			}
			if err := n.cfg.Store.RecordAttempt(ctx, d.ID, a); err != nil {
				n.cfg.Logger.Error("alert delivery not recorded", "delivery", d.ID, "err", err)
				return
			}
		}
	}
}

// send makes one attempt of a delivery.
func (n *Notifier) send(ctx context.Context, d store.AlertDelivery) store.AlertAttempt {
	now := n.cfg.Clock.Now()
	a := store.AlertAttempt{At: now}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(SignatureHeader, Sign(d.Secret, d.Body))
		req.Header.Set("Tally-Delivery", fmt.Sprint(d.ID))
		var resp *http.Response
		if resp, err = n.cfg.HTTP.Do(req); err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			a.Status = resp.StatusCode
			if resp.StatusCode >= 200 && resp.StatusCode < 300 {
				a.Delivered = true
				return a
			}
			err = fmt.Errorf("the receiver answered %s", resp.Status)
		}
	}
	a.Error = err.Error()
	if d.Attempts+1 >= n.cfg.MaxAttempts {
		a.GiveUp = true
	} else {
		// From the failure, not the start: a slow receiver is not tried
		// again sooner than the back-off after it answered.
		a.Next = n.cfg.Clock.Now().Add(Backoff(n.cfg.Backoff, d.Attempts+1))
	}
	return a
}
