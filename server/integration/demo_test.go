package integration

import (
	"database/sql"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyhq/tally/server/datadir"
)

// runDemo runs `make demo`'s script as the Makefile does, stopping after
// the first post (DEMO_ONCE=1), with the binaries the tests built.
func runDemo(t *testing.T, demo string) string {
	t.Helper()
	serverBin, _ := binaries(t)
	cmd := exec.Command("bash", "../../.ci/demo")
	cmd.Env = append(os.Environ(), "DEMO="+demo, "BIN="+filepath.Dir(serverBin), "DEMO_ONCE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf(".ci/demo: %v\n%s", err, out)
	}
	return string(out)
}

func demoAddresses(t *testing.T, demo string) datadir.Addresses {
	t.Helper()
	var a datadir.Addresses
	b, err := os.ReadFile(filepath.Join(demo, "last-addresses.json"))
	if err == nil {
		err = json.Unmarshal(b, &a)
	}
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func demoCount(t *testing.T, demo, table string) int {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(demo, "server", datadir.DatabaseFile)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func wantAll(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s: output lacks %q\n%s", what, w, out)
		}
	}
}

// `make demo` shows the product to a newcomer: a demo license of 10
// inventory seats, the agent with the inventory plug-in, one post, and the
// seat it took. Run again it carries on: the same ports, the same license
// and computer, nothing minted twice; when the old ports are taken it takes
// new ones and moves its agent there.
func TestDemoShowsASeatAndRunsAgainOnItsPorts(t *testing.T) {
	demo := filepath.Join(t.TempDir(), "demo")
	first := runDemo(t, demo)
	wantAll(t, "first run", first, "Imported license L-", "inventory              licensed",
		"GRANTED", "It holds a seat of inventory on license L-")
	a1 := demoAddresses(t, demo)
	lic, err := os.ReadFile(filepath.Join(demo, "inventory.lic"))
	if err != nil {
		t.Fatal(err)
	}

	second := runDemo(t, demo)
	wantAll(t, "second run", second, "On the ports of the last run", "Enrolled already", "was already imported",
		"inventory              licensed", "It holds a seat of inventory")
	if a2 := demoAddresses(t, demo); a2.QUIC != a1.QUIC || a2.AdminURL != a1.AdminURL {
		t.Errorf("second run on %s %s, want the first run's %s %s", a2.QUIC, a2.AdminURL, a1.QUIC, a1.AdminURL)
	}
	if again, _ := os.ReadFile(filepath.Join(demo, "inventory.lic")); string(again) != string(lic) {
		t.Error("the second run minted another license file")
	}
	if n := demoCount(t, demo, "licenses"); n != 1 {
		t.Errorf("%d licenses after two runs, want 1", n)
	}

	// Someone else took the admin port meanwhile.
	ln, err := net.Listen("tcp", strings.TrimPrefix(a1.AdminURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	third := runDemo(t, demo)
	wantAll(t, "third run", third, "are taken: taking new ones", "enrolling again at the new address",
		"inventory              licensed", "It holds a seat of inventory")
	if a3 := demoAddresses(t, demo); a3.AdminURL == a1.AdminURL {
		t.Errorf("third run kept the taken admin address %s", a3.AdminURL)
	}
	if n := demoCount(t, demo, "computers"); n != 1 {
		t.Errorf("%d computers after three runs, want 1", n)
	}
}
