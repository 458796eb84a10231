package metrics

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/protocol"
)

type fakeSource struct{}

func (fakeSource) SeatCounts(context.Context) ([]SeatCount, error) {
	return []SeatCount{{Product: "monitor", Held: 3, Granted: 10}}, nil
}
func (fakeSource) Backlog(context.Context) (int64, int64, error) { return 7, 4, nil }

func TestExposition(t *testing.T) {
	m := New()
	m.Watch(fakeSource{})
	m.Request(protocol.KindInventory, protocol.StatusOK, 3*time.Millisecond, 120)
	m.Request(protocol.KindInventory, protocol.StatusBusy, time.Millisecond, 80)
	m.Verdicts([]protocol.ProductVerdict{{Product: "monitor", Verdict: protocol.VerdictLicensed}})
	m.Commit(2*time.Millisecond, 17)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(b)
	for _, want := range []string{
		`tally_requests_total{kind="inventory",status="ok"} 1`,
		`tally_requests_total{kind="inventory",status="busy"} 1`,
		`tally_requests_shed_total 1`,
		`tally_verdicts_total{product="monitor",verdict="licensed"} 1`,
		`tally_seats_held{product="monitor"} 3`,
		`tally_seats_granted{product="monitor"} 10`,
		`tally_agent_spool_backlog 7`,
		`tally_db_commit_batch_size_sum 17`,
		`tally_request_bytes_total 200`,
		`# TYPE tally_request_duration_seconds histogram`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q", want)
		}
	}
}
