package leader

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tallyhq/tally/server/store/pgtest"
)

var pg pgtest.Shared

// helperEnv makes the test binary a replica that leads or waits on the
// URL it names, for the test that kills one with SIGKILL.
const helperEnv = "TALLY_LEADER_HELPER_URL"

func TestMain(m *testing.M) {
	if url := os.Getenv(helperEnv); url != "" {
		e, err := NewPostgres(url, fast)
		if err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		e.Run(context.Background(), func(ctx context.Context) {
			fmt.Println("leading")
			<-ctx.Done()
		})
		return
	}
	pg.Main(m)
}

// fast are timings for tests: the grace is Check + Timeout.
var fast = Config{Poll: 50 * time.Millisecond, Check: 100 * time.Millisecond, Timeout: time.Second}

// jobs counts the electors running jobs at once, the most ever seen, and
// who leads.
type jobs struct {
	mu      sync.Mutex
	running int
	most    int
	leader  string
	starts  map[string]int
	changed chan struct{} // closed and replaced at every change
}

func newJobs() *jobs { return &jobs{starts: map[string]int{}, changed: make(chan struct{})} }

func (j *jobs) run(name string) func(ctx context.Context) {
	return func(ctx context.Context) {
		j.mu.Lock()
		j.running++
		j.most = max(j.most, j.running)
		j.leader = name
		j.starts[name]++
		close(j.changed)
		j.changed = make(chan struct{})
		j.mu.Unlock()
		<-ctx.Done()
		j.mu.Lock()
		j.running--
		if j.leader == name {
			j.leader = ""
		}
		close(j.changed)
		j.changed = make(chan struct{})
		j.mu.Unlock()
	}
}

