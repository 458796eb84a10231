package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/loadtest/loadgen"
	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/servertest"
)

// tally-load --tcp: the load generator's agents post over TLS over TCP,
// the server's fallback transport, framed as the real agent frames. A
// steady run, then a storm (every connection dropped, every agent
// reconnecting at once), against an in-process server: every check
// passes, and the server applied and counted exactly what it
// acknowledged.
func TestLoadGeneratorOverTCP(t *testing.T) {
	if testing.Short() {
		t.Skip("load test; skipped with -short")
	}
	srv := servertest.New(t)
	const n = 50
	base := loadgen.Config{Target: loadTarget(t, srv), TCP: true, Agents: n, PackagesMin: 20, PackagesMax: 80, PoolSize: 400,
		Seed: 11, EnrollConcurrency: 16}
	var acked, enrolled int64

	t.Run("steady", func(t *testing.T) {
		cfg := base
		cfg.Scenario = loadgen.Steady
		cfg.Duration = 2 * time.Second
		cfg.Interval = 200 * time.Millisecond
		cfg.Churn = 0.5
		cfg.Concurrency = 32
		rep := runLoad(t, cfg)
		acked, enrolled = acked+int64(rep.PostsAcked), enrolled+rep.Phase("enroll").Acked["enroll"]
		overTCP(t, rep)
		prime, steady := rep.Phase("prime"), rep.Phase("steady")
		if prime == nil || steady == nil {
			t.Fatalf("phases %v", rep.Phases)
		}
		if prime.Acked["full"] != n {
			t.Fatalf("prime: %d full posts acknowledged, want %d", prime.Acked["full"], n)
		}
		if steady.Acked["delta"] < n {
			t.Fatalf("steady: only %d delta posts acknowledged by %d agents in %s", steady.Acked["delta"], n, cfg.Duration)
		}
		if got := steady.Verdicts["inventory licensed"]; got != steady.Acked["delta"] {
			t.Fatalf("%d inventory verdicts licensed of %d posts", got, steady.Acked["delta"])
		}
		// One connection per agent, opened while enrolling and kept.
		if h := rep.Phase("enroll").Handshakes; h.Full+h.Resumed < n {
			t.Errorf("enroll: %d full and %d resumed handshakes for %d agents", h.Full, h.Resumed, n)
		}
		if h := steady.Handshakes; h.Full+h.Resumed != 0 {
			t.Errorf("steady: %d full and %d resumed handshakes: the agents' connections were not kept", h.Full, h.Resumed)
		}
		checkApplied(t, srv, rep)
	})

	t.Run("storm", func(t *testing.T) {
		cfg := base
		cfg.Scenario = loadgen.Storm
		cfg.Prime, cfg.Reconnect = true, true
		cfg.Duration = 10 * time.Second
		rep := runLoad(t, cfg)
		acked, enrolled = acked+int64(rep.PostsAcked), enrolled+rep.Phase("enroll").Acked["enroll"]
		overTCP(t, rep)
		storm := rep.Phase("storm")
		if storm == nil || storm.Acked["delta"] != n {
			t.Fatalf("storm phase %+v: want %d delta posts acknowledged", storm, n)
		}
		// Every agent reconnected, resuming its TLS session.
		if h := storm.Handshakes; h.Full+h.Resumed < n || h.Resumed == 0 {
			t.Errorf("storm: %d full and %d resumed handshakes for %d reconnecting agents", h.Full, h.Resumed, n)
		}
		checkApplied(t, srv, rep)
	})

	// The server's own counters saw every acknowledged request.
	t.Run("metrics", func(t *testing.T) {
		if acked == 0 || t.Failed() {
			t.Skip("an earlier run failed")
		}
		m := scrapeMetrics(t, srv)
		for name, want := range map[string]int64{
			`tally_requests_total{kind="inventory",status="ok"}`: acked,
			`tally_requests_total{kind="enroll",status="ok"}`:    enrolled,
		} {
			if got, ok := m[name]; !ok || int64(got) != want {
				t.Errorf("%s = %v (present %v), the load runs counted %d", name, got, ok, want)
			}
		}
	})
}

// overTCP checks that a report's traffic went over TCP: the transport is
// named, and bytes were counted on TCP connections, none on QUIC ones.
func overTCP(t *testing.T, rep *loadgen.Report) {
	t.Helper()
	if rep.Settings.Transport != "tcp" || rep.Settings.Sockets != 0 {
		t.Errorf("settings: transport %q, sockets %d", rep.Settings.Transport, rep.Settings.Sockets)
	}
	for _, ph := range rep.Phases {
		if ph.QUICBytesPerRequest != 0 || ph.TCPBytesPerRequest <= 0 {
			t.Errorf("phase %s: %v QUIC and %v TCP bytes per request", ph.Name, ph.QUICBytesPerRequest, ph.TCPBytesPerRequest)
		}
	}
}

// Against a server that does not listen on TCP, a --tcp run stops before
// it starts, and says why.
func TestLoadGeneratorTCPRefused(t *testing.T) {
	srv := servertest.New(t, func(cfg *daemon.Config) { cfg.NoTCP = true })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := loadgen.Run(ctx, loadgen.Config{Scenario: loadgen.Steady, Target: loadTarget(t, srv), TCP: true, Agents: 2})
	if err == nil || !strings.Contains(err.Error(), "does not listen on TCP") {
		t.Fatalf("Run over TCP against a server without TCP: %v", err)
	}
}
