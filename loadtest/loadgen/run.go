// Package loadgen is Tally's load generator as a library: it simulates
// agents, each with its own key, machine identity, plug-ins and software
// set, posting over real QUIC (or, with Config.TCP, over TLS over TCP, the
// server's fallback transport) to a running server; measures throughput,
// latency, errors, verdicts, bytes and the server's CPU and memory; and
// checks through the admin API that what the server acknowledged is what
// it stored. tally-load (loadtest/cmd/tally-load) is its command line; the
// baseline measurements (a bare QUIC echo, the disk's durable commit rate,
// handshakes) are in baseline.go.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/adminapi"
)

// runner holds one run's state.
type runner struct {
	cfg    Config
	pool   *Pool
	agents []*agent
	links  linker // QUIC or TCP
	admin  *adminapi.Client
	phase  atomic.Pointer[phase]
	sem    chan struct{}
	lim    *limiter
	server *sampler
	self   *sampler
	rep    *Report
	// probeID is a computer of this run that the admin probe reads.
	probeID atomic.Int64
	prober  prober
}

// Run runs one scenario against cfg.Target and returns its report. The
// error is for runs that could not be carried out (no server, bad
// configuration); failed checks are in the report (Report.OK).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	admin, err := adminapi.NewClient(cfg.Target.AdminURL, cfg.Target.Token)
	if err != nil {
		return nil, err
	}
	if err := cfg.Target.complete(ctx, admin); err != nil {
		return nil, err
	}
	addrs := cfg.Target.addrs()
	if cfg.TCP {
		for _, a := range addrs {
			if err := checkTCP(ctx, a); err != nil {
				return nil, err
			}
		}
	}
	r := &runner{cfg: cfg, admin: admin, sem: make(chan struct{}, cfg.Concurrency), lim: newLimiter(cfg.Rate)}
	r.rep = &Report{Scenario: string(cfg.Scenario), Run: cfg.Run, Started: time.Now().UTC(), Server: strings.Join(addrs, ","),
		AdminURL: cfg.Target.AdminURL, Agents: cfg.Agents, Settings: settingsOf(&cfg), Machine: machineNow()}
	r.phase.Store(newPhase("setup"))
	if cfg.TCP {
		r.links = tcpLinker{addrs: addrs} // the server listens on TCP at the QUIC port number
	} else if r.links, err = newDialer(addrs, cfg.Sockets, cfg.DialTimeout); err != nil {
		return nil, err
	}
	if len(addrs) > 1 {
		r.rep.note(fmt.Sprintf("%d replicas: agent i starts on address i mod %d and fails over to the next when its server fails; the checks read the admin API at %s",
			len(addrs), len(addrs), cfg.Target.AdminURL))
	}
	defer r.links.close()
	r.server = startSampler(cfg.Target.ServerPID)
	defer r.server.close()
	r.self = startSampler(os.Getpid())
	defer r.self.close()
	r.prober = inProcessProber{admin}
	if len(cfg.ProbeCommand) > 0 && cfg.AdminProbe > 0 {
		if p, err := startProber(cfg.ProbeCommand, cfg.Target.AdminURL, cfg.Target.Token); err != nil {
			r.rep.note(err.Error() + ": the admin API is probed from inside the generator, whose own load then counts in its latency")
		} else {
			r.prober = p
			r.rep.note("admin API latency probed from a process of its own (" + filepath.Base(cfg.ProbeCommand[0]) + ")")
		}
	}
	defer r.prober.close()
	if RaceDetector {
		r.rep.note("tally-load was built with -race: its figures are not measurements")
	}
	if cfg.Target.ServerPID == 0 {
		r.rep.note("server CPU and memory are not reported: the server's PID is unknown or not on this host (pass --data or --server-pid)")
	} else if cfg.Target.ServerPID == os.Getpid() {
		r.rep.note("the server runs in this process: its CPU and memory include the load generator's")
	}

	start := time.Now()
	r.pool = NewPool(cfg.PoolSize, cfg.Seed)
	if err := r.makeAgents(ctx); err != nil {
		return nil, err
	}
	r.rep.SetupSeconds = round1(time.Since(start).Seconds())
	defer func() {
		for _, a := range r.agents {
			a.disconnect()
		}
	}()

	switch cfg.Scenario {
	case Enroll:
		r.enrollPhase(ctx)
		r.checkEnrolled(ctx)
	case Steady:
		if r.enrollPhase(ctx) {
			r.licenseInventory(ctx)
			r.burst(ctx, "prime", cfg.PrimeConcurrency, cfg.PrimeTimeout)
			r.steadyPhase(ctx)
			r.checkEnrolled(ctx)
			r.checkStored(ctx)
		}
	case Storm:
		if r.enrollPhase(ctx) {
			r.licenseInventory(ctx)
			if cfg.Prime {
				r.burst(ctx, "prime", cfg.PrimeConcurrency, cfg.PrimeTimeout)
			}
			if cfg.Reconnect {
				for _, a := range r.agents {
					a.disconnect()
				}
			}
			r.burst(ctx, "storm", cfg.Concurrency, cfg.Duration+cfg.DrainTimeout)
			r.checkEnrolled(ctx)
			r.checkStored(ctx)
		}
	case Race:
		if r.enrollPhase(ctx) {
			r.race(ctx)
		}
	}
	r.rep.Seconds = round1(time.Since(start).Seconds())
	r.rep.Machine.LoadEnd = loadAverage()
	r.rep.Agent = make([]AgentResult, len(r.agents))
	for i, a := range r.agents {
		r.rep.Agent[i] = AgentResult{NodeID: a.nodeID, ComputerID: a.computerID, Posted: a.posted, Acked: a.acked,
			Unacked: a.unacked, AckedSeqs: a.ackedSeqs, Verdicts: a.lastVerdict}
	}
	return r.rep, nil
}

