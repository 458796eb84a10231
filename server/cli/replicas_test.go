package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/servertest"
)

// serve --advertise names every replica: enroll-info prints the list in
// each line it gives agents, in the order given.
func TestEnrollInfoPrintsTheReplicas(t *testing.T) {
	const replicas = "a.example.com:7443,b.example.com:7443"
	srv := servertest.New(t, func(c *daemon.Config) { c.Advertise = replicas })
	out := adminStdout(t, srv, "enroll-info")
	for _, want := range []string{
		"server:       " + replicas + "\n",
		"2 replicas sharing this identity",
		"tally-agent install --server " + replicas + " --fingerprint " + srv.Fingerprint(),
		"server = " + replicas + "\n",
		"tally-agent enroll --server " + replicas + " --fingerprint " + srv.Fingerprint(),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("enroll-info lacks %q:\n%s", want, out)
		}
	}
	if out := adminStdout(t, srv, "enroll-info", "--command"); !strings.HasPrefix(out, "tally-agent enroll --server "+replicas+" ") {
		t.Errorf("enroll-info --command: %s", out)
	}
}

// A wrong replica list stops serve with a sentence (exit 2) before
// anything is created.
func TestServeRefusesABadReplicaList(t *testing.T) {
	for _, c := range []struct{ value, want string }{
		{"a:7443,,b:7443", "address 2 of 3"},
		{"a:7443,b:0", `"b:0": "0" is not a port number`},
		{"a:7443,b", `"b" is not HOST:PORT`},
		{"a:7443,b:7443,a:7443", "a:7443 is listed twice"},
		{"a:7443,", "address 2 of 2"},
	} {
		data := filepath.Join(t.TempDir(), "new")
		_, stderr, code := run(t, time.Now(), "serve", "--data", data, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--advertise", c.value)
		if code != 2 || !strings.Contains(stderr, "--advertise") || !strings.Contains(stderr, c.want) {
			t.Errorf("serve --advertise %s: exit %d, %q; want 2 and %q", c.value, code, stderr, c.want)
		}
		if _, err := os.Stat(data); !os.IsNotExist(err) {
			t.Errorf("serve --advertise %s failed but created its data folder", c.value)
		}
	}
}
