package integration

import (
	"strings"
	"testing"

	"github.com/tallyhq/tally/agent/state"
	"github.com/tallyhq/tally/server/servertest"
)

// Re-enrolling with a server that moved (same fingerprint, new address)
// updates the address; the agent says so instead of "nothing changed".
func TestReenrollWithAMovedServerSaysWhatChanged(t *testing.T) {
	srv := servertest.New(t)
	data := t.TempDir()
	args := []string{"enroll", "--server", srv.Addr(), "--fingerprint", srv.Fingerprint(), "--secret", srv.Secret, "--machine-id", "moved-1"}
	if out, code := agentCLI(t, data, args...); code != 0 {
		t.Fatalf("enroll: %d %s", code, out)
	}
	// The server used to be elsewhere: the agent recorded another address.
	dir, err := state.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	e, err := dir.Enrollment()
	if err != nil {
		t.Fatal(err)
	}
	e.Server = "old-host.example:4433"
	if err := dir.SaveEnrollment(e); err != nil {
		t.Fatal(err)
	}
	out, code := agentCLI(t, data, args...)
	if code != 0 || strings.Contains(out, "nothing changed") || !strings.Contains(out, "changed from old-host.example:4433 to "+srv.Addr()) {
		t.Fatalf("re-enroll with the moved server: exit %d, %q; want it to say the address changed", code, out)
	}
	if e, _ := dir.Enrollment(); e.Server != srv.Addr() {
		t.Fatalf("recorded server %s, want %s", e.Server, srv.Addr())
	}
	// Again with nothing moved: nothing changed, and it says so.
	if out, _ := agentCLI(t, data, args...); !strings.Contains(out, "nothing changed") {
		t.Fatalf("re-enroll again: %q", out)
	}
}
