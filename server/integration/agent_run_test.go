package integration

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/agent/runner"
	"github.com/tallyhq/tally/agent/state"
	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/common/logging"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/servertest"
)

// runAgent runs a.Run in the background; the returned function stops it
// and fails the test if it does not return promptly.
func runAgent(t *testing.T, a *agenttest.Agent, o runner.RunOptions) (stop func() time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, o) }()
	stopped := false
	stop = func() time.Duration {
		t.Helper()
		if stopped {
			return 0
		}
		stopped = true
		start := time.Now()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after its context ended", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return within 5 s of its context ending")
		}
		return time.Since(start)
	}
	t.Cleanup(func() { stop() })
	return stop
}

// pointAt records addr as the agent's server, as re-running enroll with
// the same fingerprint does when a server moved, and opens the agent again.
//
// The tests restart in-process servers at another address than the first
// one because the listener leaves its UDP socket open after Shutdown (in
// a process, exit closes it).
func pointAt(t *testing.T, a *agenttest.Agent, addr string) *agenttest.Agent {
	t.Helper()
	e := a.Enrollment()
	e.Server = addr
	if err := a.Dir.SaveEnrollment(e); err != nil {
		t.Fatal(err)
	}
	a.Close()
	ra, err := runner.Open(runner.Config{Dir: a.Dir, Logger: logging.Discard(), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ra.Close() })
	return &agenttest.Agent{Agent: ra, T: t, Dir: a.Dir, MachineID: a.MachineID}
}

// While the server is unreachable the agent backs off and tries again on
// its own: it must not wait for the next collection (an hour here) to
// send what is queued once the server is back.
func TestAgentRunRetriesAfterBackoffUntilTheServerIsBack(t *testing.T) {
	srv := servertest.New(t)
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	data := srv.Config.DataDir
	srv.Stop()
	addr := freeUDPAddr(t)
	release := refuseQUIC(t, addr)
	a = pointAt(t, a, addr)

	stop := runAgent(t, a, runner.RunOptions{Interval: time.Hour, MaxBackoff: 200 * time.Millisecond})
	waitFor(t, 5*time.Second, "the first post to be queued and tried", func() bool {
		st, _ := a.Dir.LoadStatus()
		return len(spoolSeqs(t, a.Dir.Path)) == 1 && st.LastError != ""
	})
	time.Sleep(500 * time.Millisecond) // a few failed attempts
	if n := len(spoolSeqs(t, a.Dir.Path)); n != 1 {
		t.Fatalf("%d records queued while the server is away, want 1: failures must not queue more", n)
	}

	release()
	srv2 := servertest.New(t, servertest.WithDataDir(data), listenOn(addr))
	waitFor(t, 10*time.Second, "the queued post to be sent after the back-off", func() bool {
		return len(spoolSeqs(t, a.Dir.Path)) == 0
	})
	stop()
	c, err := srv2.Admin.Computer(ctx(t), a.Enrollment().ComputerID)
	if err != nil || c.Basic == nil {
		t.Fatalf("the post did not arrive: %+v %v", c, err)
	}
}

// A Run stopped while a request hangs (the server does not answer) returns
// at once; the post stays queued.
func TestAgentRunStopsPromptlyMidFlush(t *testing.T) {
	srv := servertest.New(t)
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	srv.Stop()
	// A socket that swallows every packet: the agent's handshake hangs.
	hole, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	a = pointAt(t, a, hole.LocalAddr().String())
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := hole.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	stop := runAgent(t, a, runner.RunOptions{Interval: time.Hour})
	waitFor(t, 5*time.Second, "the post to be queued", func() bool { return len(spoolSeqs(t, a.Dir.Path)) == 1 })
	time.Sleep(300 * time.Millisecond) // now inside the dial, which would take 10 s
	if took := stop(); took > 2*time.Second {
		t.Fatalf("Run took %v to stop mid-flush", took)
	}
	if n := len(spoolSeqs(t, a.Dir.Path)); n != 1 {
		t.Fatalf("%d records queued after the stop, want the one post", n)
	}
}