// makeAgents derives every agent's key, certificate and software set, in
// parallel: 20,000 agents take a few seconds.
func (r *runner) makeAgents(ctx context.Context) error {
	r.agents = make([]*agent, r.cfg.Agents)
	var next atomic.Int64
	errs := make(chan error, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(r.agents) || ctx.Err() != nil {
					return
				}
				a, err := newAgent(&r.cfg, r.pool, i, r.cfg.Target.Fingerprint)
				if err != nil {
					errs <- err
					return
				}
				r.agents[i] = a
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

// measure runs fn as a named phase: it collects the phase's statistics,
// probes the admin API, prints progress, and appends the phase's report.
func (r *runner) measure(ctx context.Context, name string, fn func(ctx context.Context, ph *phase)) *PhaseReport {
	ph := newPhase(name)
	r.phase.Store(ph)
	srv0, self0, drops0 := r.server.mark(), r.self.mark(), udpRcvbufErrors()
	var wire0 uint64
	for _, a := range r.agents {
		wire0 += a.wireBytes()
	}
	bg, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if r.cfg.AdminProbe > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); r.probeAdmin(bg, ph) }()
	}
	if r.cfg.Progress != nil {
		wg.Add(1)
		go func() { defer wg.Done(); r.progress(bg, ph) }()
	}
	ph.start = time.Now()
	fn(ctx, ph)
	end := time.Now()
	stop()
	wg.Wait()
	if r.cfg.Progress != nil && r.cfg.ProgressTTY {
		fmt.Fprint(r.cfg.Progress, "\r\033[K")
	}
	var wire uint64
	for _, a := range r.agents {
		wire += a.wireBytes()
	}
	pr := phaseReport(ph, end)
	if acked := ph.totalAcked(); acked > 0 && wire >= wire0 {
		perReq := round1(float64(wire-wire0) / float64(acked))
		if r.cfg.TCP {
			pr.TCPBytesPerRequest = perReq
		} else {
			pr.QUICBytesPerRequest = perReq
		}
	}
	if drops := udpRcvbufErrors(); drops0 >= 0 && drops >= drops0 {
		pr.UDPDrops = drops - drops0
	}
	pr.Server = r.server.since(srv0)
	pr.Generator = r.self.since(self0)
	r.rep.Phases = append(r.rep.Phases, pr)
	return &r.rep.Phases[len(r.rep.Phases)-1]
}

