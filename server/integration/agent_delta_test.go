package integration

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/agent/runner"
	"github.com/tallyhq/tally/agent/runner/delta"
	"github.com/tallyhq/tally/agent/software"
	"github.com/tallyhq/tally/agent/software/softwaretest"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
)

// dpkgStatus is a dpkg status file of n installed packages; version
// changes the version of the packages whose index is in it.
func dpkgStatus(n int, version map[int]string, skip map[int]bool) []byte {
	var b strings.Builder
	for i := range n {
		if skip[i] {
			continue
		}
		v := "1.0-1"
		if version[i] != "" {
			v = version[i]
		}
		fmt.Fprintf(&b, "Package: pkg%04d\nStatus: install ok installed\nPriority: optional\nSection: misc\nInstalled-Size: 100\n"+
			"Maintainer: Tally Tests <tests@example.com>\nArchitecture: amd64\nVersion: %s\nDescription: test package %d\n a package of the delta tests.\n\n", i, v, i)
	}
	return []byte(b.String())
}

// fakeRoot writes a system root holding a dpkg database of n packages.
func fakeRoot(t *testing.T, n int) string {
	t.Helper()
	return softwaretest.Dir(t, fstest.MapFS{"var/lib/dpkg/status": {Data: dpkgStatus(n, nil, nil)}})
}

func rewriteStatus(t *testing.T, root string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// inventoryPosts returns the inventory requests a flush sent.
func inventoryPosts(res runner.FlushResult) []runner.Sent {
	var out []runner.Sent
	for _, r := range res.Records {
		if r.Kind == protocol.KindInventory {
			out = append(out, r)
		}
	}
	return out
}

// sameSoftware checks that the server stores exactly the set the agent
// collects from root.
func sameSoftware(t *testing.T, srv *servertest.Server, id int64, root string) {
	t.Helper()
	res, err := software.Collect(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	sw := &protocol.SoftwareInventory{Full: true, Packages: res.Packages}
	delta.Normalize(sw)
	stored, err := srv.Admin.Software(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	key := func(p protocol.Package) string {
		return p.Source + "/" + p.Name + "/" + p.Version + "/" + p.Arch + "/" + p.Publisher
	}
	var want, got []string
	for _, p := range sw.Packages {
		want = append(want, key(p))
	}
	for _, p := range stored {
		got = append(got, key(p))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		t.Fatalf("server stores %d packages, agent has %d; they differ", len(got), len(want))
	}
}

func licensedServer(t *testing.T, product string, seats uint32) *servertest.Server {
	t.Helper()
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: product, Seats: seats})
	return srv
}

// Must hold: an unchanged machine with 2,000 packages posts an empty
// software delta with the basic inventory left out, at most 300 bytes on
// the wire; a changed set goes as a small delta and the server's copy
// equals the agent's; a server that lost track (SendFull) is recovered
// by a whole post at once.
func TestAgentDeltaUnchangedChangedAndSendFull(t *testing.T) {
	srv := licensedServer(t, "inventory", 10)
	root := fakeRoot(t, 2000)
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret, SoftwareRoot: root})
	a.Install(t, "inventory", "")
	id := a.Enrollment().ComputerID

	first := a.Cycle(t)
	posts := inventoryPosts(first)
	if len(posts) != 1 || posts[0].Form != "basic software-full 2000" || first.Verdicts["inventory"] != "licensed" {
		t.Fatalf("first post %+v, verdicts %v", posts, first.Verdicts)
	}
	t.Logf("full post: %d bytes on the wire", posts[0].Bytes)
	sameSoftware(t, srv, id, root)

	second := a.Cycle(t)
	posts = inventoryPosts(second)
	if len(posts) != 1 || posts[0].Form != "basic-hash software-delta +0 -0" {
		t.Fatalf("unchanged post %+v", posts)
	}
	t.Logf("unchanged post: %d bytes on the wire (full was %d)", posts[0].Bytes, inventoryPosts(first)[0].Bytes)
	if posts[0].Bytes > 300 {
		t.Fatalf("an unchanged machine with 2,000 packages posts %d bytes, want at most 300", posts[0].Bytes)
	}
	if st := a.Status(t); st.LastPostBytes != posts[0].Bytes {
		t.Fatalf("status says %d bytes", st.LastPostBytes)
	}

	// One package removed, one upgraded, one added (2,000 → 2,000 + 1 - 1).
	changed := dpkgStatus(2001, map[int]string{7: "1.1-1"}, map[int]bool{42: true})
	rewriteStatus(t, root, changed)
	third := a.Cycle(t)
	posts = inventoryPosts(third)
	if len(posts) != 1 || posts[0].Form != "basic-hash software-delta +2 -2" || posts[0].Bytes > 600 {
		t.Fatalf("changed post %+v", posts)
	}
	t.Logf("changed post (+2 -2): %d bytes", posts[0].Bytes)
	sameSoftware(t, srv, id, root)

	// The server's copy drifts (here: its generation moves, as after a
	// restore): the next delta is answered SendFull, and the agent posts
	// whole at once, in the same cycle.
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(srv.Config.DataDir, datadir.DatabaseFile)+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE computers SET sw_generation = sw_generation + 5 WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	db.Close()
	rewriteStatus(t, root, dpkgStatus(2001, map[int]string{7: "1.2-1"}, map[int]bool{42: true}))
	fourth := a.Cycle(t)
	posts = inventoryPosts(fourth)
	if len(posts) != 2 || !strings.Contains(posts[0].Form, "software-delta") || !strings.Contains(posts[1].Form, "software-full 2000") {
		t.Fatalf("recovery posts %+v", posts)
	}
	sameSoftware(t, srv, id, root)
	if fifth := inventoryPosts(a.Cycle(t)); len(fifth) != 1 || fifth[0].Form != "basic-hash software-delta +0 -0" {
		t.Fatalf("after recovery %+v", fifth)
	}
}

