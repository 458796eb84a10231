package nodeapi

import (
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/protocol"
)

// The handler's memory of live and unknown nodes ages by the clock it is
// given, so that a test moves time instead of sleeping past liveFor.
func TestHandlerAgesItsMemoryByItsClock(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC))
	h := New(nil, nil, nil, WithClock(clk))

	h.rememberLive("node")
	clk.Advance(liveFor - time.Second)
	if !h.liveNode("node") {
		t.Fatal("a node seen live is forgotten before liveFor has passed on the handler's clock")
	}
	clk.Advance(2 * time.Second)
	if h.liveNode("node") {
		t.Fatal("a node seen live is still remembered after liveFor has passed on the handler's clock")
	}

	refusal := protocol.Errorf(protocol.StatusNotEnrolled, "unknown key")
	h.unknown.remember("key", refusal, clk.Now())
	clk.Advance(unknownFor - time.Millisecond)
	if got := h.unknown.lookup("key", clk.Now()); got != refusal {
		t.Fatalf("refusal forgotten early: %v", got)
	}
	clk.Advance(2 * time.Millisecond)
	if got := h.unknown.lookup("key", clk.Now()); got != nil {
		t.Fatalf("refusal kept past unknownFor: %v", got)
	}
}

func TestHandlerDefaultsToTheSystemClock(t *testing.T) {
	h := New(nil, nil, nil)
	if _, ok := h.clock.(clock.System); !ok {
		t.Fatalf("default clock %T, want clock.System", h.clock)
	}
	h.rememberLive("node")
	if !h.liveNode("node") {
		t.Fatal("a node just seen live is not remembered")
	}
}