// enrollPhase enrolls every agent; it reports whether all enrolled.
func (r *runner) enrollPhase(ctx context.Context) bool {
	failed := 0
	var mu sync.Mutex
	r.measure(ctx, "enroll", func(ctx context.Context, ph *phase) {
		r.forEach(ctx, r.cfg.EnrollConcurrency, func(ctx context.Context, a *agent) {
			if err := r.enroll(ctx, ph, a); err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		})
	})
	ok := failed == 0 && ctx.Err() == nil
	r.rep.check("every agent enrolled", ok, fmt.Sprintf("%d of %d enrolled", len(r.agents)-failed, len(r.agents)))
	return ok
}

func (r *runner) enroll(ctx context.Context, ph *phase, a *agent) error {
	body := protocol.EnrollRequest{Secret: r.cfg.Target.Secret, Hostname: a.name, Hints: a.hints, AgentVersion: "tally-load", OS: "linux"}
	resp, err := r.send(ctx, ph, a, kindEnroll, protocol.KindEnroll, time.Time{}, func() (any, error) { return &body, nil })
	if err != nil {
		return err
	}
	var out protocol.EnrollResponse
	if err := protocol.Unmarshal(resp.Body, &out); err != nil {
		ph.anomaly("enroll: malformed answer")
		return err
	}
	if out.NodeID != a.nodeID {
		ph.anomaly("enroll: node ID is not the key's")
	}
	if out.Existing || out.Reenrolled {
		ph.anomaly("enroll: matched an existing computer")
	}
	a.computerID, a.enrolled = out.ComputerID, true
	r.probeID.CompareAndSwap(0, out.ComputerID)
	return nil
}

// forEach runs fn for every agent on n workers.
func (r *runner) forEach(ctx context.Context, n int, fn func(context.Context, *agent)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, len(r.agents)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(r.agents) || ctx.Err() != nil {
					return
				}
				fn(ctx, r.agents[i])
			}
		}()
	}
	wg.Wait()
}

// send sends one request for agent a, retrying busy answers (after their
// retry-after) and transport failures with the same sequence number, as
// the real agent does. The latency recorded is the agent's: from the
// first attempt to the acknowledgement, retries included.
func (r *runner) send(ctx context.Context, ph *phase, a *agent, k postKind, kind protocol.Kind, notAfter time.Time, build func() (any, error)) (protocol.Response, error) {
	if err := r.lim.wait(ctx); err != nil {
		return protocol.Response{}, errNotSent
	}
	// The body is built once a slot of --concurrency is free, so that a
	// post that cannot leave before notAfter (the end of the steady phase)
	// is dropped unsent and changes nothing.
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return protocol.Response{}, errNotSent
	}
	if !notAfter.IsZero() && time.Now().After(notAfter) {
		<-r.sem
		return protocol.Response{}, errNotSent
	}
	body, err := build()
	var req []byte
	if err == nil {
		req, err = envelope(kind, a.seq+1, body)
	}
	if err != nil {
		<-r.sem
		return protocol.Response{}, err
	}
	a.seq++
	seq := a.seq
	if k != kindEnroll {
		a.posted++
	}
	// Latency starts when the request leaves, not while it waits for a
	// slot of --concurrency: that wait is the generator's.
	start := time.Now()
	failovers := 0
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			select {
			case r.sem <- struct{}{}:
			case <-ctx.Done():
				a.unacked++
				ph.unacked.Add(1)
				ph.fail("canceled")
				return protocol.Response{}, ctx.Err()
			}
		}
		ph.inflight.Add(1)
		ph.attempts.Add(1)
		resp, n, err := a.roundTrip(ctx, r, seq, req)
		ph.inflight.Add(-1)
		<-r.sem
		if err == nil {
			ph.ack(k, time.Since(start), len(req), n)
			if resp.Repeat {
				ph.repeats.Add(1)
				if attempt == 1 {
					ph.anomaly("repeat answer to a first attempt")
				}
			}
			if k != kindEnroll {
				a.acked++
				a.lastStart, a.lastAck = start, time.Now()
				if r.cfg.RecordSeqs {
					a.ackedSeqs = append(a.ackedSeqs, seq)
				}
			}
			return resp, nil
		}
		ph.fail(errorKind(err))
		if !retryable(err) || attempt >= r.cfg.MaxAttempts || ctx.Err() != nil {
			a.unacked++
			ph.unacked.Add(1)
			return protocol.Response{}, err
		}
		wait := backoff(err, attempt, a.rng)
		if r.failover(ph, a, err) {
			// The next replica is tried at once, unless every one has
			// failed this request since it was last tried on the first.
			if failovers++; failovers%len(r.cfg.Target.addrs()) != 0 {
				wait = time.Duration(float64(50*time.Millisecond) * (0.5 + a.rng.Float64()))
			}
		}
		if err := sleep(ctx, wait); err != nil {
			a.unacked++
			ph.unacked.Add(1)
			return protocol.Response{}, err
		}
	}
}

