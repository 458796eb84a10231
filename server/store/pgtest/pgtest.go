// Package pgtest starts real PostgreSQL clusters for tests: initdb in a
// temporary folder, a postgres listening only on a Unix socket in that
// folder, a fresh database per test, and the cluster stopped when the test
// (or, for a shared cluster, the test binary) ends.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// SkipEnv names the variable that, set to 1, makes the tests that need
// PostgreSQL skip when it is not installed instead of failing.
const SkipEnv = "TALLY_SKIP_POSTGRES"

// Superuser is the role the cluster is initialised with; URLs connect as it.
const Superuser = "postgres"

// maxSocketPath is the room sockaddr_un leaves for a socket's path
// (108 bytes with the trailing NUL).
const maxSocketPath = 107

type config struct {
	durable        bool
	tcp            bool
	maxConnections int
}

// Option changes how Start sets a cluster up.
type Option func(*config)

// Durable keeps fsync, synchronous_commit and full_page_writes on, for
// tests of what survives a crash; without it a cluster trades durability
// for speed.
func Durable() Option { return func(c *config) { c.durable = true } }

// TCP makes the cluster listen on a free 127.0.0.1 port instead of a Unix
// socket (chosen anyway when the socket's path would be too long).
func TCP() Option { return func(c *config) { c.tcp = true } }

// MaxConnections sets max_connections (300 unless set), enough for several
// replicas' pools on one cluster.
func MaxConnections(n int) Option { return func(c *config) { c.maxConnections = n } }

// Cluster is a running PostgreSQL cluster of its own.
type Cluster struct {
	cfg  config
	bin  string              // folder of initdb and postgres
	dir  string              // the cluster's folder: data/, the socket, postgres.log
	cred *syscall.Credential // whom postgres runs as when we are root
	host string              // socket folder, or 127.0.0.1
	port int
	dbs  atomic.Int64 // names fresh databases
	// fileCopy: CREATE DATABASE copies the template's files, faster than
	// through the WAL (PostgreSQL 15's default) when nothing is synced.
	fileCopy atomic.Bool

	mu     sync.Mutex
	cmd    *exec.Cmd     // the postmaster; nil when stopped
	exited chan struct{} // closed when cmd has exited
}

