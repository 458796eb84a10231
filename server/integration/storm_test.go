package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/server/servertest"
)

// A fleet connecting at once: the server handshakes only as many as its
// bound and refuses the others at once, before any cryptography; agents
// come back after a jittered wait, and every one of them gets through.
func TestHandshakeStormIsShedThenServed(t *testing.T) {
	srv := servertest.New(t, servertest.WithMaxHandshakes(2))
	const n = 60
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			a, err := agenttest.TryNew(t, srv, agenttest.Options{Secret: srv.Secret, MachineID: fmt.Sprintf("storm-%d", i)})
			if err != nil {
				errs <- fmt.Errorf("agent %d: %w", i, err)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if _, err := a.Post(ctx); err != nil {
				errs <- fmt.Errorf("agent %d post: %w", i, err)
			}
		}(i)
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if c := computerCount(t, srv); c != n {
		t.Fatalf("%d computers, want %d", c, n)
	}
	m := scrapeMetrics(t, srv)
	if m["tally_handshakes_refused_total"] == 0 {
		t.Fatalf("no handshake was refused with a bound of 2 and %d agents at once: the test shows nothing", n)
	}
	t.Logf("%v handshakes refused and retried", m["tally_handshakes_refused_total"])
}
