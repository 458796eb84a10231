package integration

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tallyhq/tally/agent/state"
	"github.com/tallyhq/tally/common/exitcode"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
)

// enrollCLI enrolls a new agent in a fresh data folder through tally-agent's
// command line, as machine, and returns the folder.
func enrollCLI(t *testing.T, srv *servertest.Server, machine string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "agent")
	if out, code := runCLI(t, false, "enroll", "--server", srv.Addr(), "--fingerprint", srv.Fingerprint(), "--secret", srv.Secret,
		"--machine-id", machine, "--data", dir); code != 0 {
		t.Fatalf("enroll: exit %d\n%s", code, out)
	}
	return dir
}

// enrolledAs is the computer the agent of data folder dir is enrolled as.
func enrolledAs(t *testing.T, dir string) int64 {
	t.Helper()
	e, err := state.Dir{Path: dir}.Enrollment()
	if err != nil {
		t.Fatal(err)
	}
	return e.ComputerID
}

// errorLine is the line tally-agent printed its error on.
func errorLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "tally-agent: ") {
			return l
		}
	}
	return ""
}

// Every refusal of an agent's key is one sentence, shown once: what
// happened on the server, then the exact enroll line for this machine.
func TestRefusalIsOneSentence(t *testing.T) {
	srv := servertest.New(t)
	ctx := context.Background()
	line := func(dir string) string {
		return "; to enroll this machine, run: tally-agent enroll --server " + srv.Addr() + " --fingerprint " + srv.Fingerprint() +
			" --secret SECRET --data " + dir + " (SECRET: the secret 'tally-server enroll-info' prints)"
	}
	const prefix = "tally-agent: the server refuses this agent: "
	cases := []struct {
		name  string
		setup func(t *testing.T) string // returns the refused agent's data folder
		want  func(dir string) string
	}{
		{"revoked after delete", func(t *testing.T) string {
			dir := enrollCLI(t, srv, "refused-deleted")
			if _, err := srv.Admin.DeleteComputer(ctx, enrolledAs(t, dir), false); err != nil {
				t.Fatal(err)
			}
			return dir
		}, func(dir string) string {
			return prefix + fmt.Sprintf("an administrator deleted computer %d, which freed its seats and revoked this machine's key, so the machine comes back as a new computer", enrolledAs(t, dir)) + line(dir)
		}},
		{"revoked after the machine enrolled again with a new key", func(t *testing.T) string {
			dir := enrollCLI(t, srv, "refused-reimaged")
			again := enrollCLI(t, srv, "refused-reimaged") // the same machine, a new data folder and key
			if enrolledAs(t, again) != enrolledAs(t, dir) {
				t.Fatalf("the re-imaged machine became computer %d, not %d", enrolledAs(t, again), enrolledAs(t, dir))
			}
			if _, err := srv.Admin.DeleteComputer(ctx, enrolledAs(t, again), false); err != nil {
				t.Fatal(err)
			}
			return dir
		}, func(dir string) string {
			return prefix + fmt.Sprintf("an administrator deleted computer %d, which freed its seats and revoked this machine's key, so the machine comes back as a new computer", enrolledAs(t, dir)) + line(dir)
		}},
		{"blocked", func(t *testing.T) string {
			dir := enrollCLI(t, srv, "refused-blocked")
			if _, err := srv.Admin.DeleteComputer(ctx, enrolledAs(t, dir), true); err != nil {
				t.Fatal(err)
			}
			return dir
		}, func(dir string) string {
			id := enrolledAs(t, dir)
			return prefix + fmt.Sprintf("an administrator deleted computer %d with --block, which freed its seats and keeps this machine out until an administrator runs 'tally-server computers unblock %d'", id, id) + line(dir)
		}},
		{"uninstalled", func(t *testing.T) string {
			dir := enrollCLI(t, srv, "refused-uninstalled")
			if out, code := runCLI(t, false, "uninstall", "--keep-data", "--data", dir); code != 0 {
				t.Fatalf("uninstall: exit %d\n%s", code, out)
			}
			return dir
		}, func(dir string) string {
			return prefix + fmt.Sprintf("this machine's agent was uninstalled ('tally-agent uninstall'), which freed the seats of computer %d and retired its key", enrolledAs(t, dir)) + line(dir)
		}},
		{"unknown key", func(t *testing.T) string {
			d, err := state.Open(filepath.Join(t.TempDir(), "agent"))
			if err != nil {
				t.Fatal(err)
			}
			key, _, err := d.Key()
			if err != nil {
				t.Fatal(err)
			}
			if err := d.SaveEnrollment(state.Enrollment{Server: srv.Addr(), Fingerprint: srv.Fingerprint(), NodeID: identity.NodeID(key.Public().(ed25519.PublicKey)), ComputerID: 99}); err != nil {
				t.Fatal(err)
			}
			return d.Path
		}, func(dir string) string {
			return prefix + "it has no record of this machine's key (the machine never enrolled with this server, or the server's database was replaced)" + line(dir)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := c.setup(t)
			want := c.want(dir)
			for _, args := range [][]string{{"run", "--once"}, {"lease", "checkout", "cad"}} {
				out, code := runCLI(t, false, append(args, "--data", dir)...)
				if code != exitcode.Refused || errorLine(out) != want {
					t.Errorf("%v: exit %d, error line\n%s\nwant\n%s\nwhole output:\n%s", args, code, errorLine(out), want, out)
				}
				if n := strings.Count(out, "refuses"); n != 1 {
					t.Errorf("%v: \"refuses\" %d times:\n%s", args, n, out)
				}
			}
			out, code := runCLI(t, false, "status", "--data", dir)
			if code != 0 || !strings.Contains(out, "REFUSED:      "+strings.TrimPrefix(want, "tally-agent: ")) || strings.Count(out, "refuses") != 1 {
				t.Errorf("status: exit %d\n%s", code, out)
			}
			// The line it names works, but for a blocked machine.
			m := regexp.MustCompile(`run: tally-agent (enroll .*) \(SECRET: `).FindStringSubmatch(want)
			out, code = runCLI(t, false, strings.Fields(strings.Replace(m[1], "SECRET", srv.Secret, 1))...)
			if blocked := c.name == "blocked"; blocked != (code == exitcode.Refused) || !blocked && code != 0 {
				t.Fatalf("the enroll line: exit %d\n%s", code, out)
			}
			if c.name != "blocked" {
				if out, code := runCLI(t, false, "run", "--once", "--data", dir); code != 0 {
					t.Errorf("run --once after enrolling again: exit %d\n%s", code, out)
				}
			}
		})
	}
}

