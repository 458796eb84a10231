package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
)

// The exit codes of activate and of the lease commands, as the README's
// table says, with the built agent: 13 no such Activation ID or product,
// 14 this computer is not Active (before any other answer), 12 every
// license expired, 10 no free seat.
func TestActivationAndLeaseExitCodes(t *testing.T) {
	_, agentBin := binaries(t)
	clk := clock.NewManual(time.Now().UTC())
	srv := servertest.New(t, servertest.WithClock(clk))
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 2, Kind: license.KindNodeLocked})
	srv.ImportLicense(t, iss, license.Payload{Product: "deployment", Seats: 1, Kind: license.KindConcurrent})
	srv.ImportLicense(t, iss, license.Payload{Product: "patch", Seats: 1, Kind: license.KindConcurrent, Expires: clk.Now().Add(time.Hour).Unix()})
	id := newActivationID(t, srv, "monitor", 1)
	enroll := func() (*agenttest.Agent, string) {
		dir := t.TempDir()
		return agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret, DataDir: dir}), dir
	}
	_, holder := enroll()
	retiredAgent, retired := enroll()
	_, other := enroll()
	expect := func(code int, want string, args ...string) {
		t.Helper()
		out, got := runBin(t, agentBin, args...)
		if got != code || !strings.Contains(out, want) {
			t.Fatalf("tally-agent %s: exit %d, want %d with %q:\n%s", strings.Join(args, " "), got, code, want, out)
		}
	}

	// 13: no such Activation ID or product.
	expect(13, "is not an Activation ID", "activate", "nosuch", "--data", holder)
	expect(13, "no such Activation ID", "activate", "ACT-AAAAAAAA-BBBBBBBB-CCCCCCCC-DDDDDDDD", "--data", holder)
	expect(13, "server knows no product \"nosuch\"", "lease", "checkout", "nosuch", "--data", holder)
	expect(13, "tally-server products list", "lease", "checkin", "nosuch", "--data", holder)
	expect(13, "is not a product name", "lease", "checkout", "No Such", "--data", holder)

	// 0, then 10: the ID's one seat and the one concurrent seat are taken.
	expect(0, "Activated", "activate", id, "--data", holder)
	expect(0, "Checked out deployment", "lease", "checkout", "deployment", "--data", holder)
	expect(10, "no free seat", "activate", id, "--data", other)
	expect(10, "expected back", "lease", "checkout", "deployment", "--data", other)

	// 14: a Retired computer is told so, whether or not a seat is free.
	if _, err := srv.Admin.SetStatus(context.Background(), retiredAgent.Enrollment().ComputerID, "Retired"); err != nil {
		t.Fatal(err)
	}
	expect(14, "status is Retired", "activate", id, "--data", retired)
	expect(14, "status is Retired", "lease", "checkout", "deployment", "--data", retired)
	expect(14, "status is Retired", "lease", "checkout", "patch", "--data", retired)

	// 12: every concurrent license of the product has expired.
	clk.Advance(2 * time.Hour)
	expect(12, "has expired", "lease", "checkout", "patch", "--data", other)

	// A check-in of a lease that is not held says so and succeeds.
	expect(0, "no lease of patch was held", "lease", "checkin", "patch", "--data", other)
	noDrift(t, srv)
}

// An agent of an older revision is answered in kind: the lease answer
// leaves out the field it does not know, so its strict decoding accepts it.
func TestLeaseAnswerForAnOlderAgent(t *testing.T) {
	srv := servertest.New(t)
	n := newNode(t, srv, srv.Secret)
	// The lease answer as revision 5 knew it.
	type leaseResponseRev5 struct {
		Granted      bool   `cbor:"1,keyasint,omitempty"`
		Expires      int64  `cbor:"2,keyasint,omitempty"`
		TTL          uint32 `cbor:"3,keyasint,omitempty"`
		ExpectedBack int64  `cbor:"4,keyasint,omitempty"`
		Message      string `cbor:"5,keyasint,omitempty"`
	}
	send := func(rev uint16) []byte {
		t.Helper()
		seq := n.NextSeq(t)
		body, _ := protocol.Marshal(&protocol.LeaseCheckoutRequest{Product: "nosuch"})
		env, _ := protocol.Marshal(protocol.Request{Major: protocol.Major, Rev: rev, Kind: protocol.KindLeaseCheckout, Seq: seq, Body: body})
		resp, err := n.raw.RoundTrip(actCtx(t, 30*time.Second), seq, env)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Body
	}
	var old leaseResponseRev5
	if err := protocol.Unmarshal(send(5), &old); err != nil || old.Granted || old.Message == "" {
		t.Fatalf("answer to a revision 5 agent: %+v %v", old, err)
	}
	var cur protocol.LeaseResponse
	if err := protocol.Unmarshal(send(protocol.Revision), &cur); err != nil || cur.Result != protocol.ActivationUnknown {
		t.Fatalf("answer to a current agent: %+v %v", cur, err)
	}
}