// await waits until cond holds on the counts, failing the test after a
// deadline generous for a loaded machine.
func (j *jobs) await(t *testing.T, what string, cond func(j *jobs) bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		j.mu.Lock()
		ok, ch := cond(j), j.changed
		j.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

func (j *jobs) check(t *testing.T) {
	t.Helper()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.most > 1 {
		t.Fatalf("%d electors ran the jobs at once", j.most)
	}
}

// start runs an elector on url until the test ends.
func start(t *testing.T, url, name string, j *jobs) (stop func()) {
	t.Helper()
	e, err := NewPostgres(url, fast)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.Run(ctx, j.run(name)) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// leaderPID is the backend holding the advisory lock in url's database.
func leaderPID(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	var pid int
	err := conn.QueryRow(context.Background(), `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&pid)
	if err != nil {
		t.Fatalf("find the leader's session: %v", err)
	}
	return pid
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestAlwaysLeads(t *testing.T) {
	j := newJobs()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Always{}.Run(ctx, j.run("alone")) }()
	j.await(t, "the lone server runs the jobs", func(j *jobs) bool { return j.running == 1 })
	cancel()
	<-done
	if j.running != 0 {
		t.Fatal("Run returned before the jobs did")
	}
}

func TestExactlyOneOfThreeLeads(t *testing.T) {
	url := pg.Cluster(t).NewDatabase(t)
	j := newJobs()
	for _, name := range []string{"a", "b", "c"} {
		start(t, url, name, j)
	}
	j.await(t, "one elector leads", func(j *jobs) bool { return j.running == 1 })
	// A few more rounds of the followers' polls must not start a second.
	conn := connect(t, url)
	pid := leaderPID(t, conn)
	for i := 0; i < 5; i++ {
		if _, err := conn.Exec(context.Background(), "SELECT pg_sleep(0.05)"); err != nil {
			t.Fatal(err)
		}
	}
	if got := leaderPID(t, conn); got != pid {
		t.Fatalf("the lock moved from session %d to %d with no failure", pid, got)
	}
	j.check(t)
}

// TestTerminatedSessionHandsOver ends the leader's session from the
// server, as a failover or an admin would: the leader stops its jobs and
// another session leads, never two at once.
func TestTerminatedSessionHandsOver(t *testing.T) {
	url := pg.Cluster(t).NewDatabase(t)
	j := newJobs()
	start(t, url, "a", j)
	start(t, url, "b", j)
	conn := connect(t, url)
	for round := 0; round < 3; round++ {
		j.await(t, "one elector leads", func(j *jobs) bool { return j.running == 1 })
		j.mu.Lock()
		was, starts := j.leader, j.starts[j.leader]
		j.mu.Unlock()
		pid := leaderPID(t, conn)
		if _, err := conn.Exec(context.Background(), "SELECT pg_terminate_backend($1)", pid); err != nil {
			t.Fatal(err)
		}
		j.await(t, "the leader whose session ended stops its jobs", func(j *jobs) bool { return j.leader != was || j.starts[was] > starts })
		j.await(t, "someone leads again", func(j *jobs) bool { return j.running == 1 })
		if got := leaderPID(t, conn); got == pid {
			t.Fatalf("session %d still holds the lock after it was terminated", pid)
		}
	}
	j.check(t)
}

func TestStoppedLeaderHandsOver(t *testing.T) {
	url := pg.Cluster(t).NewDatabase(t)
	j := newJobs()
	stopA := start(t, url, "a", j)
	j.await(t, "a leads", func(j *jobs) bool { return j.leader == "a" })
	start(t, url, "b", j)
	stopA()
	j.await(t, "b takes over", func(j *jobs) bool { return j.leader == "b" })
	j.check(t)
}

// TestKilledReplicaHandsOver kills a leading replica process with SIGKILL:
// the server ends its session when its socket closes, and the surviving
// replica leads within seconds.
func TestKilledReplicaHandsOver(t *testing.T) {
	url := pg.Cluster(t).NewDatabase(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+url)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		cmd.Wait()
		close(exited)
	}()
	select {
	case l := <-lines:
		if l != "leading" {
			t.Fatalf("replica said %q", l)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the replica process did not lead")
	}

	// The survivor has the default timings, so the handover measured is
	// the one a deployment gets.
	j := newJobs()
	survivor, err := NewPostgres(url, Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); survivor.Run(ctx, j.run("survivor")) }()
	t.Cleanup(func() { cancel(); <-done })
	conn := connect(t, url)
	helperPID := leaderPID(t, conn)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	j.await(t, "the survivor leads", func(j *jobs) bool { return j.leader == "survivor" })
	took := time.Since(killed)
	t.Logf("handover after SIGKILL: %v (poll %v, grace %v)", took.Round(time.Millisecond), survivor.cfg.Poll, survivor.Grace())
	if most := survivor.cfg.Poll + survivor.Grace() + 10*time.Second; took > most {
		t.Errorf("handover took %v, more than a poll, the grace and 10 s of slack (%v)", took, most)
	}
	if got := leaderPID(t, conn); got == helperPID {
		t.Fatal("the killed replica's session still holds the lock")
	}
}

func TestDatabaseDownLogsOnceAndStops(t *testing.T) {
	h := &warnings{}
	cfg := fast
	cfg.Logger = slog.New(h)
	e, err := NewPostgres("postgres://postgres@/x?host=/nonexistent", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var attempts atomic.Int32
	connect := e.connect
	e.connect = func(ctx context.Context) (*pgx.Conn, error) {
		attempts.Add(1)
		return connect(ctx)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Run(ctx, func(context.Context) { t.Error("led without a database") })
	}()
	deadline := time.Now().Add(30 * time.Second)
	for attempts.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if attempts.Load() < 4 {
		t.Fatalf("%d connection attempts", attempts.Load())
	}
	if n := h.count.Load(); n != 1 {
		t.Fatalf("%d warnings for one outage, want 1", n)
	}
}

type warnings struct{ count atomic.Int32 }

func (w *warnings) Enabled(context.Context, slog.Level) bool { return true }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		w.count.Add(1)
	}
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

func TestMalformedURL(t *testing.T) {
	for _, url := range []string{"postgres://%zz", "host=/tmp port=notaport", "postgres://x:99999999/db"} {
		if _, err := NewPostgres(url, Config{}); err == nil {
			t.Errorf("NewPostgres(%q) accepted", url)
		}
	}
}

func TestPoolElector(t *testing.T) {
	url := pg.Cluster(t).NewDatabase(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	e := NewPostgresPool(pool, fast)
	j := newJobs()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.Run(ctx, j.run("pooled")) }()
	j.await(t, "the pooled elector leads", func(j *jobs) bool { return j.running == 1 })
	if st := pool.Stat(); st.AcquiredConns() != 0 {
		t.Fatalf("the elector holds %d of the pool's connections", st.AcquiredConns())
	}
	cancel()
	<-done
	if j.running != 0 {
		t.Fatal("Run returned before the jobs did")
	}
	var held int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&held); err != nil || held != 0 {
		t.Fatalf("advisory locks after Run returned: %d, %v", held, err)
	}
}
