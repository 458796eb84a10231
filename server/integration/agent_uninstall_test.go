package integration

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

// tally-agent uninstall tells the server, which frees every seat at once
// (the failure of seed 000 was an agent uninstalled before retirement);
// then the data folder goes.
func TestAgentUninstallFreesEverySeat(t *testing.T) {
	_, agentBin := binaries(t)
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 2})
	dir := filepath.Join(t.TempDir(), "agent")
	if out, code := runBin(t, agentBin, "enroll", "--server", srv.Addr(), "--fingerprint", srv.Fingerprint(), "--secret", srv.Secret,
		"--machine-id", "uninstall-test", "--data", dir); code != 0 {
		t.Fatalf("enroll: %s", out)
	}
	if out, code := runBin(t, agentBin, "plugin", "install", "monitor", "--data", dir); code != 0 {
		t.Fatalf("plugin install: %s", out)
	}
	if out, code := runBin(t, agentBin, "run", "--once", "--data", dir); code != 0 {
		t.Fatalf("run --once: %s", out)
	}
	if u := usageOf(t, srv, "monitor"); u.Consumed != 1 {
		t.Fatalf("monitor consumed %d before the uninstall", u.Consumed)
	}
	out, code := runBin(t, agentBin, "uninstall", "--data", dir)
	if code != 0 || !strings.Contains(out, "freed 1 seats") {
		t.Fatalf("uninstall: exit %d, %s", code, out)
	}
	if u := usageOf(t, srv, "monitor"); u.Consumed != 0 {
		t.Fatalf("monitor consumed %d after the uninstall", u.Consumed)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the data folder is still there: %v", err)
	}
	cs, _ := srv.Admin.Computers(context.Background())
	if len(cs) != 1 || cs[0].NodeID != "" {
		t.Fatalf("the computer's key is still live: %+v", cs)
	}
}

// An uninstall that could not reach the server (exit 4) completes when run
// again with the server back: the queued goodbye is the one sent, the seats
// are freed once, the audit shows one goodbye, and the data folder goes.
func TestAgentUninstallRetriedAfterOutage(t *testing.T) {
	_, agentBin := binaries(t)
	addr := freeUDPAddr(t)
	data := t.TempDir()
	srv := servertest.New(t, servertest.WithDataDir(data), listenOn(addr))
	iss := srv.TrustNewIssuer(t)
	lic := srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 2})
	dir := filepath.Join(t.TempDir(), "agent")
	if out, code := runBin(t, agentBin, "enroll", "--server", srv.Addr(), "--fingerprint", srv.Fingerprint(), "--secret", srv.Secret,
		"--machine-id", "uninstall-retried", "--data", dir); code != 0 {
		t.Fatalf("enroll: %s", out)
	}
	if out, code := runBin(t, agentBin, "plugin", "install", "monitor", "--data", dir); code != 0 {
		t.Fatalf("plugin install: %s", out)
	}
	if out, code := runBin(t, agentBin, "run", "--once", "--data", dir); code != 0 {
		t.Fatalf("run --once: %s", out)
	}
	cs, _ := srv.Admin.Computers(context.Background())
	if len(cs) != 1 {
		t.Fatalf("computers %+v", cs)
	}
	computer := cs[0].ID

	srv.Stop()
	stop := refuseQUIC(t, addr)
	if out, code := runBin(t, agentBin, "uninstall", "--data", dir); code != 4 {
		t.Fatalf("uninstall with the server down: exit %d, %s", code, out)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the data folder went with the server down: %v", err)
	}
	stop()

	srv = servertest.New(t, servertest.WithDataDir(data), listenOn(addr))
	out, code := runBin(t, agentBin, "uninstall", "--data", dir)
	if code != 0 || !strings.Contains(out, "freed 1 seats") {
		t.Fatalf("uninstall with the server back: exit %d, %s", code, out)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the data folder is still there: %v", err)
	}
	ls, _ := srv.Admin.Licenses(context.Background())
	for _, l := range ls {
		if l.ID == lic.ID && l.Held != 0 {
			t.Fatalf("license %s holds %d seats after the uninstall", l.ID, l.Held)
		}
	}
	count := func(kind string) int {
		ev, err := srv.Admin.Events(context.Background(), url.Values{"kind": {kind}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range ev {
			if e.ComputerID == computer {
				n++
			}
		}
		return n
	}
	if n := count(store.EventUninstalled); n != 1 {
		t.Fatalf("%d goodbyes in the audit", n)
	}
	if n := count(store.EventSeatFreed); n != 1 {
		t.Fatalf("the seat was freed %d times", n)
	}
	noDrift(t, srv)
}

// The goodbye that retired an agent's key, sent again because its answer
// was lost, is answered with its first outcome; anything new from that key
// is refused.
func TestGoodbyeRepeatAfterTheKeyRetired(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 1})
	n := newNode(t, srv, srv.Secret)
	n.post([]protocol.Plugin{plug("monitor", "7.1")}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seq := n.NextSeq(t)
	env := agenttest.Envelope(t, protocol.KindGoodbye, seq, &protocol.GoodbyeRequest{Reason: "test"})
	first, err := n.raw.RoundTrip(ctx, seq, env)
	if err != nil {
		t.Fatal(err)
	}
	var gb protocol.GoodbyeResponse
	if err := protocol.Unmarshal(first.Body, &gb); err != nil || len(gb.Freed) != 1 {
		t.Fatalf("goodbye: %+v %v", gb, err)
	}
	again, err := n.raw.RoundTrip(ctx, seq, env)
	if err != nil || !again.Repeat || !bytes.Equal(again.Body, first.Body) {
		t.Fatalf("the goodbye sent again: %+v %v", again, err)
	}
	var pe *protocol.Error
	if _, err := n.tryPost(nil, nil); !errors.As(err, &pe) || pe.Status != protocol.StatusRevoked {
		t.Fatalf("a new post from the retired key: %v", err)
	}
	next := n.NextSeq(t)
	if _, err := n.raw.RoundTrip(ctx, next, agenttest.Envelope(t, protocol.KindGoodbye, next, &protocol.GoodbyeRequest{})); !errors.As(err, &pe) || pe.Status != protocol.StatusRevoked {
		t.Fatalf("a new goodbye from the retired key: %v", err)
	}
	ev, _ := srv.Admin.Events(context.Background(), url.Values{"kind": {store.EventUninstalled}})
	if len(ev) != 1 {
		t.Fatalf("%d goodbyes in the audit", len(ev))
	}
	noDrift(t, srv)
}

