package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/pgtest"
)

// replica is one tally-server process of several on one PostgreSQL
// database, each with its own data folder; its log may be read while it
// runs.
type replica struct {
	data   string
	addrs  datadir.Addresses
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan error
}

// startReplica starts the built server on store and waits until it
// serves. Replicas are started one after the other: the first gives the
// database its identity, the next ones take it.
func startReplica(t *testing.T, bin, store string, flags ...string) *replica {
	t.Helper()
	r := &replica{data: t.TempDir(), stderr: new(lockedBuffer), done: make(chan error, 1)}
	// The simulated agents all dial from 127.0.0.1: no per-address limits.
	args := append([]string{"serve", "--data", r.data, "--store", store, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--max-conns-per-addr", "-1", "--max-handshakes-per-addr", "-1", "--log-format", "json"}, flags...)
	r.cmd = exec.Command(bin, args...)
	r.cmd.Stderr = r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(r.kill)
	deadline := time.Now().Add(60 * time.Second)
	for {
		a, err := (datadir.Dir{Path: r.data}).ReadAddresses()
		if err == nil && a.PID == r.cmd.Process.Pid {
			r.addrs = a
			return r
		}
		if !r.running() {
			t.Fatalf("replica exited at start\n%s", r.stderr.Bytes())
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica did not start within 60 s\n%s", r.stderr.Bytes())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *replica) running() bool {
	select {
	case err := <-r.done:
		r.done <- err
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the exit; a stopped replica is left alone.
func (r *replica) kill() {
	if r.running() {
		r.cmd.Process.Signal(syscall.SIGKILL)
		err := <-r.done
		r.done <- err
	}
}

// logged counts the replica's log lines whose message starts with msg.
func (r *replica) logged(msg string) int {
	n := 0
	for _, line := range strings.Split(string(r.stderr.Bytes()), "\n") {
		var rec struct{ Msg string }
		if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Msg, msg) {
			n++
		}
	}
	return n
}

// steadyProgress is tally-load's progress line of the steady phase, printed
// once a second from its start.
var steadyProgress = regexp.MustCompile(`(?m)^steady +[0-9]+s: `)

const (
	leadsMsg       = "leader election: this replica leads"
	maintenanceMsg = "maintenance run"
)

// startReplicas starts n replicas on a fresh database of a cluster of the
// test's own, and checks that they share one identity.
func startReplicas(t *testing.T, n int, flags ...string) (url string, rs []*replica) {
	t.Helper()
	serverBin, _ := binaries(t)
	url = pgtest.Start(t).NewDatabase(t)
	for range n {
		rs = append(rs, startReplica(t, serverBin, url, flags...))
	}
	for _, r := range rs[1:] {
		if r.addrs.Fingerprint != rs[0].addrs.Fingerprint {
			t.Fatalf("replica fingerprints differ: %s and %s", rs[0].addrs.Fingerprint, r.addrs.Fingerprint)
		}
	}
	return url, rs
}

// quicAddrs is the --server list of tally-load: every replica's address.
func quicAddrs(rs []*replica) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.addrs.QUIC)
	}
	return strings.Join(out, ",")
}

// loadReport is the part of tally-load's JSON report the tests read.
type loadReport struct {
	PostsAcked int         `json:"posts_acked"`
	Phases     []loadPhase `json:"phases"`
	Checks     []struct {
		Name, Detail string
		OK           bool
	} `json:"checks"`
}

type loadPhase struct {
	Name      string           `json:"name"`
	Seconds   float64          `json:"seconds"`
	Unacked   int64            `json:"unacked"`
	Failovers int64            `json:"failovers"`
	Verdicts  map[string]int64 `json:"verdicts"`
}

func (l *loadReport) phase(name string) *loadPhase {
	for i := range l.Phases {
		if l.Phases[i].Name == name {
			return &l.Phases[i]
		}
	}
	return nil
}

func (l *loadReport) checksOK(t *testing.T) {
	t.Helper()
	for _, ph := range l.Phases {
		t.Logf("tally-load phase %s: %.1f s, %d failovers", ph.Name, ph.Seconds, ph.Failovers)
	}
	if len(l.Checks) == 0 {
		t.Fatal("tally-load reported no checks")
	}
	for _, c := range l.Checks {
		if !c.OK {
			t.Errorf("tally-load: %s: %s", c.Name, c.Detail)
		}
	}
}

// pgQuery runs q on the database at url and calls row for each row.
func pgQuery(t *testing.T, url, q string, row func(pgx.Rows) error, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, q, args...)
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
		t.Fatalf("%s: %v", q, err)
	}
}

