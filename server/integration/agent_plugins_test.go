package integration

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/agent/cli"
	"github.com/tallyhq/tally/agent/runner"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
)

// productData counts the stored product data posts of a computer: the
// admin API has no reader for it, so the test reads the server's database.
func productData(t *testing.T, srv *servertest.Server, id int64, product, kind string) int {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(srv.Config.DataDir, datadir.DatabaseFile)+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	err = db.QueryRow(`SELECT COALESCE(SUM(posts), 0) FROM product_data WHERE computer_id = ? AND product = ? AND kind = ?`, id, product, kind).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func kinds(res runner.FlushResult) []protocol.Kind {
	var out []protocol.Kind
	for _, r := range res.Records {
		out = append(out, r.Kind)
	}
	return out
}

func holders(t *testing.T, srv *servertest.Server, product string) []int64 {
	t.Helper()
	var out []int64
	for _, h := range usageOf(t, srv, product).Holders {
		out = append(out, h.ComputerID)
	}
	return out
}

// agentCLI runs the agent's command line in-process on a data folder.
func agentCLI(t *testing.T, data string, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	m := &cli.Main{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }, ConfigFile: filepath.Join(t.TempDir(), "none.conf")}
	code := m.Run(context.Background(), append(args, "--data", data))
	return out.String(), code
}

// Must hold: installing monitor consumes its seat on the next post and
// its metrics are stored; removing it sends a goodbye that frees the seat
// at once, and the next basic inventory no longer lists it.
func TestAgentPluginMonitorInstallAndRemove(t *testing.T) {
	srv := licensedServer(t, "monitor", 5)
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	id := a.Enrollment().ComputerID
	a.Install(t, "monitor", "")

	res := a.Cycle(t)
	if res.Verdicts["monitor"] != "licensed" || !slices.Contains(kinds(res), protocol.KindPluginData) {
		t.Fatalf("verdicts %v, sent %v", res.Verdicts, kinds(res))
	}
	if h := holders(t, srv, "monitor"); !slices.Equal(h, []int64{id}) {
		t.Fatalf("monitor holders %v, want [%d]", h, id)
	}
	if n := productData(t, srv, id, "monitor", "metrics"); n != 1 {
		t.Fatalf("%d metrics posts stored, want 1", n)
	}
	why, err := srv.Admin.Why(context.Background(), id, "monitor")
	if err != nil || !why.Holds || why.Plugin == "" {
		t.Fatalf("why: %+v %v", why, err)
	}
	a.Cycle(t)
	if n := productData(t, srv, id, "monitor", "metrics"); n != 2 {
		t.Fatalf("%d metrics posts stored after two cycles", n)
	}
	out, code := agentCLI(t, a.Dir.Path, "status")
	if code != 0 || !strings.Contains(out, "monitor: working (monitor licensed)") {
		t.Fatalf("status: %d\n%s", code, out)
	}

	out, code = agentCLI(t, a.Dir.Path, "plugin", "remove", "monitor")
	if code != 0 || !strings.Contains(out, "seats freed: monitor") {
		t.Fatalf("plugin remove: %d\n%s", code, out)
	}
	if h := holders(t, srv, "monitor"); len(h) != 0 {
		t.Fatalf("monitor still held by %v after the goodbye", h)
	}
	res = a.Cycle(t)
	if slices.Contains(kinds(res), protocol.KindPluginData) {
		t.Fatal("a removed plug-in still posts")
	}
	c, err := srv.Admin.Computer(context.Background(), id)
	if err != nil || c.Basic == nil {
		t.Fatal(err)
	}
	for _, p := range c.Basic.Plugins {
		if p.Name == "monitor" {
			t.Fatalf("the basic inventory after removal still lists monitor: %+v", c.Basic.Plugins)
		}
	}
	// Installed again, it is listed again (the whole basic inventory is
	// sent after a goodbye, though its hash is the one before removal).
	a.Install(t, "monitor", "")
	if res := a.Cycle(t); res.Verdicts["monitor"] != "licensed" {
		t.Fatalf("reinstalled monitor: %v", res.Verdicts)
	}
}