// Posts queued before the server answers are planned when they are sent,
// each against the state the answer to the one before produced: two
// snapshots queued back to back arrive as two chained deltas.
func TestAgentDeltaQueuedSnapshotsChainInOrder(t *testing.T) {
	srv := licensedServer(t, "inventory", 10)
	root := fakeRoot(t, 50)
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret, SoftwareRoot: root})
	a.Install(t, "inventory", "")
	a.Cycle(t)

	ctx := context.Background()
	rewriteStatus(t, root, dpkgStatus(51, nil, nil))
	if _, _, err := a.QueueInventory(ctx); err != nil {
		t.Fatal(err)
	}
	rewriteStatus(t, root, dpkgStatus(52, nil, map[int]bool{0: true}))
	if _, _, err := a.QueueInventory(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := a.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	posts := inventoryPosts(res)
	if len(posts) != 2 || posts[0].Form != "basic-hash software-delta +1 -0" || posts[1].Form != "basic-hash software-delta +1 -1" {
		t.Fatalf("queued posts went as %+v", posts)
	}
	sameSoftware(t, srv, a.Enrollment().ComputerID, root)
}

// A post whose software is discarded (no seat) does not advance the
// acknowledged set: the agent stops sending software (an empty probe goes
// instead), and once a seat is free it is taken and the next post is whole.
func TestAgentDeltaDiscardedDoesNotAdvance(t *testing.T) {
	srv := licensedServer(t, "inventory", 1)
	holder := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret, SoftwareRoot: fakeRoot(t, 5)})
	holder.Install(t, "inventory", "")
	holder.Cycle(t)

	root := fakeRoot(t, 20)
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret, SoftwareRoot: root})
	a.Install(t, "inventory", "")
	res := a.Cycle(t)
	if res.Verdicts["inventory"] != "discarded:no-seat" {
		t.Fatalf("verdicts %v", res.Verdicts)
	}
	ack, err := a.Dir.LoadAck()
	if err != nil || ack.Generation != 0 || len(ack.Packages) != 0 {
		t.Fatalf("a discarded post advanced the acknowledged set: %+v %v", ack, err)
	}
	posts := inventoryPosts(a.Cycle(t))
	if len(posts) != 1 || posts[0].Form != "basic-hash software-probe" {
		t.Fatalf("refused agent posted %+v", posts)
	}
	if sw, _ := srv.Admin.Software(context.Background(), a.Enrollment().ComputerID); len(sw) != 0 {
		t.Fatalf("%d packages stored for a computer without a seat", len(sw))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if found, freed, err := holder.RemovePlugin(ctx, "inventory"); err != nil || !found || !slices.Contains(freed, "inventory") {
		t.Fatalf("remove inventory from the holder: %v %v %v", found, freed, err)
	}
	// The probe takes the freed seat; the server, holding no set, asks
	// for the whole one, which goes in the same cycle.
	res = a.Cycle(t)
	posts = inventoryPosts(res)
	if res.Verdicts["inventory"] != "licensed" || len(posts) != 2 || posts[0].Form != "basic-hash software-probe" || posts[1].Form != "basic-hash software-full 20" {
		t.Fatalf("freed seat: verdicts %v, posts %+v", res.Verdicts, posts)
	}
	sameSoftware(t, srv, a.Enrollment().ComputerID, root)
}
