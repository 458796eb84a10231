package integration

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/loadtest/loadgen"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/datadir"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds tally-server and tally-agent once per test run.
func binaries(t *testing.T) (server, agent string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binaries; skipped with -short")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "tally-bin-")
		if buildErr != nil {
			return
		}
		for _, pkg := range []string{"./server/cmd/tally-server", "./agent/cmd/tally-agent"} {
			cmd := exec.Command("go", "build", "-o", binDir, pkg)
			cmd.Dir = "../.."
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "tally-server"), filepath.Join(binDir, "tally-agent")
}

func TestMain(m *testing.M) {
	if os.Getenv(probeChildEnv) == "1" {
		// This test binary started again as tally-load's admin prober
		// (TestLoadGeneratorProbesFromAProcessOfItsOwn).
		err := loadgen.ServeProbe(context.Background(), os.Stdin, os.Stdout, os.Getenv(loadgen.ProbeEnvURL), os.Getenv(loadgen.ProbeEnvToken))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// serverProc is a tally-server started from the built binary.
type serverProc struct {
	cmd    *exec.Cmd
	data   string
	addrs  datadir.Addresses
	stdout *bytes.Buffer
	stderr *bytes.Buffer
	done   chan error
}

func startServerBinary(t *testing.T, bin, data string) *serverProc {
	t.Helper()
	return startServerBinaryAt(t, bin, data, "127.0.0.1:0")
}

func (p *serverProc) admin(t *testing.T) *adminapi.Client {
	tok, err := (datadir.Dir{Path: p.data}).ReadToken()
	if err != nil {
		t.Fatal(err)
	}
	c, err := adminapi.NewClient(p.addrs.AdminURL, tok)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Addr and Fingerprint let agenttest enroll against the process.
func (p *serverProc) Addr() string        { return p.addrs.QUIC }
func (p *serverProc) Fingerprint() string { return p.addrs.Fingerprint }

func (p *serverProc) terminate(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("server exited with %v after SIGTERM\n%s", err, p.stderr)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("server did not stop after SIGTERM")
	}
	if !strings.Contains(p.stderr.String(), "tally-server stopped") {
		t.Fatalf("no clean stop in the log:\n%s", p.stderr)
	}
}

func runBin(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return out.String(), code
}

// A server stopped with SIGTERM and started again keeps every
// acknowledged inventory: the built binaries, agents enrolled and posting
// with the built agent.
func TestSIGTERMRestartKeepsAcknowledgedInventory(t *testing.T) {
	serverBin, agentBin := binaries(t)
	data := t.TempDir()
	p := startServerBinary(t, serverBin, data)
	info, err := p.admin(t).EnrollInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		dir := filepath.Join(t.TempDir(), "agent")
		out, code := runBin(t, agentBin, "enroll", "--server", info.Server, "--fingerprint", info.Fingerprint, "--secret", info.Secret,
			"--machine-id", fmt.Sprintf("sigterm-%d", i), "--data", dir)
		if code != 0 {
			t.Fatalf("enroll: %d %s", code, out)
		}
		if out, code := runBin(t, agentBin, "run", "--once", "--data", dir); code != 0 || !strings.Contains(out, "Posted inventory") {
			t.Fatalf("run --once: %d %s", code, out)
		}
	}
	before, err := p.admin(t).Computers(context.Background())
	if err != nil || len(before) != 3 {
		t.Fatalf("computers before restart: %d %v", len(before), err)
	}

	// Hammer the server from in-process agents while it is told to stop:
	// every request it acknowledged must be in the database afterwards.
	agents := make([]*agenttest.Agent, 4)
	for i := range agents {
		agents[i] = agenttest.New(t, p, agenttest.Options{Secret: info.Secret})
	}
	var acked sync.Map // node → []seq
	var stop atomic.Bool
	var wg sync.WaitGroup
	for _, a := range agents {
		wg.Add(1)
		go func(a *agenttest.Agent) {
			defer wg.Done()
			raw := a.RawClient(t)
			basic, _ := a.CollectBasic(context.Background())
			var seqs []uint64
			for !stop.Load() {
				s := a.NextSeq(t)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := raw.RoundTrip(ctx, s, agenttest.Envelope(t, protocol.KindInventory, s, &protocol.InventoryRequest{Basic: basic}))
				cancel()
				if err != nil {
					break // the server is going away
				}
				seqs = append(seqs, s)
			}
			acked.Store(a.Enrollment().NodeID, seqs)
		}(a)
	}
	time.Sleep(300 * time.Millisecond)
	p.terminate(t)
	stop.Store(true)
	wg.Wait()

	db, err := sql.Open("sqlite3", "file:"+filepath.Join(data, datadir.DatabaseFile)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	acked.Range(func(k, v any) bool {
		for _, s := range v.([]uint64) {
			var n int
			if err := db.QueryRow(`SELECT COUNT(*) FROM applied WHERE node_id = ? AND seq = ?`, k, int64(s)).Scan(&n); err != nil || n != 1 {
				t.Errorf("acknowledged request %s/%d is not in the database (%d, %v)", k, s, n, err)
			}
			total++
		}
		return true
	})
	db.Close()
	if total == 0 {
		t.Fatal("no request was acknowledged before the stop")
	}
	t.Logf("%d requests acknowledged during the stop, all stored", total)

	p2 := startServerBinary(t, serverBin, data)
	after, err := p2.admin(t).Computers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before)+len(agents) {
		t.Fatalf("computers after restart = %d, want %d", len(after), len(before)+len(agents))
	}
	byID := map[int64]bool{}
	for _, c := range after {
		byID[c.ID] = true
	}
	for _, c := range before {
		if !byID[c.ID] {
			t.Fatalf("computer %d lost across the restart", c.ID)
		}
		full, err := p2.admin(t).Computer(context.Background(), c.ID)
		if err != nil || full.Basic == nil || full.Basic.Hostname != c.Hostname || !full.LastSeen.Equal(c.LastSeen) {
			t.Fatalf("computer %d after restart: %+v %v", c.ID, full, err)
		}
	}
	p2.terminate(t)
}

// The CLI a new user meets: help, a wrong input or two, clear sentences.
func TestCLIErrorsAreSentences(t *testing.T) {
	serverBin, agentBin := binaries(t)
	cases := []struct {
		bin  string
		args []string
		code int
		want string
	}{
		{serverBin, []string{"computers", "list", "--data", t.TempDir()}, 4, "no running server found"},
		{serverBin, []string{"computers", "show", "0", "--data", t.TempDir()}, 2, "is not a computer ID"},
		{serverBin, []string{"computers", "list", "--admin-url", "http://127.0.0.1:1", "--token", "x"}, 4, "cannot reach the server's admin API"},
		{agentBin, []string{"enroll", "--data", t.TempDir()}, 2, "enroll needs --server, --fingerprint and --secret"},
		{agentBin, []string{"enroll", "--server", "127.0.0.1:9", "--fingerprint", "zz", "--secret", "s", "--data", t.TempDir()}, 2, "want 64 hex digits"},
		{agentBin, []string{"run", "--once", "--data", t.TempDir()}, 5, "not enrolled"},
		{agentBin, []string{"run", "--bogus"}, 2, "unknown flag"},
		{agentBin, []string{"status", "--data", t.TempDir()}, 5, "not enrolled"},
	}
	for _, c := range cases {
		out, code := runBin(t, c.bin, c.args...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("%s %v: exit %d, output %q; want exit %d and %q", filepath.Base(c.bin), c.args, code, out, c.code, c.want)
		}
	}
	// A bad address is refused before the data folder is created: bad
	// input changes nothing.
	for _, args := range [][]string{
		{"--listen", "bad"}, {"--listen", "127.0.0.1:http"}, {"--admin", "127.0.0.1"}, {"--admin", "127.0.0.1:99999"},
		{"--advertise", ":4443"}, {"--pprof", "0.0.0.0:6060"},
	} {
		data := filepath.Join(t.TempDir(), "new")
		out, code := runBin(t, serverBin, append([]string{"serve", "--data", data}, args...)...)
		if code != 2 || !strings.Contains(out, args[0]) {
			t.Errorf("serve %v: exit %d, output %q; want exit 2 naming %s", args, code, out, args[0])
		}
		if _, err := os.Stat(data); !os.IsNotExist(err) {
			t.Errorf("serve %v failed but created its data folder (%v)", args, err)
		}
	}
	for _, bin := range []string{serverBin, agentBin} {
		out, code := runBin(t, bin, "--help")
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("%s --help: %d %s", bin, code, out)
		}
	}
}
