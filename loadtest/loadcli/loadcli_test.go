package loadcli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func run(args ...string) (int, string) {
	var out, errb bytes.Buffer
	m := &Main{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code := m.Run(context.Background(), args)
	return code, out.String() + errb.String()
}

// Wrong flags are usage errors (exit 2) that say what is wrong, before any
// server is looked for.
func TestBadFlagsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"steady", "-n", "0"},
		{"race", "--agents", "-3", "--data", "/nonexistent"},
		{"storm", "--basic-every", "x"},
		{"enroll", "stray-argument"},
		{"no-such-scenario"},
		{"steady", "--server", "127.0.0.1:1,127.0.0.1:1", "--fingerprint", "x"},
		{"race", "--server", "127.0.0.1:1,", "--fingerprint", "x"},
		{"race", "--server", "127.0.0.1:1", "--server", "no-port", "--fingerprint", "x"},
		{"baseline", "--server", "127.0.0.1:1,127.0.0.1:2"},
		{"race", "--server", "127.0.0.1:1", "--fingerprint", "x", "--store", "/var/lib/tally/tally.db"},
	} {
		code, out := run(args...)
		if code != ExitUsage {
			t.Errorf("%q: exit %d, want %d (%s)", args, code, ExitUsage, out)
		}
		if !strings.Contains(out, "tally-load: ") {
			t.Errorf("%q: no error message: %q", args, out)
		}
	}
	if _, out := run("steady", "-n", "0"); !strings.Contains(out, "at least one agent") {
		t.Errorf("-n 0: %q", out)
	}
	if _, out := run("steady", "--server", "127.0.0.1:1,127.0.0.1:1", "--fingerprint", "x"); !strings.Contains(out, "HOST:PORT once") {
		t.Errorf("--server listed twice: %q", out)
	}
}

// The hidden prober refuses to run without the admin API its parent gives
// it in the environment.
func TestAdminProbeNeedsItsParent(t *testing.T) {
	code, out := run("admin-probe")
	if code != ExitError || !strings.Contains(out, "TALLY_LOAD_ADMIN_URL is not set") {
		t.Fatalf("exit %d: %q", code, out)
	}
}
