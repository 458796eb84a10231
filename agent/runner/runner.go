// Package runner is the agent's orchestrator, kept small on purpose: it
// collects, spools (durably, before anything is sent), drains the spool to
// the server in sequence order, and records what the server said. The work
// itself lives in collect, spool, client and state.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/agent/client"
	"github.com/tallyhq/tally/agent/collect"
	"github.com/tallyhq/tally/agent/collect/logins"
	"github.com/tallyhq/tally/agent/plugins"
	"github.com/tallyhq/tally/agent/runner/delta"
	"github.com/tallyhq/tally/agent/spool"
	"github.com/tallyhq/tally/agent/state"
	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/protocol"
)

// Config configures an Agent.
type Config struct {
	Dir     state.Dir
	Logger  *slog.Logger
	Clock   clock.Clock
	Version string
	Spool   spool.Options
	// MachineID overrides the enrollment's machine-id override when set.
	MachineID string
	// SoftwareRoot is the root of the system whose software is
	// inventoried (default "/"): another system's tree mounted here.
	SoftwareRoot string
	// Users says who uses the machine (default: the system's logins).
	Users logins.Source
	// OnSend, when set, is called after each request the agent sends from
	// its spool, with its size on the wire.
	OnSend func(Sent)
	// DialTimeout and RequestTimeout bound connecting to one address of
	// the server and one request on it (zero: the client's defaults); a
	// server that misses either is failed over from.
	DialTimeout, RequestTimeout time.Duration
}

// Sent is one request sent from the spool.
type Sent struct {
	Seq  uint64        `json:"seq"`
	Kind protocol.Kind `json:"kind"`
	// Bytes is the size of the encoded request envelope.
	Bytes int `json:"bytes"`
	// Form says how an inventory post carried its parts: "basic" or
	// "basic-hash", then "software-full N", "software-delta +A -R",
	// "software-probe" or nothing.
	Form string `json:"form,omitempty"`
}

// Agent is an enrolled agent.
type Agent struct {
	cfg        Config
	dir        state.Dir
	log        *slog.Logger
	clock      clock.Clock
	enr        state.Enrollment
	instanceID string
	spool      *spool.Spool
	client     *client.Client
	root       string

	mu         sync.Mutex
	instances  map[string]plugins.Plugin // running plug-ins by name, version and build date
	cyc        *cycle
	collectNow atomic.Bool // a task or an answer asks for a collection at once
	refresh    atomic.Bool // a task asks for the whole basic inventory
}

// Open loads the enrollment, the key and the spool. It fails with
// state.ErrNotEnrolled before the agent has enrolled.
func Open(cfg Config) (*Agent, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.SoftwareRoot == "" {
		cfg.SoftwareRoot = "/"
	}
	a := &Agent{cfg: cfg, dir: cfg.Dir, log: cfg.Logger, clock: cfg.Clock, root: cfg.SoftwareRoot, instances: map[string]plugins.Plugin{}}
	var err error
	if a.enr, err = cfg.Dir.Enrollment(); err != nil {
		return nil, err
	}
	if cfg.MachineID != "" {
		a.enr.MachineID = cfg.MachineID
	}
	key, _, err := cfg.Dir.Key()
	if err != nil {
		return nil, err
	}
	if a.instanceID, err = cfg.Dir.InstanceID(); err != nil {
		return nil, err
	}
	so := cfg.Spool
	so.Logger, so.Clock = cfg.Logger, cfg.Clock
	if a.spool, err = spool.Open(cfg.Dir.File(state.SpoolDir), so); err != nil {
		return nil, err
	}
	// The address that answered last run is dialed first (see client.Client).
	st, _ := cfg.Dir.LoadStatus()
	if a.client, err = client.New(client.Config{Servers: a.enr.Addresses(), Fingerprint: a.enr.Fingerprint, Key: key, Logger: cfg.Logger,
		Prefer: st.Server, PreferSince: st.ServerSince, Clock: cfg.Clock, DialTimeout: cfg.DialTimeout, RequestTimeout: cfg.RequestTimeout}); err != nil {
		return nil, err
	}
	return a, nil
}

