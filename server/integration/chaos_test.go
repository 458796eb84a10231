package integration

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/datadir"
)

// The fault suite runs as a test, not as a tally-load mode: its faults
// (SIGKILL of servers and agents, mounts filled to the last byte, a zeroed
// database page) and its checks against the database file belong to a
// harness that builds the binaries and cleans up after itself, not to a
// program shipped to admins. make test runs the short mode; make chaos
// passes -chaos.long.
var (
	chaosLong  = flag.Bool("chaos.long", false, "TestChaos: the long fault suite (make chaos)")
	chaosKills = flag.Int("chaos.kills", 100, "TestChaos -chaos.long: server SIGKILLs")
	chaosSeed  = flag.Uint64("chaos.seed", 0, "TestChaos: seed of the fault moments (0: from the time; the seed is logged)")
)

// chaosPlan is how many rounds of each fault a run injects, and the load
// of each round.
type chaosPlan struct {
	serverKills, killsPerRound, agentKills, diskServer, diskSpool, clockJumps, damaged, hostile int

	loadAgents int           // tally-load agents per round
	loadFor    time.Duration // tally-load --duration per round
	realAgents int           // tally-agent run daemons in the agent rounds
}

func chaosPlanNow() chaosPlan {
	if *chaosLong {
		return chaosPlan{serverKills: *chaosKills, killsPerRound: 2, agentKills: 40, diskServer: 5, diskSpool: 5, clockJumps: 5,
			damaged: 3, hostile: 10, loadAgents: 40, loadFor: 3 * time.Second, realAgents: 6}
	}
	return chaosPlan{serverKills: 2, killsPerRound: 1, agentKills: 4, diskServer: 1, diskSpool: 1, clockJumps: 1,
		damaged: 1, hostile: 1, loadAgents: 10, loadFor: time.Second, realAgents: 3}
}

// chaosFigures are what a run did and found, for docs/RELIABILITY.md.
type chaosFigures struct {
	mu                                                          sync.Mutex
	rounds, serverKills, agentKills, diskFull, clockJumps       int
	damagedPages, damagedRefused, hostileConns, refusedWhenFull int
	postsAcked, postsStored, agentPostsApplied                  int
}

func (f *chaosFigures) add(fn func(f *chaosFigures)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// chaosEnv is one server (the built binary, fixed ports so that a restart
// keeps its address, data folder on a tmpfs of its own where one can be
// mounted) and the binaries the rounds run.
type chaosEnv struct {
	serverBin, agentBin, loadBin string
	srv                          *chaosServer
	tmpfs                        bool // the server's data folder is a tmpfs mount this test made
	rng                          *rand.Rand
	fig                          *chaosFigures
	plan                         chaosPlan
	secret                       string
	round                        int
}

// Must hold, under every fault the suite injects while load runs: every
// post a client was told is stored is stored exactly once, no license
// holds more seats than it grants, and the audit log's seat events agree
// with the seats held.
func TestChaos(t *testing.T) {
	serverBin, agentBin := binaries(t)
	loadBin := loadBinary(t)
	seed := *chaosSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("chaos seed %d (replay with -chaos.seed %d)", seed, seed)
	plan := chaosPlanNow()
	e := &chaosEnv{serverBin: serverBin, agentBin: agentBin, loadBin: loadBin, rng: rand.New(rand.NewPCG(seed, seed)),
		fig: &chaosFigures{}, plan: plan}
	data := t.TempDir()
	if err := mountTmpfs(t, data, "160m"); err != nil {
		t.Logf("the server's data folder is not a tmpfs, so the full-disk fault under the server is skipped: %v", err)
	} else {
		e.tmpfs = true
	}
	e.srv = &chaosServer{bin: serverBin, data: data, quic: freeUDPAddr(t), admin: freeTCPAddr(t)}
	t.Cleanup(e.srv.kill)
	e.srv.start(t)
	info, err := e.srv.adminClient(t).EnrollInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.secret = info.Secret
	start := time.Now()

	t.Run("server-kill", func(t *testing.T) {
		for killed := 0; killed < plan.serverKills; {
			killed += e.serverKillRound(t, min(plan.killsPerRound, plan.serverKills-killed))
		}
	})
	t.Run("agent-kill", func(t *testing.T) { e.agentKillRounds(t) })
	t.Run("disk-full-server", func(t *testing.T) {
		if !e.tmpfs {
			t.Skip("cannot mount a tmpfs here (run as root on Linux): the server's data folder is on the ordinary disk, which this test will not fill")
		}
		for range plan.diskServer {
			e.diskFullServerRound(t)
		}
	})
	t.Run("disk-full-spool", func(t *testing.T) { e.diskFullSpoolRounds(t) })
	t.Run("hostile", func(t *testing.T) {
		for range plan.hostile {
			e.hostileRound(t)
		}
	})
	t.Run("damaged-page", func(t *testing.T) {
		for range plan.damaged {
			e.damagedPageRound(t)
		}
	})
	t.Run("clock-jump", func(t *testing.T) { clockJumpRounds(t, e) })

	e.srv.stop(t)
	checkSeatsAndAudit(t, nil, e.srv.dbPath())
	f := e.fig
	t.Logf("chaos: %d rounds in %s; %d server SIGKILLs, %d agent SIGKILLs, %d full disks, %d clock jumps, %d damaged pages (%d refused at start), %d hostile connections; "+
		"tally-load posts acknowledged %d, stored %d; real agents' posts applied %d; %d requests refused while a disk was full; lost: %d",
		f.rounds, time.Since(start).Round(time.Second), f.serverKills, f.agentKills, f.diskFull, f.clockJumps, f.damagedPages, f.damagedRefused,
		f.hostileConns, f.postsAcked, f.postsStored, f.agentPostsApplied, f.refusedWhenFull, f.postsAcked-f.postsStored)
}

// loadBinary builds tally-load next to the other binaries, once.
var loadBuild struct {
	once sync.Once
	path string
	err  error
}

func loadBinary(t *testing.T) string {
	t.Helper()
	binaries(t) // makes binDir
	loadBuild.once.Do(func() {
		cmd := exec.Command("go", "build", "-o", binDir, "./loadtest/cmd/tally-load")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			loadBuild.err = fmt.Errorf("go build tally-load: %v\n%s", err, out)
		}
		loadBuild.path = filepath.Join(binDir, "tally-load")
	})
	if loadBuild.err != nil {
		t.Fatal(loadBuild.err)
	}
	return loadBuild.path
}

