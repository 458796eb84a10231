package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/agent/collect/logins"
	"github.com/tallyhq/tally/agent/runner"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

// useOf reads a user's row of the users-use-license report.
func useOf(t *testing.T, srv *servertest.Server, product, user string) (store.UserUse, bool) {
	t.Helper()
	rows, err := srv.Admin.UsersUseLicense(context.Background(), product)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if strings.EqualFold(r.User, user) {
			return r, true
		}
	}
	return store.UserUse{}, false
}

// Must hold (issue 18): agents report their users over QUIC, and a real
// agent's post registers its primary user's device: the user consumes a
// seat of the per-user product, the users-use-license report (API and
// CLI) shows the device; the agent's plug-in removed, the seat is freed.
func TestAgentReportsPrimaryUserDevice(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "inventory", Seats: 2, Kind: license.KindUser})
	alice := &protocol.User{Name: "alice", Domain: "CORP", Display: "Alice A."}
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret,
		Users: logins.Fixed(alice, *alice, protocol.User{Name: "ops", Local: true})})
	a.Install(t, "inventory", "")
	a.Cycle(t)

	r, ok := useOf(t, srv, "inventory", `CORP\alice`)
	if !ok || !r.Consumes || r.Devices != 1 || r.Tokens != 0 || !strings.Contains(r.Reason, "1 device") {
		t.Fatalf("alice after her machine's post: %+v (listed %v)", r, ok)
	}
	us, err := srv.Admin.Users(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var sources []string
	for _, u := range us {
		sources = append(sources, u.Name+":"+u.Source)
	}
	if strings.Join(sources, " ") != "alice:agent ops:agent" {
		t.Fatalf("users %v, want alice and the machine's local ops, from the agent", sources)
	}
	out, errOut, code := serverCLI(t, "report", "users-use-license", "--product", "inventory", "--data", srv.Config.DataDir)
	if code != 0 || !strings.Contains(out, "inventory: 1 of 2 user seats held") || !strings.Contains(out, "DEVICES") {
		t.Fatalf("report: %d %s %s", code, out, errOut)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, `CORP\alice`) && !strings.Contains(strings.Join(strings.Fields(line), " "), "0 0 0 1 yes") {
			t.Fatalf("alice's line does not show 1 device consuming: %q", line)
		}
	}

	// The plug-in removed: the next basic inventory, which no longer
	// lists it, ends the registration and frees the seat.
	if _, err := runner.Uninstall(a.Dir, "inventory"); err != nil {
		t.Fatal(err)
	}
	a.Cycle(t)
	if r, _ := useOf(t, srv, "inventory", `CORP\alice`); r.Consumes || r.Devices != 0 {
		t.Fatalf("alice after the plug-in was removed: %+v", r)
	}
}

// Hostile users in a basic inventory over QUIC (a name over the limit, a
// control character, more users than the protocol takes) get a
// bad-request answer that names the fault, and add no user.
func TestHostileUsersRefusedOverQUIC(t *testing.T) {
	srv := servertest.New(t)
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	c := a.RawClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	basic := func() protocol.BasicInventory {
		return protocol.BasicInventory{Hostname: "h", Hints: protocol.Hints{InstanceID: "i"}}
	}
	for _, c2 := range []struct {
		name, want string
		mod        func(b *protocol.BasicInventory)
	}{
		{"long name", "longer than 256", func(b *protocol.BasicInventory) { b.PrimaryUser = &protocol.User{Name: strings.Repeat("x", 300)} }},
		{"control character", "control character", func(b *protocol.BasicInventory) { b.Users = []protocol.User{{Name: "eve\x00"}} }},
		{"65 users", "at most 64", func(b *protocol.BasicInventory) { b.Users = make([]protocol.User, 65) }},
	} {
		b := basic()
		c2.mod(&b)
		body, err := protocol.Marshal(&protocol.InventoryRequest{Basic: b})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(ctx, protocol.KindInventory, a.NextSeq(t), body)
		if resp.Status != protocol.StatusBadRequest || !strings.Contains(resp.Message, c2.want) {
			t.Fatalf("%s: %+v %v, want bad-request naming %q", c2.name, resp, err, c2.want)
		}
	}
	if us, err := srv.Admin.Users(ctx); err != nil || len(us) != 0 {
		t.Fatalf("users after hostile posts: %+v %v", us, err)
	}
}
