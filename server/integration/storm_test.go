package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/servertest"
)

// A fleet connecting at once: the server handshakes only as many as its
// bound and refuses the others at once, before any cryptography; agents
// come back after a jittered wait, and every one of them gets through.
// When the same fleet reconnects after its connections closed (as agents
// close theirs after each cycle, or after an outage), a refused attempt
// does not cost an agent its session ticket: every reconnect resumes.
// The TCP listener is off: agents refused again and again also try TCP
// (TestAgentTriesTCPWhenQUICHandshakesAreRefused), and this test is about
// QUIC's shedding and the session a refused attempt keeps. Thirty agents
// against one handshake slot per address (all come from 127.0.0.1) are
// refused hundreds of times each round; sixty made the first round take
// 15-32 s under -race on a loaded 2-core machine, past the enrollment's
// window, while thirty take 3-6 s (docs/RELIABILITY.md).
func TestHandshakeStormIsShedThenServed(t *testing.T) {
	srv := servertest.New(t, servertest.WithMaxHandshakes(2), func(c *daemon.Config) { c.NoTCP = true })
	const n = 30
	agents := make([]*agenttest.Agent, n)
	storm := func(round string, post func(i int) error) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		start := make(chan struct{})
		began := time.Now()
		for i := range n {
			wg.Go(func() {
				<-start
				if err := post(i); err != nil {
					errs <- fmt.Errorf("%s, agent %d (after %v): %w", round, i, time.Since(began).Round(time.Millisecond), err)
				}
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		t.Logf("%s: %v", round, time.Since(began).Round(time.Millisecond))
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	postOnce := func(a *agenttest.Agent) error {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, err := a.Post(ctx)
		return err
	}
	storm("first connection", func(i int) error {
		a, err := agenttest.TryNew(t, srv, agenttest.Options{Secret: srv.Secret, MachineID: fmt.Sprintf("storm-%d", i)})
		if err != nil {
			return err
		}
		agents[i] = a
		return postOnce(a)
	})
	if c := computerCount(t, srv); c != n {
		t.Fatalf("%d computers, want %d", c, n)
	}
	m := scrapeMetrics(t, srv)
	if m["tally_handshakes_refused_total"] == 0 {
		t.Fatalf("no handshake was refused with a bound of 2 and %d agents at once: the test shows nothing", n)
	}
	t.Logf("%v handshakes refused and retried", m["tally_handshakes_refused_total"])

	for _, a := range agents {
		a.Close()
	}
	storm("reconnect", func(i int) error { return postOnce(agents[i]) })
	m2 := scrapeMetrics(t, srv)
	refused := m2["tally_handshakes_refused_total"] - m["tally_handshakes_refused_total"]
	full := m2[`tally_quic_handshakes_total{session="full"}`] - m[`tally_quic_handshakes_total{session="full"}`]
	resumed := m2[`tally_quic_handshakes_total{session="resumed"}`] - m[`tally_quic_handshakes_total{session="resumed"}`]
	t.Logf("reconnect: %v handshakes refused and retried; %v full, %v resumed", refused, full, resumed)
	if refused == 0 {
		t.Fatalf("no reconnect was refused with a bound of 2 and %d agents at once: the test shows nothing", n)
	}
	if full != 0 || resumed == 0 {
		t.Fatalf("reconnect: %v full handshakes and %v resumed over QUIC; want every agent to resume its session, refused or not", full, resumed)
	}
}
