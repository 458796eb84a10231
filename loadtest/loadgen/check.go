package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/store"
)

// whenReachable calls read again, for up to 30 s, while the admin API
// cannot be reached: the checks of a run that outlived a server restart
// (the fault suite kills the server while agents post) read it once it is
// back, instead of failing on the restart.
func whenReachable[T any](ctx context.Context, read func(context.Context) (T, error)) (T, error) {
	giveUp := time.Now().Add(30 * time.Second)
	for {
		v, err := read(ctx)
		var ue *adminapi.UnreachableError
		if err == nil || !errors.As(err, &ue) || time.Now().After(giveUp) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// The counts checks compare what the agents were told with what the admin
// API shows. The admin API has no per-computer count of applied posts, so
// "posts acknowledged = posts stored" is checked through its effects:
//
//   - every enrolled agent is one computer with its key (no two merged);
//   - each computer's last_seen lies within the last acknowledged post of
//     its agent: a later acknowledged post that was lost would leave it
//     earlier, an applied post never sent would leave it later;
//   - each software set the server holds equals the agent's, by count and
//     by set hash, and every delta with a change advanced the generation
//     by exactly one (checked as the answers arrive): a lost change would
//     show as a gap, a different set, or a "send full" request.

// checkEnrolled compares the computers list with the agents.
func (r *runner) checkEnrolled(ctx context.Context) {
	cs, err := whenReachable(ctx, r.admin.Computers)
	if err != nil {
		r.rep.check("computers listed", false, err.Error())
		return
	}
	byID := make(map[int64]store.Computer, len(cs))
	for _, c := range cs {
		byID[c.ID] = c
	}
	missing, wrongKey, merged := 0, 0, 0
	seen := map[int64]bool{}
	for _, a := range r.agents {
		if !a.enrolled {
			continue
		}
		c, ok := byID[a.computerID]
		switch {
		case !ok:
			missing++
		case c.NodeID != a.nodeID:
			wrongKey++
		}
		if seen[a.computerID] {
			merged++
		}
		seen[a.computerID] = true
	}
	r.rep.check("every enrolled agent is one computer with its own key", missing == 0 && wrongKey == 0 && merged == 0,
		fmt.Sprintf("%d computers for %d agents; %d missing, %d with another key, %d shared", len(seen), r.enrolledCount(), missing, wrongKey, merged))
}

func (r *runner) enrolledCount() int {
	n := 0
	for _, a := range r.agents {
		if a.enrolled {
			n++
		}
	}
	return n
}

// checkStored checks that every acknowledged post was stored: posts
// acknowledged, last_seen, and the software sets.
func (r *runner) checkStored(ctx context.Context) {
	posted, acked, unacked := 0, 0, 0
	for _, a := range r.agents {
		posted += a.posted
		acked += a.acked
		unacked += a.unacked
	}
	r.rep.PostsSent, r.rep.PostsAcked = posted, acked
	// A post given up at the run's time bound is not lost: it was never
	// acknowledged, and a real agent keeps it in its spool until it is.
	// That nothing acknowledged was lost is what the checks below compare.
	r.rep.check("every post sent was acknowledged within the run's bounds (none given up)", unacked == 0 && posted == acked,
		fmt.Sprintf("%d posts sent, %d acknowledged, %d given up", posted, acked, unacked))
	var anomalies int64
	for _, ph := range r.rep.Phases {
		for _, n := range ph.Anomalies {
			anomalies += n
		}
	}
	r.rep.check("no anomaly in the answers (send-full, generation gaps, repeats)", anomalies == 0, fmt.Sprintf("%d anomalies", anomalies))

	cs, err := whenReachable(ctx, r.admin.Computers)
	if err != nil {
		r.rep.check("computers listed", false, err.Error())
		return
	}
	byID := make(map[int64]store.Computer, len(cs))
	for _, c := range cs {
		byID[c.ID] = c
	}
	// On one host the server's clock is the generator's: last_seen (in
	// milliseconds) must fall inside the last acknowledged post.
	tol := time.Millisecond
	if !r.cfg.Target.loopback() {
		tol = 5 * time.Second
	}
	early, late, checked := 0, 0, 0
	var example string
	for _, a := range r.agents {
		if a.acked == 0 {
			continue
		}
		c, ok := byID[a.computerID]
		if !ok {
			early++
			continue
		}
		checked++
		switch {
		case c.LastSeen.Before(a.lastStart.Add(-tol)):
			early++
			if example == "" {
				example = fmt.Sprintf("; computer %d last seen %s, its last acknowledged post was sent %s", c.ID,
					c.LastSeen.Format(time.RFC3339Nano), a.lastStart.UTC().Format(time.RFC3339Nano))
			}
		case c.LastSeen.After(a.lastAck.Add(tol)) && a.unacked == 0:
			late++
		}
	}
	r.rep.check("last_seen of every computer is its last acknowledged post", early == 0 && late == 0,
		fmt.Sprintf("%d computers checked: %d older than their last acknowledged post, %d newer than any post%s", checked, early, late, example))
	r.checkSoftware(ctx, func(a *agent) (int, bool) { return len(a.sw.pkgs), a.sw.stored })
}

// checkSoftware compares, for a sample of agents (all with CheckSample 0),
// the software set the server holds with the agent's. want returns the
// expected count (0: nothing stored) and whether to check the agent.
func (r *runner) checkSoftware(ctx context.Context, want func(*agent) (int, bool)) {
	var sample []*agent
	for _, a := range r.agents {
		if _, ok := want(a); ok {
			sample = append(sample, a)
		}
	}
	if n := r.cfg.CheckSample; n > 0 && len(sample) > n {
		step := float64(len(sample)) / float64(n)
		picked := make([]*agent, 0, n)
		for i := range n {
			picked = append(picked, sample[int(float64(i)*step)])
		}
		sample = picked
	}
	bad := 0
	var example string
	for _, a := range sample {
		n, _ := want(a)
		pkgs, err := whenReachable(ctx, func(ctx context.Context) ([]protocol.Package, error) { return r.admin.Software(ctx, a.computerID) })
		if err != nil {
			r.rep.check("software sets readable", false, err.Error())
			return
		}
		ok := len(pkgs) == n
		if ok && n > 0 {
			ok = protocol.HashPackages(pkgs) == a.sw.hash
		}
		if !ok {
			bad++
			if example == "" {
				example = fmt.Sprintf("; computer %d holds %d packages, its agent has %d", a.computerID, len(pkgs), n)
			}
		}
	}
	r.rep.check("software stored = software acknowledged (count and set hash)", bad == 0,
		fmt.Sprintf("%d computers compared, %d differ%s", len(sample), bad, example))
}
