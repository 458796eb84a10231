package integration

import (
	"bufio"
	"context"
	"database/sql"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/loadtest/loadgen"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/servertest"
)

// loadAgents is the number of simulated agents of the in-process load
// tests; the race detector makes each handshake several times slower.
func loadAgents() int {
	if loadgen.RaceDetector {
		return 100
	}
	return 200
}

// loadTarget points the load generator at an in-process server, found
// through its data folder as tally-load --data finds a local one.
func loadTarget(t *testing.T, srv *servertest.Server) loadgen.Target {
	t.Helper()
	tg, err := loadgen.Discover(srv.Dir().Path)
	if err != nil {
		t.Fatal(err)
	}
	if tg.ServerPID != os.Getpid() {
		t.Fatalf("addresses.json names PID %d, this process is %d", tg.ServerPID, os.Getpid())
	}
	return tg
}

func runLoad(t *testing.T, cfg loadgen.Config) *loadgen.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg.RecordSeqs = true
	cfg.AdminProbe = 100 * time.Millisecond
	rep, err := loadgen.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("%s: %v", cfg.Scenario, err)
	}
	if testing.Verbose() {
		rep.Print(os.Stderr)
	}
	for _, c := range rep.Checks {
		if !c.OK {
			t.Errorf("%s: check failed: %s: %s", cfg.Scenario, c.Name, c.Detail)
		}
	}
	for _, ph := range rep.Phases {
		// Failed attempts that a retry fixed (a refused connection when
		// many handshakes arrive together on a busy machine) are logged;
		// a post given up or a wrong answer fails the test.
		if len(ph.Errors) > 0 {
			t.Logf("%s phase %s: retried errors %v", cfg.Scenario, ph.Name, ph.Errors)
		}
		if len(ph.Anomalies) > 0 || ph.Unacked > 0 {
			t.Errorf("%s phase %s: anomalies %v, %d given up", cfg.Scenario, ph.Name, ph.Anomalies, ph.Unacked)
		}
	}
	return rep
}

// appliedSeqs reads, straight from the server's database, the inventory
// sequence numbers the server applied per node: an exact cross-check of
// "acknowledged = stored" that the admin API cannot give (see loadgen).
func appliedSeqs(t *testing.T, srv *servertest.Server) map[string]map[uint64]bool {
	t.Helper()
	return appliedSeqsIn(t, srv.Dir().File(datadir.DatabaseFile))
}

