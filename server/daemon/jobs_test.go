package daemon_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/leader"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store/pgtest"
)

var pg pgtest.Shared

func TestMain(m *testing.M) { pg.Main(m) }

// runs counts the maintenance runs a server logs, and wakes waiters.
type runs struct {
	mu      sync.Mutex
	n       int
	changed chan struct{}
}

func newRuns() *runs { return &runs{changed: make(chan struct{})} }

func (r *runs) Enabled(context.Context, slog.Level) bool { return true }
func (r *runs) Handle(_ context.Context, rec slog.Record) error {
	if rec.Message == "maintenance run" {
		r.mu.Lock()
		r.n++
		close(r.changed)
		r.changed = make(chan struct{})
		r.mu.Unlock()
	}
	return nil
}
func (r *runs) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *runs) WithGroup(string) slog.Handler      { return r }

func (r *runs) count() (int, chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n, r.changed
}

// awaitRuns waits until r has logged more than n maintenance runs.
func awaitRuns(t *testing.T, what string, r *runs, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		got, ch := r.count()
		if got > n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// withJobs runs the maintenance job every few milliseconds under elector
// and counts its runs.
func withJobs(e leader.Elector, r *runs) servertest.Option {
	return func(cfg *daemon.Config) {
		cfg.Elector = e
		cfg.MaintenanceEvery = 20 * time.Millisecond
		cfg.Logger = slog.New(r)
	}
}

// TestMaintenanceRunsOnTheLeaderOnly starts two servers contending on one
// PostgreSQL: one runs the maintenance job, the other none, until the
// first stops and the second takes over.
func TestMaintenanceRunsOnTheLeaderOnly(t *testing.T) {
	url := pg.Cluster(t).NewDatabase(t)
	elector := func() leader.Elector {
		e, err := leader.NewPostgres(url, leader.Config{Poll: 50 * time.Millisecond, Check: 100 * time.Millisecond, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	ra, rb := newRuns(), newRuns()
	a := servertest.New(t, withJobs(elector(), ra))
	awaitRuns(t, "the first server runs maintenance", ra, 0)
	b := servertest.New(t, withJobs(elector(), rb))
	before, _ := ra.count()
	awaitRuns(t, "the first server goes on running maintenance", ra, before+3)
	if n, _ := rb.count(); n != 0 {
		t.Fatalf("the second server ran maintenance %d times while the first led", n)
	}
	a.Stop()
	awaitRuns(t, "the second server takes over maintenance", rb, 0)
	b.Stop()
}

// TestAloneServerAlwaysRunsJobs checks the default: without an elector a
// server runs its jobs from the start, as before replicas.
func TestAloneServerAlwaysRunsJobs(t *testing.T) {
	r := newRuns()
	servertest.New(t, withJobs(nil, r))
	awaitRuns(t, "the lone server runs maintenance", r, 0)
}