// Must hold: a plug-in told discarded:no-seat stops sending its data and
// status says so; a freed seat is taken by its next post and it resumes.
func TestAgentPluginNoSeatStopsAndResumes(t *testing.T) {
	srv := licensedServer(t, "monitor", 1)
	holder := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	holder.Install(t, "monitor", "")
	holder.Cycle(t)

	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	id := a.Enrollment().ComputerID
	a.Install(t, "monitor", "")
	res := a.Cycle(t)
	if res.Verdicts["monitor"] != "discarded:no-seat" {
		t.Fatalf("verdicts %v", res.Verdicts)
	}
	// The verdict came with the inventory post, before the plug-in's turn:
	// not even one metrics post is made.
	if slices.Contains(kinds(res), protocol.KindPluginData) {
		t.Fatalf("a refused monitor posted metrics: %v", kinds(res))
	}
	res = a.Cycle(t)
	if slices.Contains(kinds(res), protocol.KindPluginData) || productData(t, srv, id, "monitor", "metrics") != 0 {
		t.Fatalf("a refused monitor posted metrics: %v", kinds(res))
	}
	out, code := agentCLI(t, a.Dir.Path, "status")
	want := "monitor: not licensed (discarded:no-seat: all seats of monitor are taken); metrics are not collected"
	if code != 0 || !strings.Contains(out, want) {
		t.Fatalf("status (exit %d) lacks %q:\n%s", code, want, out)
	}
	out, _ = agentCLI(t, a.Dir.Path, "status", "--json")
	var st struct {
		Plugins []struct {
			Name, State string
		} `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Plugins) != 1 || st.Plugins[0].State != "stopped" {
		t.Fatalf("status --json: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, freed, err := holder.RemovePlugin(ctx, "monitor"); err != nil || !slices.Contains(freed, "monitor") {
		t.Fatalf("holder's goodbye: %v %v", freed, err)
	}
	res = a.Cycle(t)
	if res.Verdicts["monitor"] != "licensed" || !slices.Contains(kinds(res), protocol.KindPluginData) {
		t.Fatalf("after the seat was freed: verdicts %v, sent %v", res.Verdicts, kinds(res))
	}
	if productData(t, srv, id, "monitor", "metrics") != 1 {
		t.Fatal("metrics not stored once licensed")
	}
}

// software-management runs a queued collect-now task (an extra inventory
// post in the same cycle); deployment checks in and holds its seat.
func TestAgentPluginTasksAndCheckIn(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "software-management", Seats: 5})
	srv.ImportLicense(t, iss, license.Payload{Product: "deployment", Seats: 5})
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	id := a.Enrollment().ComputerID
	a.Install(t, "software-management", "")
	a.Install(t, "deployment", "")

	res := a.Cycle(t)
	if res.Verdicts["software-management"] != "licensed" || res.Verdicts["deployment"] != "licensed" {
		t.Fatalf("verdicts %v", res.Verdicts)
	}
	if !slices.Contains(kinds(res), protocol.KindCheckIn) {
		t.Fatalf("no check-in sent: %v", kinds(res))
	}
	if h := holders(t, srv, "deployment"); !slices.Equal(h, []int64{id}) {
		t.Fatalf("deployment holders %v", h)
	}
	if n := len(inventoryPosts(res)); n != 1 {
		t.Fatalf("%d inventory posts without a task", n)
	}

	if _, err := srv.Admin.AddTask(context.Background(), id, protocol.TaskCollectNow); err != nil {
		t.Fatal(err)
	}
	res = a.Cycle(t)
	if n := len(inventoryPosts(res)); n != 2 {
		t.Fatalf("collect-now task: %d inventory posts in the cycle, want 2 (%v)", n, kinds(res))
	}
	// Delivered once: the next cycle has no task.
	if n := len(inventoryPosts(a.Cycle(t))); n != 1 {
		t.Fatalf("the task ran again: %d inventory posts", n)
	}
}

// The CLI flow with the built agent binary against a real server:
// enroll, plugin install monitor, run --once, status, plugin remove, and
// inventory --json --root.
func TestAgentPluginCLIWithTheBuiltBinary(t *testing.T) {
	_, agentBin := binaries(t)
	srv := licensedServer(t, "monitor", 2)
	data := filepath.Join(t.TempDir(), "agent")
	run := func(want string, args ...string) string {
		t.Helper()
		out, code := runBin(t, agentBin, append(args, "--data", data)...)
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("tally-agent %v: exit %d, want %q in\n%s", args, code, want, out)
		}
		return out
	}
	run("Enrolled", "enroll", "--server", srv.Addr(), "--fingerprint", srv.Fingerprint(), "--secret", srv.Secret, "--machine-id", "cli-plugins")
	run("Installed monitor", "plugin", "install", "monitor")
	run("monitor", "plugin", "list")
	out := run("Posted inventory", "run", "--once")
	if !strings.Contains(out, "monitor") || !strings.Contains(out, "licensed") {
		t.Fatalf("run --once:\n%s", out)
	}
	if h := usageOf(t, srv, "monitor").Holders; len(h) != 1 {
		t.Fatalf("holders %v", h)
	}
	run("monitor: working", "status")
	run("seats freed: monitor", "plugin", "remove", "monitor")
	if h := usageOf(t, srv, "monitor").Holders; len(h) != 0 {
		t.Fatalf("holders after remove %v", h)
	}
	if out, code := runBin(t, agentBin, "plugin", "install", "nosuch", "--data", data); code != 2 || !strings.Contains(out, "no plug-in") {
		t.Fatalf("install of an unknown plug-in: %d %s", code, out)
	}

	root := fakeRoot(t, 30)
	out = run("", "inventory", "--json", "--root", root)
	var post protocol.InventoryRequest
	if err := json.Unmarshal([]byte(out), &post); err != nil {
		t.Fatalf("inventory --json: %v\n%.500s", err, out)
	}
	if post.Software == nil || post.Software.Count != 30 || post.Basic.Hostname == "" {
		t.Fatalf("inventory --json --root: %+v", post.Software)
	}
}

// A running agent picks up a plug-in installed or removed under it at its
// next cycle, without a restart.
func TestAgentPluginInstalledUnderARunningAgent(t *testing.T) {
	srv := licensedServer(t, "monitor", 5)
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	id := a.Enrollment().ComputerID
	stop := runAgent(t, a, runner.RunOptions{Interval: 300 * time.Millisecond, MaxBackoff: time.Second})
	a.Install(t, "monitor", "")
	waitFor(t, 20*time.Second, "the running agent to take a monitor seat and post metrics", func() bool {
		return len(holders(t, srv, "monitor")) == 1 && productData(t, srv, id, "monitor", "metrics") > 0
	})
	if _, err := runner.Uninstall(a.Dir, "monitor"); err != nil {
		t.Fatal(err)
	}
	// Without a goodbye, the next inventory post no longer lists it, which
	// frees the seat too.
	waitFor(t, 20*time.Second, "the seat to be freed", func() bool { return len(holders(t, srv, "monitor")) == 0 })
	stop()
}