// An agent the server refuses (its computer deleted) keeps running, keeps
// its posts, records the refusal, and does not hammer the server.
func TestAgentRunRefusedKeepsRunningAndQueued(t *testing.T) {
	srv := servertest.New(t)
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	if _, err := srv.Admin.DeleteComputer(ctx(t), a.Enrollment().ComputerID, false); err != nil {
		t.Fatal(err)
	}
	stop := runAgent(t, a, runner.RunOptions{Interval: time.Hour, MaxBackoff: 50 * time.Millisecond})
	waitFor(t, 5*time.Second, "the refusal to be recorded", func() bool {
		st, _ := a.Dir.LoadStatus()
		return st.Refused != ""
	})
	first, _ := a.Dir.LoadStatus()
	time.Sleep(500 * time.Millisecond)
	later, _ := a.Dir.LoadStatus()
	if !later.LastAttempt.Equal(first.LastAttempt) {
		t.Errorf("the refused agent tried again within 0.5 s (%v, then %v): it should wait for the next collection", first.LastAttempt, later.LastAttempt)
	}
	stop()
	if n := len(spoolSeqs(t, a.Dir.Path)); n != 1 {
		t.Fatalf("%d records queued, want the refused post kept", n)
	}
	_, err := a.Flush(ctx(t))
	if !errors.Is(err, runner.ErrRefused) {
		t.Fatalf("flush after the refusal: %v, want ErrRefused", err)
	}
}

// Run schedules its posts by the agent's clock, not the wall clock behind
// it: while the injected clock stands still no second post is made, however
// long the interval has passed in real time, and one is made soon after the
// clock moves past the interval.
func TestAgentRunSchedulesByItsClock(t *testing.T) {
	srv := servertest.New(t)
	enrolled := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	enrolled.Close()
	clk := clock.NewManual(time.Now())
	var posts atomic.Int32
	ra, err := runner.Open(runner.Config{Dir: enrolled.Dir, Logger: logging.Discard(), Version: "test", Clock: clk,
		OnSend: func(s runner.Sent) {
			if s.Kind == protocol.KindInventory {
				posts.Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ra.Close() })
	a := &agenttest.Agent{Agent: ra, T: t, Dir: enrolled.Dir, MachineID: enrolled.MachineID}

	const interval = 50 * time.Millisecond
	runAgent(t, a, runner.RunOptions{Interval: interval})
	waitFor(t, 10*time.Second, "the first post", func() bool { return posts.Load() == 1 })
	time.Sleep(20 * interval) // twenty intervals of real time, none of the agent's
	if n := posts.Load(); n != 1 {
		t.Fatalf("%d posts while the agent's clock stood still, want 1", n)
	}
	clk.Advance(interval)
	waitFor(t, 10*time.Second, "the post after the clock moved one interval", func() bool { return posts.Load() == 2 })
	// The status is written after the post is sent: wait for it.
	waitFor(t, 10*time.Second, "the status stamped by the agent's clock", func() bool { return a.Status(t).LastSuccess.Equal(clk.Now()) })
}

// Enrollment stamps the enrollment it records with the clock it is given.
func TestEnrollStampsWithItsClock(t *testing.T) {
	srv := servertest.New(t)
	dir, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2031, 5, 4, 3, 2, 1, 0, time.UTC)
	e, _, err := runner.Enroll(ctx(t), dir, runner.EnrollOptions{Server: srv.Addr(), Fingerprint: srv.Fingerprint(), Secret: srv.Secret,
		MachineID: "enroll-clock-1", Version: "test", Logger: logging.Discard(), Clock: clock.NewManual(at)})
	if err != nil {
		t.Fatal(err)
	}
	if !e.EnrolledAt.Equal(at) {
		t.Errorf("enrolled at %v, want the given clock's %v", e.EnrolledAt, at)
	}
	if saved, err := dir.Enrollment(); err != nil || !saved.EnrolledAt.Equal(at) {
		t.Errorf("saved enrollment %+v %v, want enrolled at %v", saved, err, at)
	}
}
