package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/state"
)

// agentProc is a 'tally-agent run' daemon started from the built binary.
type agentProc struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer // JSON log lines
	done   chan error
}

// lockedBuffer is a bytes.Buffer that a test may read while the process
// writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.b.Bytes())
}

func (l *lockedBuffer) String() string { return string(l.Bytes()) }

func startAgentDaemon(t *testing.T, bin string, args ...string) *agentProc {
	t.Helper()
	p := &agentProc{stderr: new(lockedBuffer), done: make(chan error, 1)}
	p.cmd = exec.Command(bin, append([]string{"run", "--log-format", "json"}, args...)...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// stop signals the daemon and waits for it to exit.
func (p *agentProc) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		return err
	case <-time.After(15 * time.Second):
		t.Fatalf("tally-agent run did not exit after %v\n%s", sig, p.stderr)
		return nil
	}
}

// posted sums the "posted" log lines of a daemon: records sent, and how
// many of those the server had applied already.
func (p *agentProc) posted(t *testing.T) (sent, repeats int) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(p.stderr.Bytes()))
	for sc.Scan() {
		var l struct {
			Msg     string `json:"msg"`
			Sent    int    `json:"sent"`
			Repeats int    `json:"repeats"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "posted" {
			sent += l.Sent
			repeats += l.Repeats
		}
	}
	return sent, repeats
}

func recName(seq uint64) string { return fmt.Sprintf("%020d.rec", seq) }

// enrolledAgent starts the server binary at addr, enrolls a fresh agent
// data folder with the agent binary, and returns both.
func enrolledAgent(t *testing.T, serverBin, agentBin, serverData, addr, machineID string) (*serverProc, string) {
	t.Helper()
	p := startServerBinaryAt(t, serverBin, serverData, addr)
	info, err := p.admin(t).EnrollInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Server != addr {
		t.Fatalf("server advertises %s, want %s", info.Server, addr)
	}
	agentData := filepath.Join(t.TempDir(), "agent")
	out, code := runBin(t, agentBin, "enroll", "--server", info.Server, "--fingerprint", info.Fingerprint, "--secret", info.Secret,
		"--machine-id", machineID, "--data", agentData)
	if code != 0 {
		t.Fatalf("enroll: exit %d\n%s", code, out)
	}
	return p, agentData
}

func nodeOf(t *testing.T, agentData string) string {
	t.Helper()
	e, err := (state.Dir{Path: agentData}).Enrollment()
	if err != nil {
		t.Fatal(err)
	}
	return e.NodeID
}

// queueWhileUnreachable runs 'tally-agent run --once' n times while the
// server cannot be reached: each exits 4 and leaves one more post queued.
func queueWhileUnreachable(t *testing.T, agentBin, agentData string, n int) {
	t.Helper()
	for range n {
		before := spoolSeqs(t, agentData)
		out, code := runBin(t, agentBin, "run", "--once", "--data", agentData)
		after := spoolSeqs(t, agentData)
		if code != 4 || !strings.Contains(out, "posts wait in the spool") {
			t.Fatalf("run --once with the server down: exit %d, want 4\n%s", code, out)
		}
		if len(after) != len(before)+1 || !slices.Equal(after[:len(before)], before) {
			t.Fatalf("spool went from %v to %v: want one more post, none lost", before, after)
		}
	}
}

// Must hold: posts queued while the server is down (by 'run --once', by a
// daemon killed with SIGKILL mid-attempt, and by a daemon started again)
// all arrive once the server is back, each exactly once, in sequence order.
// The server's own database is the judge.
func TestAgentSpoolQueuedPostsArriveExactlyOnceInOrder(t *testing.T) {
	serverBin, agentBin := binaries(t)
	serverData, addr := t.TempDir(), freeUDPAddr(t)
	p, agentData := enrolledAgent(t, serverBin, agentBin, serverData, addr, "spool-order")
	if out, code := runBin(t, agentBin, "run", "--once", "--data", agentData); code != 0 {
		t.Fatalf("first post: exit %d\n%s", code, out)
	}
	firstPost := lastSeq(t, agentData)
	p.terminate(t)

	// The server is down. 'run --once' queues and exits 4, three times.
	release := refuseQUIC(t, addr)
	queueWhileUnreachable(t, agentBin, agentData, 3)
	release() // from here on nothing listens at all

	// A daemon queues its first post and is killed while it tries to send.
	d1 := startAgentDaemon(t, agentBin, "--data", agentData, "--interval", "1h", "--max-backoff", "1s")
	waitFor(t, 10*time.Second, "the daemon's post to be queued", func() bool { return len(spoolSeqs(t, agentData)) == 4 })
	time.Sleep(300 * time.Millisecond) // inside its connection attempt
	d1.stop(t, syscall.SIGKILL)

	// The agent is started again, and queues one more; then the server
	// comes back on the same data folder (same fingerprint) and address.
	d2 := startAgentDaemon(t, agentBin, "--data", agentData, "--interval", "1h", "--max-backoff", "1s")
	waitFor(t, 10*time.Second, "the restarted daemon's post to be queued", func() bool { return len(spoolSeqs(t, agentData)) == 5 })
	queued := spoolSeqs(t, agentData)
	p2 := startServerBinaryAt(t, serverBin, serverData, addr)
	waitFor(t, 20*time.Second, "the spool to drain and the daemon to say so", func() bool {
		sent, _ := d2.posted(t)
		return len(spoolSeqs(t, agentData)) == 0 && sent >= len(queued)
	})
	if err := d2.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("daemon after SIGTERM: %v\n%s", err, d2.stderr)
	}
	if sent, repeats := d2.posted(t); sent != len(queued) || repeats != 0 {
		t.Errorf("daemon logged %d sent, %d repeats; want %d sent, none a repeat\n%s", sent, repeats, len(queued), d2.stderr)
	}
	p2.terminate(t)

	// Each queued post applied once, in increasing sequence order, after
	// the first post and nothing else.
	rows := appliedByNode(t, serverData, nodeOf(t, agentData))
	var got []uint64
	for i, r := range rows {
		if r.Seq > firstPost {
			got = append(got, r.Seq)
		}
		if i > 0 && (r.Seq <= rows[i-1].Seq || r.At < rows[i-1].At) {
			t.Errorf("applied out of order: %+v after %+v", r, rows[i-1])
		}
	}
	if !slices.Equal(got, queued) {
		t.Fatalf("applied after the outage %v, want the queued %v, each once, in order (all rows: %+v)", got, queued, rows)
	}
	t.Logf("queued %v while the server was down; applied once each, in order", queued)
}

// lastSeq is the last sequence number the agent allocated.
func lastSeq(t *testing.T, agentData string) uint64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(agentData, state.SeqFile))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Must hold: a spool record truncated mid-record (power loss) is set aside
// into spool/bad and reported by 'run --once' and by 'status'; the intact
// records around it are sent.
func TestAgentSpoolTruncatedRecordIsSetAsideAndTheRestSent(t *testing.T) {
	serverBin, agentBin := binaries(t)
	serverData, addr := t.TempDir(), freeUDPAddr(t)
	p, agentData := enrolledAgent(t, serverBin, agentBin, serverData, addr, "spool-truncated")
	p.terminate(t)

	release := refuseQUIC(t, addr)
	queueWhileUnreachable(t, agentBin, agentData, 3)
	release()
	queued := spoolSeqs(t, agentData)
	broken := queued[1]
	path := filepath.Join(agentData, "spool", recName(broken))
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()/2); err != nil {
		t.Fatal(err)
	}

	p2 := startServerBinaryAt(t, serverBin, serverData, addr)
	out, code := runBin(t, agentBin, "run", "--once", "--data", agentData)
	if code != 0 || !strings.Contains(out, "damaged spool record set aside: "+recName(broken)+": truncated") || !strings.Contains(out, "Posted inventory") {
		t.Fatalf("run --once: exit %d, want 0, the damaged record reported and the rest posted\n%s", code, out)
	}
	if left := spoolSeqs(t, agentData); len(left) != 0 {
		t.Fatalf("still queued after the flush: %v", left)
	}
	if moved, err := os.Stat(filepath.Join(agentData, "spool", "bad", recName(broken))); err != nil || moved.Size() != fi.Size()/2 {
		t.Fatalf("the broken record is not in spool/bad as it was: %v", err)
	}
	out, code = runBin(t, agentBin, "status", "--data", agentData)
	if code != 0 || !strings.Contains(out, "0 posts queued, 0 bytes, 1 damaged set aside") {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	out, _ = runBin(t, agentBin, "status", "--json", "--data", agentData)
	var st struct {
		Spool struct{ Records, Damaged int }
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Spool.Damaged != 1 || st.Spool.Records != 0 {
		t.Fatalf("status --json: %+v %v\n%s", st, err, out)
	}
	p2.terminate(t)

	// The server applied the intact ones (and the post of the last run),
	// in order, and never the broken one.
	rows := appliedByNode(t, serverData, nodeOf(t, agentData))
	var got []uint64
	for _, r := range rows {
		got = append(got, r.Seq)
	}
	want := []uint64{queued[0], queued[2], queued[2] + 1}
	var after []uint64
	for _, s := range got {
		if s >= queued[0] {
			after = append(after, s)
		}
	}
	if !slices.Equal(after, want) {
		t.Fatalf("applied %v, want %v: the intact records and the new post, once each, in order, and not %d", got, want, broken)
	}
}