// A computer deleted without --block: its agent is told the exact enroll
// line, which enrolls the machine (same data folder, same key) as a new
// computer holding no seat, and the agent posts again.
func TestDeletedComputerEnrollsAgainAsANewComputer(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 1})
	ctx := context.Background()
	dir := enrollCLI(t, srv, "deleted-comes-back")
	if out, code := runCLI(t, false, "plugin", "install", "monitor", "--data", dir); code != 0 {
		t.Fatalf("plugin install: %s", out)
	}
	if out, code := runCLI(t, false, "run", "--once", "--data", dir); code != 0 {
		t.Fatalf("run --once: %s", out)
	}
	old := enrolledAs(t, dir)
	if u := usageOf(t, srv, "monitor"); u.Consumed != 1 {
		t.Fatalf("monitor consumed %d before the delete", u.Consumed)
	}
	if _, err := srv.Admin.DeleteComputer(ctx, old, false); err != nil {
		t.Fatal(err)
	}

	out, code := runCLI(t, false, "run", "--once", "--data", dir)
	m := regexp.MustCompile(`run: (tally-agent enroll .*) \(SECRET: `).FindStringSubmatch(errorLine(out))
	if code != exitcode.Refused || m == nil {
		t.Fatalf("run --once on the deleted computer: exit %d\n%s", code, out)
	}
	args := strings.Fields(strings.Replace(m[1], "SECRET", srv.Secret, 1))[1:]
	out, code = runCLI(t, false, args...)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("a new computer that starts from nothing (it was enrolled as computer %d)", old)) {
		t.Fatalf("the enroll line: exit %d\n%s", code, out)
	}
	now := enrolledAs(t, dir)
	c, err := srv.Admin.Computer(ctx, now)
	if err != nil || now == old || len(c.Seats) != 0 || c.Deleted {
		t.Fatalf("after enrolling again: computer %d (was %d): %+v %v", now, old, c, err)
	}
	out, code = runCLI(t, false, "run", "--once", "--data", dir)
	if code != 0 || !strings.Contains(out, "Posted inventory") {
		t.Fatalf("run --once after enrolling again: exit %d\n%s", code, out)
	}
	if out, _ := runCLI(t, false, "status", "--data", dir); strings.Contains(out, "REFUSED") || !strings.Contains(out, fmt.Sprintf("computer %d,", now)) {
		t.Errorf("status after enrolling again:\n%s", out)
	}
	if u := usageOf(t, srv, "monitor"); u.Consumed != 1 {
		t.Errorf("monitor consumed %d after the new computer posted", u.Consumed)
	}
	noDrift(t, srv)

	// Deleted with --block, the same line stays refused until unblocked.
	if _, err := srv.Admin.DeleteComputer(ctx, now, true); err != nil {
		t.Fatal(err)
	}
	if out, code := runCLI(t, false, args...); code != exitcode.Refused || !strings.Contains(out, "tally-server computers unblock") {
		t.Errorf("the enroll line of a blocked machine: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("a refused enroll touched the data folder: %v", err)
	}
}