// A computer an administrator deleted holds nothing on the server: its
// agent's uninstall completes (data folder removed, exit 0) and says the
// seats were already freed. A server that cannot be reached, or that does
// not show the pinned fingerprint, still makes it exit 4 or 6 and remove
// nothing, unless --force.
func TestAgentUninstallOfADeletedComputerCompletes(t *testing.T) {
	_, agentBin := binaries(t)
	addr := freeUDPAddr(t)
	data := t.TempDir()
	srv := servertest.New(t, servertest.WithDataDir(data), listenOn(addr))
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 1})
	enroll := func(machine string) string {
		dir := filepath.Join(t.TempDir(), "agent")
		if out, code := runBin(t, agentBin, "enroll", "--server", srv.Addr(), "--fingerprint", srv.Fingerprint(), "--secret", srv.Secret,
			"--machine-id", machine, "--data", dir); code != 0 {
			t.Fatalf("enroll: %s", out)
		}
		return dir
	}
	dir := enroll("uninstall-deleted")
	if out, code := runBin(t, agentBin, "plugin", "install", "monitor", "--data", dir); code != 0 {
		t.Fatalf("plugin install: %s", out)
	}
	if out, code := runBin(t, agentBin, "run", "--once", "--data", dir); code != 0 {
		t.Fatalf("run --once: %s", out)
	}
	forced := enroll("uninstall-forced")
	id := enrolledAs(t, dir)

	srv.Stop()
	impostor := servertest.New(t, listenOn(addr))
	if out, code := runBin(t, agentBin, "uninstall", "--data", dir); code != 6 {
		t.Fatalf("uninstall against another server: exit %d, %s", code, out)
	}
	impostor.Stop()
	stop := refuseQUIC(t, addr)
	if out, code := runBin(t, agentBin, "uninstall", "--data", dir); code != 4 || !strings.Contains(out, "--force") {
		t.Fatalf("uninstall with the server down: exit %d, %s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "node.key")); err != nil {
		t.Fatalf("a failed uninstall removed the key: %v", err)
	}
	out, code := runBin(t, agentBin, "uninstall", "--force", "--data", forced)
	if code != 0 || !strings.Contains(out, "The server was not told") || !strings.Contains(out, "tally-server computers delete") {
		t.Fatalf("uninstall --force with the server down: exit %d, %s", code, out)
	}
	if _, err := os.Stat(forced); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("uninstall --force left the data folder: %v", err)
	}
	stop()

	srv = servertest.New(t, servertest.WithDataDir(data), listenOn(addr))
	if _, err := srv.Admin.DeleteComputer(context.Background(), id, false); err != nil {
		t.Fatal(err)
	}
	out, code = runBin(t, agentBin, "uninstall", "--data", dir)
	if code != 0 || !strings.Contains(out, "The server had already deleted this computer or retired this agent's key, so its seats were already freed.") {
		t.Fatalf("uninstall of a deleted computer: exit %d, %s", code, out)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the data folder is still there: %v", err)
	}
	if u := usageOf(t, srv, "monitor"); u.Consumed != 0 {
		t.Fatalf("monitor consumed %d", u.Consumed)
	}
	noDrift(t, srv)
}