// Start initialises and starts a cluster for one test and stops it and
// removes its files when the test ends. It fails the test when PostgreSQL
// is not installed, unless TALLY_SKIP_POSTGRES=1 asks to skip.
func Start(tb testing.TB, opts ...Option) *Cluster {
	tb.Helper()
	c, err := start(opts)
	if errors.Is(err, errNotInstalled) {
		notInstalled(tb, err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	return c
}

func notInstalled(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv(SkipEnv) == "1" {
		tb.Skipf("%v; skipped because %s=1", err, SkipEnv)
	}
	tb.Fatalf("%v: .ci/run installs it (Debian package postgresql); set %s=1 to skip these tests instead", err, SkipEnv)
}

var errNotInstalled = errors.New("PostgreSQL is not installed (no initdb and postgres found via pg_config --bindir, /usr/lib/postgresql/*/bin or PATH)")

func start(opts []Option) (*Cluster, error) {
	cfg := config{maxConnections: 300}
	for _, o := range opts {
		o(&cfg)
	}
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	owner := os.Geteuid()
	if cred != nil {
		owner = int(cred.Uid)
	}
	sweepLeftovers(owner, time.Now())
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, bin: bin, dir: dir, cred: cred, host: dir, port: 5432}
	if err := c.init(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if cfg.tcp || len(filepath.Join(dir, ".s.PGSQL.5432")) > maxSocketPath {
		c.host = "127.0.0.1"
	}
	if err := c.launch(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

// binDir finds the folder holding initdb and postgres: pg_config's
// answer, else the newest /usr/lib/postgresql/N/bin (Debian keeps them off
// PATH), else PATH.
func binDir() (string, error) {
	has := func(d string) bool {
		for _, p := range []string{"initdb", "postgres"} {
			if st, err := os.Stat(filepath.Join(d, p)); err != nil || st.IsDir() {
				return false
			}
		}
		return true
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); has(d) {
			return d, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	return "", errNotInstalled
}

// version reads N from /usr/lib/postgresql/N/bin, so that 16 sorts after 9.
func version(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

// credential picks the unprivileged user initdb and postgres run as when
// the tests run as root, which both refuse.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
	}
	return nil, errors.New("pgtest: running as root and neither user postgres nor nobody exists to run PostgreSQL as")
}

func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "TZ=UTC"}
	// The kernel kills the postmaster if the test binary dies before its
	// cleanup runs (a panic, a timeout), and its backends follow it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGKILL}
	return cmd
}

func (c *Cluster) init() error {
	if err := c.chown(c.dir); err != nil {
		return err
	}
	if tmpl, err := c.template(); err == nil {
		return copyTree(tmpl, c.dataDir(), c.chown)
	}
	return c.initdb(c.dataDir())
}

// initdb makes a cluster's files in data, as every cluster here is made.
func (c *Cluster) initdb(data string) error {
	out, err := c.command("initdb", "--pgdata="+data, "--username="+Superuser, "--auth=trust",
		"--locale=C", "--encoding=UTF8", "--no-sync").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgtest: initdb in %s: %w\n%s", data, err, out)
	}
	return nil
}

// chown gives path to the user postgres runs as, when that is not us.
func (c *Cluster) chown(path string) error {
	if c.cred == nil {
		return nil
	}
	if err := os.Lchown(path, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
		return fmt.Errorf("pgtest: give %s to uid %d: %w", path, c.cred.Uid, err)
	}
	return nil
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }

// LogPath is the file postgres writes its log to, for a failing test to show.
func (c *Cluster) LogPath() string { return filepath.Join(c.dir, "postgres.log") }

// launch starts the postmaster and waits until it accepts connections; on
// TCP a taken port (another process raced us to it) is retried.
func (c *Cluster) launch() error {
	for attempt := 0; ; attempt++ {
		if c.host == "127.0.0.1" {
			port, err := freePort()
			if err != nil {
				return err
			}
			c.port = port
		}
		err := c.launchOnce()
		if err == nil || c.host != "127.0.0.1" || attempt == 2 {
			return err
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (c *Cluster) launchOnce() error {
	listen := ""
	if c.host == "127.0.0.1" {
		listen = "127.0.0.1"
	}
	args := []string{"-D", c.dataDir(), "-k", c.dir, "-p", strconv.Itoa(c.port),
		"-c", "listen_addresses=" + listen,
		"-c", "max_connections=" + strconv.Itoa(c.cfg.maxConnections),
		"-c", "unix_socket_permissions=0777"}
	if !c.cfg.durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	log, err := os.OpenFile(c.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := c.command("postgres", args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	if err := c.waitReady(exited); err != nil {
		cmd.Process.Kill()
		<-exited
		logs, _ := os.ReadFile(c.LogPath())
		return fmt.Errorf("pgtest: postgres did not start: %w\n%s", err, logs)
	}
	c.mu.Lock()
	c.cmd, c.exited = cmd, exited
	c.mu.Unlock()
	return nil
}

func (c *Cluster) waitReady(exited chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgconn.Connect(attempt, c.URL("postgres"))
		cancelAttempt()
		if err == nil {
			major, _ := strconv.Atoi(strings.SplitN(conn.ParameterStatus("server_version"), ".", 2)[0])
			c.fileCopy.Store(major >= 15 && !c.cfg.durable)
			return conn.Close(ctx)
		}
		select {
		case <-exited:
			return errors.New("postgres exited")
		case <-ctx.Done():
			return fmt.Errorf("no connection within a minute: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// URL is the connection URL of the database name on this cluster, in the
// form pgx accepts (the socket's folder as host= when on a Unix socket).
func (c *Cluster) URL(name string) string {
	u := url.URL{Scheme: "postgres", User: url.User(Superuser), Path: "/" + name}
	q := url.Values{"sslmode": {"disable"}}
	if c.host == "127.0.0.1" {
		u.Host = net.JoinHostPort(c.host, strconv.Itoa(c.port))
	} else {
		q.Set("host", c.host)
		q.Set("port", strconv.Itoa(c.port))
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// NewDatabase creates an empty database for this test and returns its
// URL; the database is dropped (its sessions ended) when the test ends.
func (c *Cluster) NewDatabase(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("test_%d", c.dbs.Add(1))
	create := "CREATE DATABASE " + name
	if c.fileCopy.Load() {
		create += " STRATEGY FILE_COPY"
	}
	if err := c.Exec(context.Background(), create); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		if !c.Running() {
			return
		}
		if err := c.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	return c.URL(name)
}

// Exec runs SQL as the superuser in the cluster's postgres database, for
// what a test does to the cluster itself (pg_terminate_backend, roles).
func (c *Cluster) Exec(ctx context.Context, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql).ReadAll(); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// Running reports whether the postmaster is up (it is between Kill or Stop
// and Restart).
func (c *Cluster) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cmd != nil
}

// Stop shuts the cluster down cleanly (fast shutdown: sessions are ended,
// a checkpoint is written).
func (c *Cluster) Stop() error { return c.signal(syscall.SIGINT) }

// Kill stops the cluster as a crash would (immediate shutdown: no
// checkpoint, so Restart runs crash recovery).
func (c *Cluster) Kill() error { return c.signal(syscall.SIGQUIT) }

// signal sends pg_ctl's shutdown signals itself: the postmaster is our
// child, so we wait on it rather than on its pid file.
func (c *Cluster) signal(sig syscall.Signal) error {
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.cmd = nil
	c.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return err
	}
	select {
	case <-exited:
		return nil
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("postgres did not stop within a minute of %v", sig)
	}
}

// Restart starts the cluster again after Stop or Kill, on the same data
// and address.
func (c *Cluster) Restart() error {
	if c.Running() {
		return errors.New("pgtest: restart of a running cluster")
	}
	return c.launchOnce()
}

// Close stops the cluster at once and removes its files.
func (c *Cluster) Close() error {
	err := c.Kill()
	if rmErr := os.RemoveAll(c.dir); err == nil {
		err = rmErr
	}
	return err
}

// Shared is one cluster for all the tests of a package, started by the
// first test that asks for it and stopped by Main when the tests end:
//
//	var pg pgtest.Shared
//
//	func TestMain(m *testing.M) { pg.Main(m) }
//
//	func TestX(t *testing.T) { url := pg.Cluster(t).NewDatabase(t) }
type Shared struct {
	Options []Option

	once sync.Once
	c    *Cluster
	err  error
}

// Cluster returns the shared cluster, starting it on first use; it fails
// (or skips) the test as Start does when PostgreSQL is missing.
func (s *Shared) Cluster(tb testing.TB) *Cluster {
	tb.Helper()
	s.once.Do(func() { s.c, s.err = start(s.Options) })
	if errors.Is(s.err, errNotInstalled) {
		notInstalled(tb, s.err)
	}
	if s.err != nil {
		tb.Fatal(s.err)
	}
	return s.c
}

// Main runs the package's tests, stops the shared cluster and exits with
// the tests' status.
func (s *Shared) Main(m *testing.M) {
	code := m.Run()
	if s.c != nil {
		if err := s.c.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}