// failover moves agent a to the next of several server addresses after a
// transport failure (refused, handshake timeout, connection lost or
// silent), as an agent given a list of addresses does: the request is
// then sent again, with the same sequence number, to the next replica. A
// server's answer (busy included) keeps the agent where it is. It reports
// whether the agent moved.
func (r *runner) failover(ph *phase, a *agent, err error) bool {
	n := len(r.cfg.Target.addrs())
	var pe *protocol.Error
	if n < 2 || errors.As(err, &pe) {
		return false
	}
	a.disconnect()
	a.srv = (a.srv + 1) % n
	ph.failovers.Add(1)
	return true
}

// backoff is the wait before attempt+1: the server's retry-after when it
// gave one, else exponential from 100 ms to 6.4 s; with ±50% jitter so
// that agents refused together do not return together.
func backoff(err error, attempt int, rng *rand.Rand) time.Duration {
	d := 100 * time.Millisecond << min(attempt-1, 6)
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.RetryAfter > 0 {
		d = time.Duration(min(pe.RetryAfter, 10)) * time.Second
	}
	return time.Duration(float64(d) * (0.5 + rng.Float64()))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// post sends agent a's next inventory post: its full software set when the
// server holds none of it or asked for it, else a delta that carries a
// change with probability Churn. It updates the agent's software state
// from the answer. A post that cannot leave before notAfter (non-zero) is
// not sent.
func (r *runner) post(ctx context.Context, ph *phase, a *agent, notAfter time.Time) error {
	k := kindDelta
	if a.sw.full {
		k = kindFull
	}
	changes := 0
	base := a.sw.gen
	whole := k == kindFull || !a.basicStored
	if k == kindDelta {
		a.deltas++
		whole = whole || (r.cfg.BasicEvery > 0 && a.deltas%r.cfg.BasicEvery == 0)
	}
	resp, err := r.send(ctx, ph, a, k, protocol.KindInventory, notAfter, func() (any, error) {
		req := a.inventoryRequest(whole)
		if k == kindFull {
			req.Software = &protocol.SoftwareInventory{Full: true, Packages: a.materialize(r.pool),
				Count: uint32(len(a.sw.pkgs)), Hash: a.sw.hash.String()}
			return &req, nil
		}
		sw := &protocol.SoftwareInventory{Base: base}
		if a.rng.Float64() < r.cfg.Churn {
			sw.Added, sw.Removed = a.change(r.pool)
			changes = len(sw.Added) + len(sw.Removed)
		}
		sw.Count, sw.Hash = uint32(len(a.sw.pkgs)), a.sw.hash.String()
		req.Software = sw
		return &req, nil
	})
	if errors.Is(err, errNotSent) {
		ph.notSent.Add(1)
		return err
	}
	if err != nil {
		// Unknown whether it was applied: start again from a full set.
		a.sw.full, a.sw.stored, a.basicStored = true, false, false
		return err
	}
	var out protocol.InventoryResponse
	if err := protocol.Unmarshal(resp.Body, &out); err != nil {
		ph.anomaly("inventory: malformed answer")
		a.sw.full, a.sw.stored, a.basicStored = true, false, false
		return err
	}
	switch {
	case out.SendBasic && whole:
		ph.anomaly("inventory: basic inventory asked for right after it was sent")
		a.basicStored = false
	case out.SendBasic:
		// The server acknowledged the whole basic inventory of this hash
		// before and no longer holds it.
		ph.anomaly("inventory: basic inventory asked for again")
		a.basicStored = false
	case whole:
		a.basicStored = true
	}
	ph.addVerdicts(out.Verdicts)
	if a.lastVerdict == nil {
		a.lastVerdict = map[string]protocol.Verdict{}
	}
	for _, v := range out.Verdicts {
		a.lastVerdict[v.Product] = v.Verdict
	}
	ack := out.Software
	switch {
	case ack == nil:
		ph.anomaly("inventory: no software acknowledgement")
		a.sw.full, a.sw.stored = true, false
	case ack.SendFull:
		ph.anomaly("send-full asked")
		a.sw.full, a.sw.stored = true, false
	case !ack.Stored:
		// Discarded (no seat): the server keeps nothing, so the next
		// post carries the whole set again.
		a.sw.full, a.sw.stored = true, false
	default:
		switch {
		case k == kindFull && ack.Generation <= base:
			ph.anomaly("generation did not advance on a full post")
		case k == kindDelta && changes > 0 && ack.Generation != base+1:
			ph.anomaly("generation gap after a delta")
		case k == kindDelta && changes == 0 && ack.Generation != base:
			ph.anomaly("generation moved on an empty delta")
		}
		a.sw.gen, a.sw.full, a.sw.stored = ack.Generation, false, true
	}
	return nil
}

// licenseInventory gives the inventory product enough seats for every
// agent, so that software inventory is stored (and checked).
func (r *runner) licenseInventory(ctx context.Context) {
	if r.cfg.NoLicense {
		r.rep.note("no license minted (--no-license): software of agents without an inventory seat is discarded")
		return
	}
	seats := r.cfg.Seats
	if seats <= 0 {
		seats = len(r.agents)
	}
	msg, err := provideSeats(ctx, &r.cfg.Target, r.admin, "inventory", seats, r.cfg.LicenseFile)
	if err != nil {
		r.rep.note("licenses: " + err.Error())
		return
	}
	r.rep.note("licenses: " + msg)
}

// burst has every agent post once at the same moment (at most n in
// flight) and waits until every post is acknowledged or given up.
func (r *runner) burst(ctx context.Context, name string, n int, bound time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	r.measure(ctx, name, func(ctx context.Context, ph *phase) {
		r.forEach(ctx, n, func(ctx context.Context, a *agent) { _ = r.post(ctx, ph, a, time.Time{}) })
	})
}

// steadyPhase has every agent post every Interval (± Jitter) for Duration,
// starting at a random point of its first interval, as a fleet does.
func (r *runner) steadyPhase(ctx context.Context) {
	end := time.Now().Add(r.cfg.Duration)
	hard, cancel := context.WithDeadline(ctx, end.Add(r.cfg.DrainTimeout))
	defer cancel()
	r.measure(hard, "steady", func(ctx context.Context, ph *phase) {
		var wg sync.WaitGroup
		for _, a := range r.agents {
			wg.Add(1)
			go func() {
				defer wg.Done()
				iv := r.cfg.Interval
				next := time.Now().Add(time.Duration(a.rng.Float64() * float64(iv)))
				for {
					if !next.Before(end) || sleep(ctx, time.Until(next)) != nil {
						return
					}
					_ = r.post(ctx, ph, a, end)
					j := 1 + r.cfg.Jitter*(2*a.rng.Float64()-1)
					next = next.Add(time.Duration(float64(iv) * j))
					if now := time.Now(); next.Before(now) {
						next = now // behind schedule: post again at once
					}
				}
			}()
		}
		wg.Wait()
	})
}

// probeAdmin measures the admin API's latency while the phase runs: the
// unauthenticated health check and a computer read, alternately.
func (r *runner) probeAdmin(ctx context.Context, ph *phase) {
	t := time.NewTicker(r.cfg.AdminProbe)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		path := "/healthz"
		if i%2 == 1 {
			path = "/api/v1/enroll-info"
			if id := r.probeID.Load(); id > 0 {
				path = fmt.Sprintf("/api/v1/computers/%d", id)
			}
		}
		took, err := r.prober.probe(ctx, path)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			ph.adminErrs.Add(1)
			continue
		}
		ph.admin.Record(took)
	}
}
