package integration

import (
	"slices"
	"strings"
	"testing"

	"github.com/tallyhq/tally/agent/agenttest"
)

// Must hold (seed 001): the patch 6.x seat is reserved by the first scan
// result or package request. The real patch plug-in at 6.5 asks for the
// catalog first: with a seat free it gets it, scans, and its scan takes
// the seat in the first cycle. A second machine, beyond the count, is
// refused the catalog and waits.
func TestAgentPatch6TakesTheFreeSeatInTheFirstCycle(t *testing.T) {
	srv := licensedServer(t, "patch-6", 1)
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	id := a.Enrollment().ComputerID
	a.Install(t, "patch", "6.5")

	res := a.Cycle(t)
	if res.Verdicts["patch-6"] != "licensed" {
		t.Fatalf("first cycle: verdicts %v, sent %v", res.Verdicts, kinds(res))
	}
	u := usageOf(t, srv, "patch-6")
	if u.Consumed != 1 || u.Waiting != 0 || !slices.Equal(holders(t, srv, "patch-6"), []int64{id}) {
		t.Fatalf("usage after the first cycle: consumed %d, waiting %d, holders %v", u.Consumed, u.Waiting, holders(t, srv, "patch-6"))
	}
	if n := productData(t, srv, id, "patch-6", "patch-scan"); n != 1 {
		t.Fatalf("%d patch scans stored, want 1", n)
	}
	if out, code := agentCLI(t, a.Dir.Path, "status"); code != 0 || !strings.Contains(out, "patch: working") {
		t.Fatalf("status (exit %d):\n%s", code, out)
	}

	b := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	b.Install(t, "patch", "6.5")
	b.Cycle(t)
	out, _ := agentCLI(t, b.Dir.Path, "status")
	if !strings.Contains(out, "catalog refused: all seats of patch-6 are taken") {
		t.Fatalf("the machine beyond the count:\n%s", out)
	}
	if u := usageOf(t, srv, "patch-6"); u.Consumed != 1 || u.Waiting != 1 {
		t.Fatalf("usage with a machine beyond the count: consumed %d, waiting %d", u.Consumed, u.Waiting)
	}
}
