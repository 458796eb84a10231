package integration

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/loadtest/loadgen"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

// mountTmpfs mounts a tmpfs of size on dir and unmounts it in cleanup; it
// fails where the test may not mount (not root, not Linux, a container
// without the capability).
func mountTmpfs(t *testing.T, dir, size string) error {
	t.Helper()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("mount -t tmpfs: %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			_ = exec.Command("umount", "-l", dir).Run()
		}
	})
	return nil
}

// fillDisk writes a file into dir until its file system has no byte left
// and returns the function that removes it.
func fillDisk(t *testing.T, dir string) (free func()) {
	t.Helper()
	path := filepath.Join(dir, "chaos-filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("fill %s: %v", dir, err)
	}
	defer f.Close()
	for _, size := range []int{1 << 20, 4096, 1} {
		buf := make([]byte, size)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill %s: %v", dir, err)
				}
				break
			}
		}
	}
	return func() {
		if err := os.Remove(path); err != nil {
			t.Errorf("free %s: %v", dir, err)
		}
	}
}

// checkSeatsAndAudit checks, in the database file opened read-only, that
// no license holds more seats than it grants and that per product the
// audit log's seat.consumed minus seat.freed events are the seats held;
// and, with admin (a running server), that usage says the same.
func checkSeatsAndAudit(t *testing.T, admin *adminapi.Client, dbPath string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro&_query_only=1&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	query := func(q string, args []any, row func(*sql.Rows) error) {
		t.Helper()
		rows, err := db.Query(q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := row(rows); err != nil {
				t.Fatal(err)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	query(`SELECT l.id, l.seats, (SELECT COUNT(*) FROM seats s WHERE s.license_id = l.id) FROM licenses l`, nil, func(r *sql.Rows) error {
		var id string
		var seats, held int
		if err := r.Scan(&id, &seats, &held); err != nil {
			return err
		}
		if held > seats {
			t.Errorf("license %s: %d seats held of %d granted", id, held, seats)
		}
		return nil
	})
	held, audited := map[string]int{}, map[string]int{}
	query(`SELECT product, COUNT(*) FROM seats GROUP BY product`, nil, func(r *sql.Rows) error {
		var p string
		var n int
		err := r.Scan(&p, &n)
		held[p] = n
		return err
	})
	query(`SELECT product, SUM(CASE kind WHEN ? THEN 1 ELSE -1 END) FROM events WHERE kind IN (?, ?) GROUP BY product`,
		[]any{store.EventSeatConsumed, store.EventSeatConsumed, store.EventSeatFreed}, func(r *sql.Rows) error {
			var p string
			var n int
			err := r.Scan(&p, &n)
			audited[p] = n
			return err
		})
	for p := range merge(held, audited) {
		if held[p] != audited[p] {
			t.Errorf("product %s: %d seats held, the audit log's seat events say %d", p, held[p], audited[p])
		}
	}
	if admin == nil {
		return
	}
	us, err := admin.Usage(context.Background(), "")
	if err != nil {
		t.Fatalf("usage: %v", err)
	}
	for _, u := range us {
		if u.Consumed > u.Granted || u.Consumed != held[u.Product] {
			t.Errorf("usage of %s: %d consumed of %d granted; the database holds %d", u.Product, u.Consumed, u.Granted, held[u.Product])
		}
	}
}

func merge(a, b map[string]int) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// realAgent is a tally-agent data folder and the 'tally-agent run' daemons
// started on it, one after another.
type realAgent struct {
	data, root string
	procs      []*agentProc
	stops      int // SIGKILLs and SIGTERMs: each may cost one sequence number
}

func (a *realAgent) proc() *agentProc { return a.procs[len(a.procs)-1] }

// enrollAgent enrolls a new agent with the agent binary in data.
func (e *chaosEnv) enrollAgent(t *testing.T, data, machineID string) *realAgent {
	t.Helper()
	addrs, err := (datadir.Dir{Path: e.srv.data}).ReadAddresses()
	if err != nil {
		t.Fatal(err)
	}
	out, code := runBin(t, e.agentBin, "enroll", "--server", e.srv.quic, "--fingerprint", addrs.Fingerprint, "--secret", e.secret,
		"--machine-id", machineID, "--data", data)
	if code != 0 {
		t.Fatalf("enroll: exit %d\n%s", code, out)
	}
	return &realAgent{data: data, root: t.TempDir()}
}

// run starts a daemon that posts every second, the shortest interval it
// takes (no software: its --root is an empty folder).
func (e *chaosEnv) run(t *testing.T, a *realAgent) {
	t.Helper()
	a.procs = append(a.procs, startAgentDaemon(t, e.agentBin, "--data", a.data, "--root", a.root, "--interval", "1s", "--max-backoff", "1s"))
}

// logged counts the log lines of every daemon of a whose message is msg.
func (a *realAgent) logged(msg string) int {
	n := 0
	for _, p := range a.procs {
		n += strings.Count(p.stderr.String(), `"msg":"`+msg+`"`)
	}
	return n
}

// settle stops a's daemon, flushes its spool with 'run --once', and checks
// that nothing it queued was lost: no record dropped, set aside or
// refused, the spool empty, its posts applied in sequence order, and no
// sequence number missing but those a kill or a full disk may cost.
func (e *chaosEnv) settle(t *testing.T, a *realAgent, mayCost int) {
	t.Helper()
	a.proc().stop(t, syscall.SIGTERM)
	a.stops++
	out, code := runBin(t, e.agentBin, "run", "--once", "--data", a.data, "--root", a.root)
	if code != 0 {
		t.Fatalf("run --once after the faults: exit %d\n%s", code, out)
	}
	for _, msg := range []string{"spool record dropped", "damaged spool record set aside; the other records will be sent", "server rejected a queued record; it is set aside"} {
		if n := a.logged(msg); n > 0 {
			t.Errorf("agent %s: %d × %q", a.data, n, msg)
		}
	}
	if strings.Contains(out, "set aside") {
		t.Errorf("agent %s: run --once set a record aside\n%s", a.data, out)
	}
	if left := spoolSeqs(t, a.data); len(left) > 0 {
		t.Errorf("agent %s: still queued after run --once: %v", a.data, left)
	}
	if bad, _ := os.ReadDir(filepath.Join(a.data, "spool", "bad")); len(bad) > 0 {
		t.Errorf("agent %s: %d records set aside as damaged", a.data, len(bad))
	}
	rows := appliedByNode(t, e.srv.data, nodeOf(t, a.data))
	last := lastSeq(t, a.data)
	if len(rows) == 0 || rows[len(rows)-1].Seq != last {
		t.Fatalf("agent %s: last sequence number %d, applied %+v", a.data, last, rows)
	}
	for i := 1; i < len(rows); i++ {
		if rows[i].Seq <= rows[i-1].Seq {
			t.Errorf("agent %s: %d applied after %d", a.data, rows[i].Seq, rows[i-1].Seq)
		}
	}
	if missing := int(last-rows[0].Seq) + 1 - len(rows); missing > a.stops+mayCost {
		t.Errorf("agent %s: %d sequence numbers between %d and %d never applied, more than its %d stops and %d failed writes may cost",
			a.data, missing, rows[0].Seq, last, a.stops, mayCost)
	}
	e.fig.add(func(f *chaosFigures) { f.agentPostsApplied += len(rows) })
}

// agentKillRounds runs real agents beside a tally-load run and kills one
// of them with SIGKILL while it has a post queued (in flight, or about to
// be), then starts it again on the same data folder.
func (e *chaosEnv) agentKillRounds(t *testing.T) {
	agents := make([]*realAgent, e.plan.realAgents)
	for i := range agents {
		agents[i] = e.enrollAgent(t, filepath.Join(t.TempDir(), "agent"), fmt.Sprintf("chaos-agent-%d-%d", e.round, i))
		e.run(t, agents[i])
	}
	l := e.startLoad(t)
	for range e.plan.agentKills {
		a := e.queuedAgent(t, agents)
		a.proc().stop(t, syscall.SIGKILL)
		a.stops++
		e.fig.add(func(f *chaosFigures) { f.agentKills++ })
		e.run(t, a)
	}
	e.finish(t, l)
	for _, a := range agents {
		e.settle(t, a, 0)
	}
	checkSeatsAndAudit(t, e.srv.adminClient(t), e.srv.dbPath())
}

// queuedAgent waits for one of agents, started at a random one, to have a
// post in its spool: queued and not yet acknowledged, most often in
// flight. A post lives there for milliseconds, so the spools are polled
// every millisecond.
func (e *chaosEnv) queuedAgent(t *testing.T, agents []*realAgent) *realAgent {
	t.Helper()
	first := e.rng.IntN(len(agents))
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for i := range agents {
			if a := agents[(first+i)%len(agents)]; len(spoolSeqs(t, a.data)) > 0 {
				return a
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no agent queued a post within 20 s")
	return nil
}

// diskFullSpoolRounds fills the file system under a running agent's data
// folder (a tmpfs of its own), then frees it: the agent keeps running,
// damages nothing, and sends what it queued.
func (e *chaosEnv) diskFullSpoolRounds(t *testing.T) {
	for i := range e.plan.diskSpool {
		dir := t.TempDir()
		if err := mountTmpfs(t, dir, "4m"); err != nil {
			t.Skipf("cannot mount a tmpfs for the agent's spool (run as root on Linux): %v", err)
		}
		a := e.enrollAgent(t, filepath.Join(dir, "agent"), fmt.Sprintf("chaos-spool-%d-%d", e.round, i))
		e.run(t, a)
		waitFor(t, 10*time.Second, "the agent's first post", func() bool { return a.logged("posted") > 0 })
		free := fillDisk(t, dir)
		e.fig.add(func(f *chaosFigures) { f.diskFull++ })
		waitFor(t, 10*time.Second, "the agent to find its disk full", func() bool { return a.logged("could not queue inventory") > 0 })
		posted := a.logged("posted")
		free()
		waitFor(t, 10*time.Second, "a post after the disk was freed", func() bool { return a.logged("posted") > posted })
		select {
		case err := <-a.proc().done:
			t.Fatalf("the agent exited when its disk was full: %v\n%s", err, a.proc().stderr)
		default:
		}
		e.settle(t, a, a.logged("could not queue inventory"))
	}
}

// requests sums the server's answers to agents whose kind and status
// labels contain kind and status (empty: any); with refused, those whose
// status is not "ok".
func (s *chaosServer) requests(t *testing.T, kind string, refused bool) float64 {
	t.Helper()
	tok, err := (datadir.Dir{Path: s.data}).ReadToken()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for k, v := range scrapeMetricsAt(t, "http://"+s.admin, tok) {
		if strings.HasPrefix(k, "tally_requests_total{") && strings.Contains(k, `kind="`+kind) && strings.Contains(k, `status="ok"`) != refused {
			n += v
		}
	}
	return n
}

// diskFullServerRound fills the server's file system at a random moment of
// a load run until the server refuses a request, then frees it: the server
// stays up, and every post it acknowledged is stored.
func (e *chaosEnv) diskFullServerRound(t *testing.T) {
	l := e.startLoad(t)
	e.loadUnderway(t, l, "inventory")
	l.after(e.randomMoment() / 2) // in the first half: the load still runs when the disk fills
	before := e.srv.requests(t, "", true)
	free := fillDisk(t, e.srv.data)
	e.fig.add(func(f *chaosFigures) { f.diskFull++ })
	deadline := time.Now().Add(10 * time.Second)
	for e.srv.requests(t, "", true) == before && time.Now().Before(deadline) {
		if !l.after(20 * time.Millisecond) {
			break
		}
	}
	refused := e.srv.requests(t, "", true) - before
	running, healthy := e.srv.running(), e.srv.healthy()
	free()
	if !running || !healthy {
		t.Fatalf("the server on a full disk: running %v, admin API healthy %v\n%s", running, healthy, e.srv.stderr)
	}
	t.Logf("full disk under the server: %v requests refused", refused)
	e.fig.add(func(f *chaosFigures) { f.refusedWhenFull += int(refused) })
	e.finish(t, l)
	checkSeatsAndAudit(t, e.srv.adminClient(t), e.srv.dbPath())
}

// hostile is a client with a self-signed key that never enrolled: at a
// steady rate it opens QUIC connections with streams it never finishes,
// TLS-over-TCP connections that send nothing, and TCP connections that
// never start TLS, and holds them all until stopped. It is bounded in
// count (n of each) and in time (until stop).
type hostile struct {
	opened atomic.Int64
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

func startHostile(t *testing.T, addr, fingerprint string, n int, every time.Duration) *hostile {
	t.Helper()
	key, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := identity.SelfSigned(key, "hostile")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &hostile{stop: cancel}
	t.Cleanup(func() { cancel(); h.wg.Wait() })
	var mu sync.Mutex
	var closers []io.Closer
	hold := func(c io.Closer) {
		h.opened.Add(1)
		mu.Lock()
		closers = append(closers, c)
		mu.Unlock()
	}
	h.wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for range n {
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
			if ctx.Err() != nil {
				break
			}
			dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
			if c, err := quic.DialAddr(dctx, addr, identity.ClientTLS(cert, fingerprint, protocol.ALPN), nil); err == nil {
				hold(closerFunc(func() error { return c.CloseWithError(0, "") }))
				for range 4 {
					if s, err := c.OpenStream(); err == nil {
						_, _ = s.Write([]byte{0}) // one byte of a frame that never ends
					}
				}
			}
			dcancel()
			d := net.Dialer{Timeout: 2 * time.Second}
			if c, err := d.DialContext(ctx, "tcp", addr); err == nil {
				hold(c) // never starts TLS
			}
			if c, err := (&tls.Dialer{NetDialer: &d, Config: identity.ClientTLS(cert, fingerprint, protocol.ALPN)}).DialContext(ctx, "tcp", addr); err == nil {
				hold(c) // a handshake, then nothing
			}
		}
		<-ctx.Done()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range closers {
			c.Close()
		}
	})
	return h
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// hostileRound runs a load with hostile clients connecting at rate: nothing
// acknowledged is lost and the server stays up. (Whether real agents get
// through during the attack is the listener's tests' job.)
func (e *chaosEnv) hostileRound(t *testing.T) {
	addrs, err := (datadir.Dir{Path: e.srv.data}).ReadAddresses()
	if err != nil {
		t.Fatal(err)
	}
	l := e.startLoad(t)
	h := startHostile(t, e.srv.quic, addrs.Fingerprint, 48, 20*time.Millisecond)
	e.finish(t, l)
	h.stop()
	h.wg.Wait()
	if !e.srv.running() || !e.srv.healthy() {
		t.Fatalf("the server after the hostile clients: running %v\n%s", e.srv.running(), e.srv.stderr)
	}
	e.fig.add(func(f *chaosFigures) { f.hostileConns += int(h.opened.Load()) })
	checkSeatsAndAudit(t, e.srv.adminClient(t), e.srv.dbPath())
}

// damagedPageRound stops the server, zeroes the root page of its applied
// table, and starts it: it must refuse with a message about the database.
// The intact file is then put back and the server serves again.
func (e *chaosEnv) damagedPageRound(t *testing.T) {
	e.srv.stop(t)
	path := e.srv.dbPath()
	page, size := rootPage(t, path, "applied")
	backup := filepath.Join(t.TempDir(), "backup.db")
	copyFile(t, path, backup)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, size), (page-1)*size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	e.fig.add(func(f *chaosFigures) { f.damagedPages++ })
	e.srv.launch(t)
	waitFor(t, 30*time.Second, "the server to refuse or serve the damaged database", func() bool { return !e.srv.running() || e.srv.serving() })
	if e.srv.running() {
		e.srv.kill()
		t.Errorf("page %d (root of the applied table) zeroed: the server started and serves; want a refusal at start naming the database\n%s", page, e.srv.stderr)
	} else {
		err := <-e.srv.done
		e.srv.done <- err
		if err == nil || !strings.Contains(strings.ToLower(e.srv.stderr.String()), "database") {
			t.Errorf("page %d zeroed: the server exited with %v; want a non-zero exit and a message naming the database\n%s", page, err, e.srv.stderr)
		} else {
			e.fig.add(func(f *chaosFigures) { f.damagedRefused++ })
		}
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	copyFile(t, backup, path)
	e.srv.start(t)
	checkSeatsAndAudit(t, e.srv.adminClient(t), path)
}

// rootPage checkpoints the stopped server's database into its main file
// and returns the root page of table and the page size.
func rootPage(t *testing.T, path, table string) (page, size int64) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`PRAGMA page_size`).Scan(&size); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT rootpage FROM sqlite_schema WHERE type = 'table' AND name = ?`, table).Scan(&page); err != nil {
		t.Fatal(err)
	}
	return page, size
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// offsetClock is the system clock moved by an offset that a test changes
// while the server runs: an NTP step, forward or back.
type offsetClock struct{ offset atomic.Int64 }

func (c *offsetClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// clockJumpRounds runs the load against an in-process server (the same
// daemon code as tally-server; the built binary has no clock to move) and
// steps its clock two hours forward, then back, at random moments.
// tally-load's check that last_seen falls within each agent's last post
// assumes one clock for both and is left out; everything else holds.
func clockJumpRounds(t *testing.T, e *chaosEnv) {
	clk := &offsetClock{}
	srv := servertest.New(t, servertest.WithClock(clk))
	for i := range e.plan.clockJumps {
		cfg := loadgen.Config{Scenario: loadgen.Steady, Target: loadTarget(t, srv), Agents: e.plan.loadAgents, Duration: e.plan.loadFor,
			Interval: 100 * time.Millisecond, PackagesMin: 10, PackagesMax: 40, PoolSize: 300, Churn: 0.5, Seed: uint64(i + 1),
			Run: fmt.Sprintf("jump%d", i), Concurrency: 32, RequestTimeout: 3 * time.Second, AdminProbe: -1, RecordSeqs: true}
		done := make(chan struct{})
		var rep *loadgen.Report
		var err error
		go func() {
			defer close(done)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			rep, err = loadgen.Run(ctx, cfg)
		}()
		for _, step := range []time.Duration{2 * time.Hour, -2 * time.Hour} {
			select {
			case <-done:
			case <-time.After(e.randomMoment() / 2):
			}
			clk.offset.Add(int64(step))
			e.fig.add(func(f *chaosFigures) { f.clockJumps++ })
		}
		<-done
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range rep.Checks {
			if !c.OK && !strings.HasPrefix(c.Name, "last_seen") {
				t.Errorf("clock jump: %s: %s", c.Name, c.Detail)
			}
		}
		checkApplied(t, srv, rep)
		checkSeatsAndAudit(t, srv.Admin, srv.Dir().File(datadir.DatabaseFile))
		if mr, err := srv.Admin.Maintenance(context.Background()); err != nil || len(mr.Drift) > 0 {
			t.Errorf("maintenance after the clock jumps: %v, drift %v", err, mr.Drift)
		}
		e.fig.add(func(f *chaosFigures) { f.rounds++; f.postsAcked += rep.PostsAcked; f.postsStored += rep.PostsAcked })
	}
}