// appliedSeqsIn is appliedSeqs of the database file at path.
func appliedSeqsIn(t *testing.T, path string) map[string]map[uint64]bool {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_query_only=1&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT node_id, seq FROM applied WHERE kind = ?`, int(protocol.KindInventory))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]map[uint64]bool{}
	for rows.Next() {
		var node string
		var seq uint64
		if err := rows.Scan(&node, &seq); err != nil {
			t.Fatal(err)
		}
		if out[node] == nil {
			out[node] = map[uint64]bool{}
		}
		out[node][seq] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkApplied checks, against the server's database, that exactly the
// posts the run's agents saw acknowledged were applied, no more, no less.
func checkApplied(t *testing.T, srv *servertest.Server, rep *loadgen.Report) {
	t.Helper()
	applied := appliedSeqs(t, srv)
	var acked int
	for _, a := range rep.Agent {
		acked += len(a.AckedSeqs)
		got := applied[a.NodeID]
		if len(got) != len(a.AckedSeqs) {
			t.Fatalf("node %s: %d posts acknowledged, %d applied", a.NodeID, len(a.AckedSeqs), len(got))
		}
		for _, s := range a.AckedSeqs {
			if !got[s] {
				t.Fatalf("node %s: post %d acknowledged but not applied", a.NodeID, s)
			}
		}
	}
	if acked != rep.PostsAcked || acked == 0 {
		t.Fatalf("%d sequence numbers recorded for %d acknowledged posts", acked, rep.PostsAcked)
	}
}

// The load generator's enroll, steady and race scenarios against an
// in-process server: a few seconds each, and every count checked, through
// the admin API by the generator itself and here against the database.
func TestLoadGenerator(t *testing.T) {
	if testing.Short() {
		t.Skip("load test; skipped with -short")
	}
	srv := servertest.New(t)
	n := loadAgents()
	base := loadgen.Config{Target: loadTarget(t, srv), Agents: n, PackagesMin: 20, PackagesMax: 80, PoolSize: 400, Seed: 7,
		EnrollConcurrency: 16}
	var reports []*loadgen.Report

	t.Run("enroll", func(t *testing.T) {
		cfg := base
		cfg.Scenario = loadgen.Enroll
		cfg.Concurrency = 32
		rep := runLoad(t, cfg)
		reports = append(reports, rep)
		if got := rep.Phase("enroll").Acked["enroll"]; got != int64(n) {
			t.Fatalf("%d enrollments acknowledged, want %d", got, n)
		}
		cs, err := srv.Admin.Computers(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != n {
			t.Fatalf("%d computers after enrolling %d agents", len(cs), n)
		}
	})

	t.Run("steady", func(t *testing.T) {
		cfg := base
		cfg.Scenario = loadgen.Steady
		cfg.Duration = 3 * time.Second
		cfg.Interval = 300 * time.Millisecond
		cfg.Churn = 0.5
		cfg.Concurrency = 64
		rep := runLoad(t, cfg)
		reports = append(reports, rep)
		prime, steady := rep.Phase("prime"), rep.Phase("steady")
		if prime == nil || steady == nil {
			t.Fatalf("phases %v", rep.Phases)
		}
		if prime.Acked["full"] != int64(n) {
			t.Fatalf("prime: %d full posts acknowledged, want %d", prime.Acked["full"], n)
		}
		if steady.Acked["delta"] < int64(n) {
			t.Fatalf("steady: only %d delta posts acknowledged by %d agents in %s", steady.Acked["delta"], n, cfg.Duration)
		}
		if got := steady.Verdicts["inventory licensed"]; got != steady.Acked["delta"] {
			t.Fatalf("%d inventory verdicts licensed of %d posts", got, steady.Acked["delta"])
		}
		checkApplied(t, srv, rep)
	})

	t.Run("race", func(t *testing.T) {
		cfg := base
		cfg.Scenario = loadgen.Race
		cfg.Product = "monitor"
		cfg.Seats = n / 4
		rep := runLoad(t, cfg)
		reports = append(reports, rep)
		race := rep.Phase("race")
		if got := race.Verdicts["monitor licensed"]; got != int64(n/4) {
			t.Fatalf("%d agents licensed for %d seats", got, n/4)
		}
		if got := race.Verdicts["monitor discarded:no-seat"]; got != int64(n-n/4) {
			t.Fatalf("%d agents told no-seat, want %d", got, n-n/4)
		}
		u := usageOf(t, srv, "monitor")
		if u.Consumed != n/4 || u.Granted != n/4 {
			t.Fatalf("monitor usage %d of %d, want %d of %d", u.Consumed, u.Granted, n/4, n/4)
		}
	})

	// /metrics answers in Prometheus text format and its counters agree
	// with what the load runs counted.
	t.Run("metrics", func(t *testing.T) {
		if len(reports) != 3 {
			t.Skip("an earlier run failed")
		}
		var acked, enrolled, monitorLicensed, monitorRefused int64
		for _, rep := range reports {
			for _, ph := range rep.Phases {
				acked += ph.Acked["full"] + ph.Acked["delta"] + ph.Acked["basic"]
				enrolled += ph.Acked["enroll"]
				monitorLicensed += ph.Verdicts["monitor licensed"]
				monitorRefused += ph.Verdicts["monitor discarded:no-seat"]
			}
		}
		m := scrapeMetrics(t, srv)
		for name, want := range map[string]int64{
			`tally_requests_total{kind="inventory",status="ok"}`:                  acked,
			`tally_requests_total{kind="enroll",status="ok"}`:                     enrolled,
			`tally_verdicts_total{product="monitor",verdict="licensed"}`:          monitorLicensed,
			`tally_verdicts_total{product="monitor",verdict="discarded:no-seat"}`: monitorRefused,
			`tally_seats_held{product="monitor"}`:                                 int64(n / 4),
			`tally_seats_granted{product="monitor"}`:                              int64(n / 4),
		} {
			if got, ok := m[name]; !ok || int64(got) != want {
				t.Errorf("%s = %v (present %v), the load runs counted %d", name, got, ok, want)
			}
		}
		if m["tally_db_commit_batch_size_count"] == 0 || m["tally_request_duration_seconds_count{kind=\"inventory\"}"] != float64(acked) {
			t.Errorf("commit and latency histograms: %v commits, %v inventory latencies", m["tally_db_commit_batch_size_count"],
				m["tally_request_duration_seconds_count{kind=\"inventory\"}"])
		}
	})
}

// scrapeMetrics reads /metrics with the admin token and parses the text
// format into sample name (with labels) → value.
func scrapeMetrics(t *testing.T, srv *servertest.Server) map[string]float64 {
	t.Helper()
	return scrapeMetricsAt(t, srv.Addresses().AdminURL, srv.Identity().Token)
}

// scrapeMetricsAt is scrapeMetrics of the admin API at adminURL.
func scrapeMetricsAt(t *testing.T, adminURL, token string) map[string]float64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, adminURL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("not Prometheus text format: %q", line)
		}
		out[line[:i]] = v
	}
	return out
}
