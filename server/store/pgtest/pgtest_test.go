package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var pg Shared

func TestMain(m *testing.M) { pg.Main(m) }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func show(t *testing.T, conn *pgx.Conn, setting string) string {
	t.Helper()
	var v string
	if err := conn.QueryRow(context.Background(), "SHOW "+setting).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDatabasesAreIsolated(t *testing.T) {
	c := pg.Cluster(t)
	a, b := connect(t, c.NewDatabase(t)), connect(t, c.NewDatabase(t))
	ctx := context.Background()
	if _, err := a.Exec(ctx, "CREATE TABLE seats (id int); INSERT INTO seats VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Exec(ctx, "SELECT * FROM seats"); err == nil {
		t.Fatal("a table made in one test database is visible in another")
	}
	var n int
	if err := a.QueryRow(ctx, "SELECT count(*) FROM seats").Scan(&n); err != nil || n != 1 {
		t.Fatalf("count = %d, %v", n, err)
	}
}

func TestClusterSettings(t *testing.T) {
	c := pg.Cluster(t)
	conn := connect(t, c.NewDatabase(t))
	for setting, want := range map[string]string{
		"listen_addresses":   "",
		"fsync":              "off",
		"synchronous_commit": "off",
		"full_page_writes":   "off",
		"max_connections":    "300",
		"server_encoding":    "UTF8",
		"lc_collate":         "C",
	} {
		if got := show(t, conn, setting); got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
	if v, _ := strconv.Atoi(show(t, conn, "server_version_num")); v >= 150000 && !c.fileCopy.Load() {
		t.Errorf("PostgreSQL %d: databases not made by copying files", v)
	}
	if !strings.Contains(c.URL("x"), "host=") {
		t.Errorf("URL %s does not name the socket's folder", c.URL("x"))
	}
}

// TestRunsUnprivileged checks that the postmaster runs as the postgres
// user (or nobody) when the tests run as root, and as us otherwise.
func TestRunsUnprivileged(t *testing.T) {
	c := pg.Cluster(t)
	c.mu.Lock()
	pid := c.cmd.Process.Pid
	c.mu.Unlock()
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var uid string
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "Uid:" {
			uid = f[2] // effective
		}
	}
	want := os.Geteuid()
	if want == 0 {
		if c.cred == nil || c.cred.Uid == 0 {
			t.Fatal("running as root but no unprivileged user chosen")
		}
		want = int(c.cred.Uid)
	}
	if uid != strconv.Itoa(want) {
		t.Fatalf("postmaster runs as uid %s, want %d", uid, want)
	}
	st, err := os.Stat(filepath.Join(c.dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	if owner := st.Sys().(*syscall.Stat_t).Uid; int(owner) != want {
		t.Fatalf("data folder owned by uid %d, want %d", owner, want)
	}
}

// TestStopsAtCleanup starts a cluster of its own in a subtest and checks
// that the subtest's end stopped it and removed its folder.
func TestStopsAtCleanup(t *testing.T) {
	var c *Cluster
	var url string
	t.Run("cluster", func(t *testing.T) {
		c = Start(t)
		url = c.NewDatabase(t)
		connect(t, url)
	})
	if c == nil {
		t.FailNow()
	}
	if c.Running() {
		t.Fatal("cluster still running after its test ended")
	}
	if _, err := os.Stat(c.dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("cluster folder %s left behind: %v", c.dir, err)
	}
	if conn, err := pgx.Connect(context.Background(), url); err == nil {
		conn.Close(context.Background())
		t.Fatal("connected to a cluster that should be stopped")
	}
}

// TestDurableKillRestart checks the reliability tests' tools: with
// durability on, a committed row survives a crash and restart; and, on
// the same cluster to start one fewer, the TCP and connection options.
func TestDurableKillRestart(t *testing.T) {
	c := Start(t, Durable(), TCP(), MaxConnections(20))
	url := c.NewDatabase(t)
	if !strings.Contains(url, "@127.0.0.1:") {
		t.Fatalf("URL %s is not on loopback", url)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if got := show(t, conn, "listen_addresses"); got != "127.0.0.1" {
		t.Errorf("listen_addresses = %q", got)
	}
	if got := show(t, conn, "max_connections"); got != "20" {
		t.Errorf("max_connections = %q", got)
	}
	if got := show(t, conn, "fsync"); got != "on" {
		t.Errorf("fsync = %s with Durable", got)
	}
	if c.fileCopy.Load() {
		t.Error("a durable cluster makes databases by copying files, which forces checkpoints")
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE acks (id int); INSERT INTO acks VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	if c.Running() {
		t.Fatal("running after Kill")
	}
	if err := conn.Ping(ctx); err == nil {
		t.Fatal("a session survived Kill")
	}
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	var id int
	if err := connect(t, url).QueryRow(ctx, "SELECT id FROM acks").Scan(&id); err != nil || id != 7 {
		t.Fatalf("after restart: id = %d, %v", id, err)
	}
}

func TestSharedIsOneCluster(t *testing.T) {
	first, second := pg.Cluster(t), pg.Cluster(t)
	if first != second {
		t.Fatal("Shared started two clusters")
	}
}

// recorder is a testing.TB that records how a helper ended the test.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	how    string
	reason string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.end("fatal", format, args...)
}
func (r *recorder) Skipf(format string, args ...any) {
	r.end("skip", format, args...)
}
func (r *recorder) end(how, format string, args ...any) {
	r.mu.Lock()
	r.how, r.reason = how, fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func TestNotInstalledFailsUnlessOptedOut(t *testing.T) {
	for _, tc := range []struct{ env, how string }{{"", "fatal"}, {"1", "skip"}} {
		t.Setenv(SkipEnv, tc.env)
		r := &recorder{}
		done := make(chan struct{})
		go func() { defer close(done); notInstalled(r, errNotInstalled) }()
		<-done
		if r.how != tc.how {
			t.Errorf("%s=%q: the test was ended by %q, want %q", SkipEnv, tc.env, r.how, tc.how)
		}
		if tc.how == "fatal" && !strings.Contains(r.reason, ".ci/run installs it") {
			t.Errorf("the failure does not say .ci/run installs PostgreSQL: %s", r.reason)
		}
	}
}

// TestTemplate checks that clusters are copied from one initdb kept per
// PostgreSQL and owner, and that a template another user could have
// written is not used.
func TestTemplate(t *testing.T) {
	c := pg.Cluster(t)
	first, err := c.template()
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.template()
	if err != nil || second != first {
		t.Fatalf("second template %s, %v; first %s", second, err, first)
	}
	uid := os.Geteuid()
	if c.cred != nil {
		uid = int(c.cred.Uid)
	}
	if !trusted(filepath.Dir(first), uid) {
		t.Fatal("the template made is not trusted")
	}
	if trusted(filepath.Dir(first), uid+1) {
		t.Fatal("a template of another user is trusted")
	}
	fake := t.TempDir()
	if err := os.MkdirAll(filepath.Join(fake, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fake, "data", "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !trusted(fake, os.Geteuid()) {
		t.Fatal("a sound folder is not trusted")
	}
	if err := os.Chmod(fake, 0o777); err != nil {
		t.Fatal(err)
	}
	if trusted(fake, os.Geteuid()) {
		t.Fatal("a world-writable template is trusted")
	}
}

// TestSweepLeftovers checks that a dead test binary's cluster folder is
// removed once old, and that a young one, one with a live postmaster and
// the template stay.
func TestSweepLeftovers(t *testing.T) {
	c := pg.Cluster(t)
	uid := os.Geteuid()
	mk := func(pid string) string {
		dir, err := os.MkdirTemp("", "pgtest-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
			t.Fatal(err)
		}
		if pid != "" {
			if err := os.WriteFile(filepath.Join(dir, "data", "postmaster.pid"), []byte(pid+"\n/x\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	dead, live, young := mk(""), mk(strconv.Itoa(os.Getpid())), mk("")
	now := time.Now().Add(2 * time.Hour)
	if err := os.Chtimes(young, now, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	sweepLeftovers(uid, now)
	for dir, want := range map[string]bool{dead: false, live: true, young: true, c.dir: true} {
		_, err := os.Stat(dir)
		if got := err == nil; got != want {
			t.Errorf("%s kept = %v, want %v", dir, got, want)
		}
	}
	if !c.Running() {
		t.Fatal("the sweep stopped a running cluster")
	}
}