// checkSeatsAndAuditPG is checkSeatsAndAudit on the replicas' database: no
// license holds more seats than it grants (nor another count than its held
// column), and the audit log's seat events agree with the seats held. It
// returns the seats held by product.
func checkSeatsAndAuditPG(t *testing.T, url string) map[string]int {
	t.Helper()
	pgQuery(t, url, `SELECT l.id, l.seats, l.held, (SELECT COUNT(*) FROM seats s WHERE s.license_id = l.id) FROM licenses l`, func(r pgx.Rows) error {
		var id string
		var seats, heldCol, held int64
		if err := r.Scan(&id, &seats, &heldCol, &held); err != nil {
			return err
		}
		if held > seats || held != heldCol {
			t.Errorf("license %s: %d seats held (held column %d) of %d granted", id, held, heldCol, seats)
		}
		return nil
	})
	held, audited := map[string]int{}, map[string]int{}
	pgQuery(t, url, `SELECT product, COUNT(*) FROM seats GROUP BY product`, func(r pgx.Rows) error {
		var p string
		var n int64
		err := r.Scan(&p, &n)
		held[p] = int(n)
		return err
	})
	pgQuery(t, url, `SELECT product, SUM(CASE kind WHEN $1 THEN 1 ELSE -1 END) FROM events WHERE kind IN ($1, $2) GROUP BY product`,
		func(r pgx.Rows) error {
			var p string
			var n int64
			err := r.Scan(&p, &n)
			audited[p] = int(n)
			return err
		}, store.EventSeatConsumed, store.EventSeatFreed)
	for p := range merge(held, audited) {
		if held[p] != audited[p] {
			t.Errorf("product %s: %d seats held, the audit log's seat events say %d", p, held[p], audited[p])
		}
	}
	return held
}

// checkAckedStoredPG checks that each node's acknowledged inventory posts
// are exactly the ones the replicas' database applied (one row of applied
// per node and sequence number: one application). It returns the posts
// found.
func checkAckedStoredPG(t *testing.T, url string, acked map[string][]uint64) int {
	t.Helper()
	applied := map[string]map[uint64]bool{}
	pgQuery(t, url, `SELECT node_id, seq FROM applied WHERE kind = $1`, func(r pgx.Rows) error {
		var node string
		var seq int64
		if err := r.Scan(&node, &seq); err != nil {
			return err
		}
		if applied[node] == nil {
			applied[node] = map[uint64]bool{}
		}
		applied[node][uint64(seq)] = true
		return nil
	}, int64(protocol.KindInventory))
	found := 0
	for node, seqs := range acked {
		for _, s := range seqs {
			if applied[node][s] {
				found++
			} else {
				t.Errorf("node %s: post %d acknowledged, not stored", node, s)
			}
		}
		if len(applied[node]) != len(seqs) {
			t.Errorf("node %s: %d posts acknowledged, %d applied", node, len(seqs), len(applied[node]))
		}
	}
	return found
}

// runLoadBinary runs tally-load to its end (bounded) and returns its report
// and its acknowledged sequence numbers.
func runLoadBinary(t *testing.T, out *lockedBuffer, done chan error, reportPath, ackedPath string) (loadReport, map[string][]uint64) {
	t.Helper()
	select {
	case err := <-done:
		done <- err // for the cleanup of startLoadBinary
		if err != nil {
			t.Fatalf("tally-load: %v\n%s", err, out.Bytes())
		}
	case <-time.After(4 * time.Minute):
		t.Fatalf("tally-load did not finish within 4 minutes\n%s", out.Bytes()) // the cleanup kills it
	}
	var rep loadReport
	readJSON(t, reportPath, &rep)
	var acked map[string][]uint64
	if ackedPath != "" {
		readJSON(t, ackedPath, &acked)
	}
	return rep, acked
}

// startLoadBinary starts the built tally-load with args, its report and
// acknowledged sequence numbers written to files of the test's.
func startLoadBinary(t *testing.T, args ...string) (out *lockedBuffer, done chan error, reportPath, ackedPath string) {
	t.Helper()
	dir := t.TempDir()
	reportPath, ackedPath = filepath.Join(dir, "report.json"), filepath.Join(dir, "acked.json")
	// Without --quiet: its progress lines name the phase under way.
	cmd := exec.Command(loadBinary(t), append(args, "--admin-probe", "-1s", "--json", reportPath, "--acked", ackedPath)...)
	out, done = new(lockedBuffer), make(chan error, 1)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case err := <-done:
			done <- err
		default:
			cmd.Process.Kill()
			<-done
		}
	})
	return out, done, reportPath, ackedPath
}