// freeTCPAddr picks a loopback TCP port that nothing listens on, so that
// the admin API keeps its address across restarts.
func freeTCPAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// chaosServer is the built tally-server on fixed ports, started again and
// again on the same data folder; its log may be read while it runs.
type chaosServer struct {
	bin, data, quic, admin string
	cmd                    *exec.Cmd
	stderr                 *lockedBuffer
	done                   chan error
}

func (s *chaosServer) dbPath() string { return filepath.Join(s.data, datadir.DatabaseFile) }

// launch starts the process and returns at once.
func (s *chaosServer) launch(t *testing.T) {
	t.Helper()
	s.stderr, s.done = new(lockedBuffer), make(chan error, 1)
	s.cmd = exec.Command(s.bin, "serve", "--data", s.data, "--listen", s.quic, "--admin", s.admin, "--log-format", "json")
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(s.cmd, s.done)
}

// serving reports whether the process launched last wrote its addresses.
func (s *chaosServer) serving() bool {
	a, err := (datadir.Dir{Path: s.data}).ReadAddresses()
	return err == nil && a.PID == s.cmd.Process.Pid
}

func (s *chaosServer) start(t *testing.T) {
	t.Helper()
	s.launch(t)
	deadline := time.Now().Add(30 * time.Second)
	for !s.serving() {
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("server exited at start: %v\n%s", err, s.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start within 30 s\n%s", s.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// running reports whether the process has not exited.
func (s *chaosServer) running() bool {
	select {
	case err := <-s.done:
		s.done <- err
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the exit; a stopped server is left alone.
func (s *chaosServer) kill() {
	if s.cmd != nil && s.running() {
		s.cmd.Process.Kill()
		err := <-s.done
		s.done <- err
	}
}

func (s *chaosServer) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			t.Fatalf("server exited with %v after SIGTERM\n%s", err, s.stderr)
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("server did not stop after SIGTERM\n%s", s.stderr)
	}
}

func (s *chaosServer) adminClient(t *testing.T) *adminapi.Client {
	t.Helper()
	tok, err := (datadir.Dir{Path: s.data}).ReadToken()
	if err != nil {
		t.Fatal(err)
	}
	c, err := adminapi.NewClient("http://"+s.admin, tok)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// healthy reports whether the admin API answers its health check.
func (s *chaosServer) healthy() bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + s.admin + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// loadRun is one tally-load steady run in its own process.
type loadRun struct {
	name             string
	cmd              *exec.Cmd
	out              *lockedBuffer
	done             chan error
	report, ackedOut string
}

// startLoad starts tally-load against the server: agents enroll, post their
// full software set, then a delta every 100 ms for the plan's duration;
// every attempt a fault breaks is retried with the same sequence number.
//
// Each run brings seats of the inventory product for half of its agents:
// the other half ask for one with every post, so that the seat limit is
// raced for all the time.
func (e *chaosEnv) startLoad(t *testing.T) *loadRun {
	t.Helper()
	e.round++
	dir := t.TempDir()
	l := &loadRun{name: fmt.Sprintf("chaos%d", e.round), out: new(lockedBuffer), done: make(chan error, 1),
		report: filepath.Join(dir, "report.json"), ackedOut: filepath.Join(dir, "acked.json")}
	l.cmd = exec.Command(e.loadBin, "steady", "--data", e.srv.data, "--agents", fmt.Sprint(e.plan.loadAgents),
		"--seats", fmt.Sprint(e.plan.loadAgents/2), "--duration", e.plan.loadFor.String(), "--interval", "100ms", "--churn", "0.5",
		"--packages-min", "10", "--packages-max", "40", "--pool", "300", "--run", l.name, "--seed", fmt.Sprint(e.round),
		"--quiet", "--admin-probe", "-1s", "--check-sample", "0", "--concurrency", "32", "--request-timeout", "3s",
		"--drain-timeout", "60s", "--prime-timeout", "90s", "--json", l.report, "--acked", l.ackedOut)
	l.cmd.Stdout, l.cmd.Stderr = l.out, l.out
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { l.done <- l.cmd.Wait() }()
	t.Cleanup(func() {
		if l.after(0) {
			l.cmd.Process.Kill()
			<-l.done
		}
	})
	return l
}

// finish waits for tally-load, fails on any check it failed, and checks
// every acknowledged post against the server's database: applied, once.
func (e *chaosEnv) finish(t *testing.T, l *loadRun) {
	t.Helper()
	select {
	case err := <-l.done:
		l.done <- err
		if err != nil {
			t.Fatalf("tally-load %s: %v\n%s", l.name, err, l.out)
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("tally-load %s did not finish within 3 minutes\n%s", l.name, l.out)
	}
	var rep struct {
		PostsAcked int `json:"posts_acked"`
		Checks     []struct {
			Name, Detail string
			OK           bool
		} `json:"checks"`
	}
	readJSON(t, l.report, &rep)
	for _, c := range rep.Checks {
		if !c.OK {
			t.Errorf("tally-load %s: %s: %s", l.name, c.Name, c.Detail)
		}
	}
	var acked map[string][]uint64
	readJSON(t, l.ackedOut, &acked)
	recorded := 0
	for _, seqs := range acked {
		recorded += len(seqs)
	}
	if recorded != rep.PostsAcked {
		t.Errorf("tally-load %s: %d posts acknowledged, %d sequence numbers recorded", l.name, rep.PostsAcked, recorded)
	}
	stored := checkAckedStored(t, e.srv.dbPath(), acked)
	e.fig.add(func(f *chaosFigures) { f.rounds++; f.postsAcked += recorded; f.postsStored += stored })
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// checkAckedStored checks that each node's acknowledged inventory posts are
// exactly the ones the database applied (the applied table's key is the
// node and sequence number: one row is one application). It returns the
// posts found.
func checkAckedStored(t *testing.T, dbPath string, acked map[string][]uint64) int {
	t.Helper()
	applied := appliedSeqsIn(t, dbPath)
	found := 0
	for node, seqs := range acked {
		got := applied[node]
		for _, s := range seqs {
			if got[s] {
				found++
			} else {
				t.Errorf("node %s: post %d acknowledged, not stored", node, s)
			}
		}
		if len(got) != len(seqs) {
			t.Errorf("node %s: %d posts acknowledged, %d applied", node, len(seqs), len(got))
		}
	}
	return found
}

// after waits d, or less if the load run ends first; it reports whether
// the load still runs.
func (l *loadRun) after(d time.Duration) bool {
	select {
	case err := <-l.done:
		l.done <- err
		return false
	case <-time.After(d):
		return true
	}
}

// loadUnderway waits until the server has answered a request of kind
// ("enroll", "inventory") of l: tally-load reads the admin API before
// its first request and gives up if it cannot, which is no fault of the
// server's.
func (e *chaosEnv) loadUnderway(t *testing.T, l *loadRun, kind string) {
	t.Helper()
	before := e.srv.requests(t, kind, false)
	waitFor(t, 30*time.Second, "tally-load's first "+kind+" request", func() bool {
		return e.srv.requests(t, kind, false) > before || !l.after(0)
	})
}

// randomMoment is a moment within the round's load: from its start (agents
// enrolling) to its last posts.
func (e *chaosEnv) randomMoment() time.Duration {
	return time.Duration(e.rng.Int64N(int64(e.plan.loadFor)))
}

// serverKillRound kills the server up to n times at random moments of one
// load run, each time checking the stopped server's database (seats and
// audit) and starting it again on the same data folder and ports. It
// returns the kills. Kills fall while the agents post: tally-load reads
// the admin API for its checks once they are done, and gives up if it
// cannot.
func (e *chaosEnv) serverKillRound(t *testing.T, n int) (kills int) {
	window := e.plan.loadFor
	l := e.startLoad(t)
	e.loadUnderway(t, l, "inventory")
	underway := time.Now()
	moments := make([]time.Duration, n)
	for i := range moments {
		moments[i] = time.Duration(e.rng.Int64N(int64(window)))
	}
	slices.Sort(moments)
	for _, m := range moments {
		if time.Since(underway) > window*4/5 || !l.after(time.Until(underway.Add(m))) {
			break
		}
		e.srv.kill()
		kills++
		e.fig.add(func(f *chaosFigures) { f.serverKills++ })
		checkSeatsAndAudit(t, nil, e.srv.dbPath())
		e.srv.start(t)
	}
	e.finish(t, l)
	checkSeatsAndAudit(t, e.srv.adminClient(t), e.srv.dbPath())
	return kills
}