// Close closes the connection to the server.
func (a *Agent) Close() error { return a.client.Close() }

// Enrollment returns what the agent knows of its enrollment.
func (a *Agent) Enrollment() state.Enrollment { return a.enr }

// Server returns the server address that answered last (the one dialed
// first), of the enrollment's one or several.
func (a *Agent) Server() string {
	addr, _ := a.client.Preferred()
	return addr
}

// Spool returns the outbox.
func (a *Agent) Spool() *spool.Spool { return a.spool }

// CollectBasic gathers the basic inventory, listing the installed plug-ins.
func (a *Agent) CollectBasic(ctx context.Context) (protocol.BasicInventory, []string) {
	return BasicOf(ctx, a.dir, collect.Options{
		InstanceID:   a.instanceID,
		AgentVersion: a.cfg.Version,
		MachineID:    a.enr.MachineID,
		Now:          a.clock.Now(),
		Users:        a.cfg.Users,
	})
}

// BasicOf gathers the basic inventory of this machine with the plug-ins
// installed in dir, so that an enrolled agent and 'tally-agent collect'
// (which needs no enrollment) report the same thing; a plug-in list that
// cannot be read is one more problem, not a failure.
func BasicOf(ctx context.Context, dir state.Dir, o collect.Options) (protocol.BasicInventory, []string) {
	installed, err := PluginsOf(dir)
	o.Plugins = installed
	b, problems := collect.Basic(ctx, o)
	if err != nil {
		problems = append(problems, "plug-ins: "+err.Error())
	}
	return b, problems
}

