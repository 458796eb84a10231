package integration

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
)

// A lease's TTL outside 1s to a week is refused by the agent before it is
// sent (2^32 seconds and a minute was granted as a one-minute lease), and
// by the server with a sentence; neither takes a seat.
func TestLeaseTTLOutOfRangeIsRefused(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "deployment", Seats: 1, Kind: license.KindConcurrent})
	n := newNode(t, srv, srv.Secret)

	for _, ttl := range []time.Duration{(1<<32 + 60) * time.Second, -time.Minute, 8 * 24 * time.Hour} {
		lr, err := n.LeaseCheckout(actCtx(t, 30*time.Second), "deployment", ttl)
		if err == nil || lr.Granted || !strings.Contains(err.Error(), "1s to 168h") {
			t.Errorf("--ttl %v: %+v %v", ttl, lr, err)
		}
	}
	var resp protocol.LeaseResponse
	err := n.call(protocol.KindLeaseCheckout, &protocol.LeaseCheckoutRequest{Product: "deployment", TTL: math.MaxUint32}, &resp)
	if err == nil || resp.Granted || !strings.Contains(err.Error(), "at most 168h") {
		t.Errorf("server took a TTL of 2^32-1 seconds: %+v %v", resp, err)
	}
	ls, err := srv.Admin.Leases(context.Background())
	if err != nil || len(ls) != 0 {
		t.Fatalf("a lease was granted: %+v %v", ls, err)
	}
	lr, err := n.LeaseCheckout(actCtx(t, 30*time.Second), "deployment", protocol.MaxLeaseTTL)
	if err != nil || !lr.Granted || lr.TTL != 604800 {
		t.Fatalf("a week's lease: %+v %v", lr, err)
	}
}