// 'enroll --force' with another server is all or nothing: a refused secret
// (exit 3) or an unreachable server (exit 4) leaves the agent enrolled with
// its old server, key and all; only the new server's acceptance replaces
// them.
func TestForcedEnrollIsAllOrNothing(t *testing.T) {
	old := servertest.New(t)
	other := servertest.New(t)
	dir := enrollCLI(t, old, "forced-enroll")
	key, err := os.ReadFile(filepath.Join(dir, state.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	postsTo := func(srv *servertest.Server) {
		t.Helper()
		out, code := runCLI(t, false, "run", "--once", "--data", dir)
		if code != 0 || !strings.Contains(out, "Posted inventory to "+srv.Addr()) {
			t.Fatalf("run --once: exit %d, want a post to %s\n%s", code, srv.Addr(), out)
		}
	}
	postsTo(old)

	out, code := runCLI(t, false, "enroll", "--server", other.Addr(), "--fingerprint", other.Fingerprint(), "--secret", "wrong", "--force", "--data", dir)
	if code != exitcode.BadSecret {
		t.Fatalf("forced enroll with a wrong secret: exit %d\n%s", code, out)
	}
	postsTo(old)

	addr := freeUDPAddr(t)
	stop := refuseQUIC(t, addr)
	out, code = runCLI(t, false, "enroll", "--server", addr, "--fingerprint", other.Fingerprint(), "--secret", other.Secret, "--force", "--data", dir)
	if code != exitcode.Unreachable {
		t.Fatalf("forced enroll with an unreachable server: exit %d\n%s", code, out)
	}
	stop()
	postsTo(old)
	if now, _ := os.ReadFile(filepath.Join(dir, state.KeyFile)); string(now) != string(key) {
		t.Fatal("a forced enroll that failed replaced the key")
	}

	out, code = runCLI(t, false, "enroll", "--server", other.Addr(), "--fingerprint", other.Fingerprint(), "--secret", other.Secret, "--force", "--data", dir)
	if code != 0 || !strings.Contains(out, "Enrolled with "+other.Addr()) {
		t.Fatalf("forced enroll accepted: exit %d\n%s", code, out)
	}
	postsTo(other)
	if now, _ := os.ReadFile(filepath.Join(dir, state.KeyFile)); string(now) == string(key) {
		t.Fatal("the key was not replaced")
	}
	for _, f := range []string{state.PendingKeyFile, state.PendingEnrollmentFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", f, err)
		}
	}
}