// Must hold: three replicas on one PostgreSQL, 2,000 simulated agents
// (tally-load race) racing through all three for 500 seats: exactly 500
// are held, and the audit log agrees.
func TestReplicasRaceForSeats(t *testing.T) {
	const agents, seats = 2000, 500
	url, rs := startReplicas(t, 3)
	// The admin API of the second replica reads what the agents of all
	// three did; the first's data folder mints the license.
	out, done, reportPath, _ := startLoadBinary(t, "race", "--data", rs[0].data, "--admin-url", rs[1].addrs.AdminURL,
		"--server", quicAddrs(rs), "--store", url, "--agents", fmt.Sprint(agents), "--seats", fmt.Sprint(seats), "--product", "monitor",
		"--run", "replicarace", "--request-timeout", "60s", "--duration", "2m")
	rep, _ := runLoadBinary(t, out, done, reportPath, "")
	rep.checksOK(t)
	race := rep.phase("race")
	if race == nil {
		t.Fatalf("no race phase in the report\n%s", out.Bytes())
	}
	if got := race.Verdicts["monitor licensed"]; got != seats {
		t.Errorf("%d agents told licensed for %d seats", got, seats)
	}
	if got := race.Verdicts["monitor discarded:no-seat"]; got != agents-seats {
		t.Errorf("%d agents told no-seat, want %d", got, agents-seats)
	}
	held := checkSeatsAndAuditPG(t, url)
	if held["monitor"] != seats {
		t.Errorf("%d monitor seats held in the database, want %d", held["monitor"], seats)
	}
	// Every replica answers the same usage: one database.
	for i, r := range rs {
		tok, err := (datadir.Dir{Path: r.data}).ReadToken()
		if err != nil {
			t.Fatal(err)
		}
		m := scrapeMetricsAt(t, r.addrs.AdminURL, tok)
		if got := m[`tally_seats_held{product="monitor"}`]; got != seats {
			t.Errorf("replica %d: tally_seats_held{monitor} = %v, want %d", i, got, seats)
		}
		if got := m[`tally_requests_total{kind="inventory",status="ok"}`]; got == 0 {
			t.Errorf("replica %d answered no inventory post: the agents were not spread", i)
		}
	}
}

// Must hold: a replica killed with SIGKILL in the middle of tally-load
// steady: its agents fail over to the others, every acknowledged post is
// stored once, no seat is held twice, and the maintenance job moves to a
// surviving replica. The replica killed is the leader (the one that runs
// the maintenance job); tally-load reads another's admin API.
func TestReplicaKilledMidSteady(t *testing.T) {
	url, rs := startReplicas(t, 3, "--maintenance-every", "250ms")
	var leader *replica
	waitFor(t, 30*time.Second, "a replica to lead", func() bool {
		n := 0
		for _, r := range rs {
			if r.logged(leadsMsg) > 0 {
				leader = r
				n++
			}
		}
		return n == 1
	})
	waitFor(t, 30*time.Second, "the leader's first maintenance run", func() bool { return leader.logged(maintenanceMsg) > 0 })
	var survivors []*replica
	for _, r := range rs {
		if r != leader {
			survivors = append(survivors, r)
			if n := r.logged(maintenanceMsg); n != 0 {
				t.Fatalf("a replica that does not lead ran maintenance %d times", n)
			}
		}
	}
	const agents = 60
	out, done, reportPath, ackedPath := startLoadBinary(t, "steady", "--data", survivors[0].data, "--server", quicAddrs(rs),
		"--store", url, "--agents", fmt.Sprint(agents), "--seats", fmt.Sprint(agents/2), "--duration", "8s", "--interval", "100ms",
		"--churn", "0.5", "--packages-min", "10", "--packages-max", "40", "--pool", "300", "--run", "replicakill", "--check-sample", "0",
		"--concurrency", "32", "--request-timeout", "4s", "--drain-timeout", "60s", "--prime-timeout", "90s")

	// Kill the leader a second into the steady phase (tally-load's progress
	// line names the phase each second): its agents (a third) have posted
	// their full sets and a few deltas.
	waitFor(t, 90*time.Second, "the steady phase", func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("tally-load ended before the kill: %v\n%s", err, out.Bytes())
		default:
		}
		return steadyProgress.Match(out.Bytes())
	})
	leader.kill()
	killed := time.Now()

	waitFor(t, 60*time.Second, "a surviving replica to lead and run maintenance", func() bool {
		for _, r := range survivors {
			if r.logged(leadsMsg) > 0 && r.logged(maintenanceMsg) > 0 {
				return true
			}
		}
		return false
	})
	t.Logf("the maintenance job moved to a survivor %.1f s after the SIGKILL", time.Since(killed).Seconds())

	rep, acked := runLoadBinary(t, out, done, reportPath, ackedPath)
	rep.checksOK(t)
	var failovers int64
	for _, ph := range rep.Phases {
		failovers += ph.Failovers
		if ph.Unacked > 0 {
			t.Errorf("phase %s: %d posts given up", ph.Name, ph.Unacked)
		}
	}
	if steady := rep.phase("steady"); steady == nil || steady.Failovers == 0 {
		t.Errorf("no agent failed over in the steady phase, after the kill\n%s", out.Bytes())
	}
	recorded := 0
	for _, seqs := range acked {
		recorded += len(seqs)
	}
	if recorded != rep.PostsAcked || recorded == 0 {
		t.Errorf("%d posts acknowledged, %d sequence numbers recorded", rep.PostsAcked, recorded)
	}
	stored := checkAckedStoredPG(t, url, acked)
	held := checkSeatsAndAuditPG(t, url)
	if held["inventory"] != agents/2 {
		t.Errorf("%d inventory seats held, want the %d granted (half the agents ask for one with every post)", held["inventory"], agents/2)
	}
	t.Logf("%d posts acknowledged, %d stored; %d failovers", recorded, stored, failovers)
}