// Enqueue durably queues a request: it allocates the next sequence number
// and writes the record (fsynced) before returning.
func (a *Agent) Enqueue(kind protocol.Kind, class spool.Class, key string, body any) (uint64, error) {
	enc, err := protocol.Marshal(body)
	if err != nil {
		return 0, fmt.Errorf("encode %s: %w", kind, err)
	}
	var seq uint64
	err = a.dir.WithLock(func() error {
		seq, err = a.put(kind, class, key, enc)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("queue %s: %w", kind, err)
	}
	return seq, nil
}

// put allocates the next sequence number and spools the record under it;
// the caller holds the data folder's lock, so that no number is lost or
// used twice between the two writes.
func (a *Agent) put(kind protocol.Kind, class spool.Class, key string, body []byte) (uint64, error) {
	seq, err := a.dir.NextSeq()
	if err != nil {
		return 0, err
	}
	return seq, a.spool.Put(spool.Record{Seq: seq, Kind: kind, Class: class, Key: key, Created: a.clock.Now(), Body: body})
}

// QueueInventory starts a cycle: it collects the basic inventory (listing
// the installed plug-ins) and what the plug-ins add to it (the software
// set), and queues the whole snapshot. What is sent of it (deltas, a hash
// instead of an unchanged basic inventory) is decided when it is sent:
// see package delta.
func (a *Agent) QueueInventory(ctx context.Context) (uint64, protocol.BasicInventory, error) {
	c := a.newCycle()
	b, problems := a.CollectBasic(ctx)
	if err := ctx.Err(); err != nil {
		// Stopped mid-collection: a partial inventory is not worth queueing.
		return 0, b, err
	}
	req := protocol.InventoryRequest{Basic: b}
	for _, p := range b.Plugins {
		ctr, ok := a.instance(p).(plugins.Contributor)
		if !ok {
			continue
		}
		if err := ctr.Contribute(ctx, a.env(p, c), &req); err != nil {
			if ctx.Err() != nil {
				return 0, b, ctx.Err()
			}
			problems = append(problems, p.Name+": "+err.Error())
		}
	}
	for _, p := range problems {
		a.log.Warn("inventory part not collected", "problem", p)
	}
	if req.Software != nil && req.Software.Full {
		delta.Normalize(req.Software)
	}
	seq, err := a.Enqueue(protocol.KindInventory, spool.Snapshot, "inventory", &req)
	return seq, b, err
}

// FlushResult tells what a flush did.
type FlushResult struct {
	Sent       int               `json:"sent"`
	Repeats    int               `json:"repeats"` // already applied by the server: answered from its record
	SetAside   []string          `json:"set_aside,omitempty"`
	Problems   []spool.Problem   `json:"problems,omitempty"`
	Pending    int               `json:"pending"`
	RetryAfter time.Duration     `json:"retry_after,omitempty"`
	Verdicts   map[string]string `json:"verdicts,omitempty"`
	// Answers holds the server's response to each record sent, by sequence
	// number, for callers waiting on one (deactivate, lease check-in).
	Answers map[uint64]protocol.Response `json:"-"`
	// Records are the requests sent, with their size on the wire.
	Records []Sent `json:"records,omitempty"`
	// Freed lists the products whose seats the goodbyes sent freed.
	Freed []string `json:"freed,omitempty"`
	// Repost: an answer asked for what a post left out (the whole basic
	// inventory or software set); a new post is worth making at once.
	Repost bool `json:"repost,omitempty"`
}

// add sums a later flush of the same cycle into r.
func (r *FlushResult) add(o FlushResult) {
	r.Sent += o.Sent
	r.Repeats += o.Repeats
	r.SetAside = append(r.SetAside, o.SetAside...)
	r.Problems = append(r.Problems, o.Problems...)
	r.Pending = o.Pending
	r.RetryAfter = max(r.RetryAfter, o.RetryAfter)
	r.Records = append(r.Records, o.Records...)
	r.Freed = append(r.Freed, o.Freed...)
	r.Repost = r.Repost || o.Repost
	for k, v := range o.Verdicts {
		if r.Verdicts == nil {
			r.Verdicts = map[string]string{}
		}
		r.Verdicts[k] = v
	}
	for k, v := range o.Answers {
		if r.Answers == nil {
			r.Answers = map[uint64]protocol.Response{}
		}
		r.Answers[k] = v
	}
}

// ErrRefused matches a server's refusal of this node (revoked, not
// enrolled; see RefusedError): retrying will not help until an admin or
// the user acts.
var ErrRefused = errors.New("server refuses this agent")

// Flush sends queued records in sequence order until the spool is empty or
// the server cannot be reached. A record leaves the spool only once the
// server has answered it.
func (a *Agent) Flush(ctx context.Context) (FlushResult, error) {
	var res FlushResult
	err := a.dir.WithNamedLock(state.SendLockFile, func() error {
		recs, problems, err := a.spool.Pending()
		res.Problems = problems
		if err != nil {
			return err
		}
		res.Pending = len(recs)
		ack, err := a.dir.LoadAck()
		if err != nil {
			return err
		}
		st, save := a.loadStatus()
		defer save()
		for _, r := range recs {
			if err := ctx.Err(); err != nil {
				return err
			}
			st.LastAttempt = a.clock.Now()
			body, plan, form := r.Body, (*delta.Pending)(nil), ""
			if r.Kind == protocol.KindInventory {
				body, plan, form = a.planInventory(r, &ack)
			}
			sent := Sent{Seq: r.Seq, Kind: r.Kind, Bytes: envelopeSize(r.Kind, r.Seq, body), Form: form}
			resp, err := a.client.Do(ctx, r.Kind, r.Seq, body)
			var pe *protocol.Error
			switch {
			case err == nil:
				if resp.Repeat {
					res.Repeats++
				}
				if res.Answers == nil {
					res.Answers = map[uint64]protocol.Response{}
				}
				res.Answers[r.Seq] = resp
				res.Records = append(res.Records, sent)
				if r.Kind == protocol.KindInventory {
					st.LastPostBytes = sent.Bytes
				}
				if a.cfg.OnSend != nil {
					a.cfg.OnSend(sent)
				}
				if a.applyResponse(st, &res, r, resp, &ack, plan) {
					// The state must be durable before the record that
					// advanced it leaves the spool: a crash in between
					// re-sends the record, the server answers it as a
					// repeat, and the same state results.
					if err := a.dir.SaveAck(ack); err != nil {
						return err
					}
				}
			case client.Retryable(err):
				st.LastError = err.Error()
				if errors.As(err, &pe) && pe.RetryAfter > 0 {
					res.RetryAfter = time.Duration(pe.RetryAfter) * time.Second
				}
				return err
			case refusedForGood(err):
				a.dropIfRefused(err)
				err = a.refusal(err)
				st.LastError, st.Refused = err.Error(), err.Error()
				return err
			case errors.As(err, &pe):
				// The server will never accept this record as it is
				// (malformed, too large, too old): keep it out of the way.
				a.log.Error("server rejected a queued record; it is set aside", "seq", r.Seq, "kind", r.Kind, "status", pe.Status, "err", err)
				res.SetAside = append(res.SetAside, fmt.Sprintf("%d (%s): %v", r.Seq, r.Kind, err))
			default:
				st.LastError = err.Error()
				return err
			}
			if err := a.spool.Remove(r.Seq); err != nil {
				return err
			}
			res.Sent++
			res.Pending--
			st.LastSuccess, st.LastError, st.Refused = a.clock.Now(), "", ""
		}
		return nil
	})
	return res, err
}

// loadStatus reads the agent's status for an exchange with the server,
// under the send lock; save writes it back with the transport used, even
// when the exchange failed, so that 'tally-agent status' shows the last
// attempt and its error.
func (a *Agent) loadStatus() (st *state.Status, save func()) {
	s, _ := a.dir.LoadStatus()
	return &s, func() {
		s.Transport = a.client.Transport()
		s.Server, s.ServerSince = a.client.Preferred()
		if err := a.dir.SaveStatus(s); err != nil {
			a.log.Warn("could not save status", "err", err)
		}
	}
}

// RunOptions schedule the agent.
type RunOptions struct {
	Interval time.Duration // between inventory posts
	Jitter   float64       // fraction of Interval added at random (0.1 = up to 10%)
	// MaxBackoff caps the wait between attempts to reach an unreachable server.
	MaxBackoff time.Duration
}

// wakeEvery bounds each sleep of Run, so that a machine that was suspended
// (monotonic clocks stop; the wall clock does not) posts soon after it
// wakes instead of when the remaining monotonic time has passed.
const wakeEvery = time.Minute

// Run posts inventory every interval and keeps the spool drained, backing
// off exponentially (with jitter, honouring retry-after) while the server
// is unreachable, until ctx ends. A flush cut short by ctx leaves its
// records queued: they are sent again, and applied once, next time.
func (a *Agent) Run(ctx context.Context, o RunOptions) error {
	if o.Interval <= 0 {
		o.Interval = time.Hour
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Minute
	}
	bo := backoff{max: o.MaxBackoff, rnd: rand.Float64}
	nextCollect := a.clock.Now() // post at once on start
	var nextFlush time.Time      // zero: no flush scheduled
	var beatRetry time.Time      // after a failed heartbeat, the next try
	for {
		due := nextCollect
		if !nextFlush.IsZero() && nextFlush.Before(due) {
			due = nextFlush
		}
		if beat := a.NextHeartbeat(); !beat.IsZero() {
			// Leases checked out on this machine are kept alive while the
			// agent runs; one that misses its heartbeats runs out. After a
			// failed heartbeat, wait a little before the next try.
			if beat.Before(beatRetry) {
				beat = beatRetry
			}
			if beat.Before(due) {
				due = beat
			}
		}
		if now := a.clock.Now(); !reached(now, due) {
			d := min(due.Sub(now), wakeEvery)
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			continue // look again: the wait may have been cut at wakeEvery
		}
		if ctx.Err() != nil {
			return nil
		}
		if beat := a.NextHeartbeat(); !beat.IsZero() && reached(a.clock.Now(), beat) && reached(a.clock.Now(), beatRetry) {
			if err := a.Heartbeat(ctx); err != nil && ctx.Err() == nil {
				beatRetry = a.clock.Now().Add(2 * time.Second)
				a.log.Warn("lease heartbeat failed; retrying", "err", err)
			}
		}
		now := a.clock.Now()
		flush := !nextFlush.IsZero() && reached(now, nextFlush)
		collected := false
		if reached(now, nextCollect) {
			if _, _, err := a.QueueInventory(ctx); err != nil {
				a.log.Error("could not queue inventory", "err", err)
			}
			nextCollect = now.Add(jittered(o.Interval, o.Jitter, rand.Float64))
			// Send it now, unless the server is being waited for: a new
			// post does not cut a back-off short (nor the server's
			// retry-after).
			flush = flush || nextFlush.IsZero()
			collected = true
		}
		if !flush {
			if collected {
				// The server is being waited for: the plug-ins queue
				// what they can without it.
				a.RunPlugins(ctx, false)
			}
			continue
		}
		nextFlush = time.Time{}
		res, err := a.Flush(ctx)
		if collected && ctx.Err() == nil {
			res, err = a.pluginPhase(ctx, res, err)
			// A collection's garbage (package lists, encoded posts) is
			// not needed for the next hour: give it back to the system
			// now rather than when the scavenger gets to it.
			debug.FreeOSMemory()
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			bo.reset()
			if res.Sent > 0 {
				a.log.Info("posted", "sent", res.Sent, "repeats", res.Repeats, "verdicts", res.Verdicts)
			}
			if collected {
				// Records an administrator revoked (a seat returned, an ID
				// deactivated) are removed at this contact.
				if _, err := a.SyncActivations(ctx); err != nil && ctx.Err() == nil {
					a.log.Warn("could not check activation records with the server", "err", err)
				}
			}
			if a.TakeCollectNow() || res.Repost {
				// A task asked for it, or the server asked for what a
				// post left out: collect again at once.
				nextCollect = a.clock.Now()
			}
		case errors.Is(err, ErrRefused):
			// Nothing to retry until an admin or the user acts: try again
			// with the next collection, without backing off.
			bo.reset()
			a.log.Error("refused; posts stay queued", "pending", res.Pending, "err", err)
		default:
			wait := max(bo.fail(), res.RetryAfter)
			nextFlush = a.clock.Now().Add(wait)
			a.log.Warn("could not post; posts stay queued", "pending", res.Pending, "retry_in", wait.Round(time.Second), "err", err)
		}
		if collected {
			// Between cycles the connection would only hold memory on the
			// server (a fleet's worth of idle connections); the next cycle
			// resumes the TLS session and sends its first request in 0-RTT.
			a.client.Close()
		}
	}
}

// reached reports whether deadline has come by either clock: the
// monotonic one (immune to the wall clock being set back) or the wall
// clock (which, unlike the monotonic clock, runs while the machine sleeps).
func reached(now, deadline time.Time) bool {
	return !now.Before(deadline) || !now.Round(0).Before(deadline.Round(0))
}

// jittered returns interval plus up to jitter×interval at random (rnd
// returns a number in [0, 1)), so that a fleet started together does not
// post in the same second. Jitter outside [0, 1] is clamped.
func jittered(interval time.Duration, jitter float64, rnd func() float64) time.Duration {
	jitter = min(max(jitter, 0), 1)
	return interval + time.Duration(rnd()*jitter*float64(interval))
}

// backoffBase is the first wait after a failure.
const backoffBase = time.Second

// backoff is the wait between attempts to reach an unreachable server: it
// doubles from backoffBase up to max. Each wait is drawn between 80% and
// 100% of that, so that a fleet cut off together does not come back in the
// same second, and never exceeds max.
type backoff struct {
	max  time.Duration
	rnd  func() float64 // in [0, 1)
	next time.Duration  // before jitter; 0 until the first failure
}

// fail returns the wait after one more failure.
func (b *backoff) fail() time.Duration {
	switch {
	case b.next <= 0:
		b.next = backoffBase
	case b.next > b.max/2:
		b.next = b.max
	default:
		b.next *= 2
	}
	b.next = min(b.next, b.max)
	return time.Duration(float64(b.next) * (0.8 + 0.2*b.rnd()))
}

// reset starts over after a success.
func (b *backoff) reset() { b.next = 0 }
