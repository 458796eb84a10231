package integration

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	agentcli "github.com/tallyhq/tally/agent/cli"
	"github.com/tallyhq/tally/common/exitcode"
	servercli "github.com/tallyhq/tally/server/cli"
	"github.com/tallyhq/tally/server/servertest"
)

// usageCase is one command line and what it must answer.
type usageCase struct {
	server bool // tally-server, else tally-agent
	args   []string
	code   int
	want   []string // in the output, in any order
}

// runCLI runs one command line in-process, with no environment and no
// configuration file.
func runCLI(t *testing.T, server bool, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	env := func(string) string { return "" }
	if server {
		m := &servercli.Main{Stdout: &out, Stderr: &out, Getenv: env}
		code := m.Run(context.Background(), args)
		return out.String(), code
	}
	m := &agentcli.Main{Stdout: &out, Stderr: &out, Getenv: env, ConfigFile: filepath.Join(t.TempDir(), "none.conf")}
	code := m.Run(context.Background(), args)
	return out.String(), code
}

// Every kind of wrong command line exits 2 on both binaries, changes
// nothing, and says what was wrong and where to look: an unknown command
// names the nearest ones and lists the commands, a missing flag says what
// it takes.
func TestWrongUsageExits2OnBothBinaries(t *testing.T) {
	fresh := func() string { return filepath.Join(t.TempDir(), "new") } // must stay absent
	fp := strings.Repeat("ab", 32)
	cases := []usageCase{
		{true, []string{"computers", "lst"}, 2, []string{`unknown command "lst" for "tally-server computers"`, `did you mean "list"?`, "delete, list, retire"}},
		{true, []string{"computers", "lst", "--data", fresh()}, 2, []string{`unknown command "lst"`, `did you mean "list"?`}},
		{true, []string{"lisence", "list"}, 2, []string{`unknown command "lisence" for "tally-server"`, `did you mean "license"?`}},
		{true, []string{"computers", "list", "--bogus"}, 2, []string{"unknown flag: --bogus", "tally-server computers list --help"}},
		{true, []string{"computers", "show", "12", "13"}, 2, []string{"usage: tally-server computers show ID"}},
		{true, []string{"computers", "show", "0"}, 2, []string{`"0" is not a computer ID`}},
		{true, []string{"usage", "--json=maybe"}, 2, []string{`invalid argument "maybe" for "--json"`}},
		{true, []string{"activation", "return", "ACT-X"}, 2, []string{"--computer is required: computer ID holding the seat"}},
		{true, []string{"license", "allocate", "L-1"}, 2, []string{"--computer is required: computer ID"}},
		{true, []string{"serve", "--data", fresh(), "--listen", "bad"}, 2, []string{`--listen "bad"`}},
		{true, []string{"serve", "--data", fresh(), "--memory-limit", "lots"}, 2, []string{"--memory-limit"}},
		{false, []string{"plugin", "lst", "--data", fresh()}, 2, []string{`unknown command "lst" for "tally-agent plugin"`, `did you mean "list"?`, "install, list, remove"}},
		{false, []string{"stauts"}, 2, []string{`unknown command "stauts" for "tally-agent"`, `did you mean "status"?`}},
		{false, []string{"lease", "chekout", "cad"}, 2, []string{`unknown command "chekout"`, `did you mean "checkout"?`}},
		{false, []string{"run", "--bogus"}, 2, []string{"unknown flag: --bogus", "tally-agent run --help"}},
		{false, []string{"run", "--once", "--interval", "soon", "--data", fresh()}, 2, []string{`invalid argument "soon" for "--interval"`}},
		{false, []string{"status", "extra", "--data", fresh()}, 2, []string{`unexpected argument "extra"`}},
		{false, []string{"plugin", "install", "--data", fresh()}, 2, []string{"takes one plug-in name"}},
		{false, []string{"enroll", "--server", "127.0.0.1:9", "--fingerprint", "zz", "--secret", "s", "--data", fresh()}, 2, []string{"--fingerprint", "want 64 hex digits"}},
		{false, []string{"enroll", "--server", "nowhere", "--fingerprint", fp, "--secret", "s", "--data", fresh()}, 2, []string{`--server "nowhere": want HOST:PORT`}},
		{false, []string{"enroll", "--server", "h:http", "--fingerprint", fp, "--secret", "s", "--data", fresh()}, 2, []string{"not a port number"}},
		{false, []string{"enroll", "--server", "h:4433", "--fingerprint", fp, "--data", fresh()}, 2, []string{"enroll needs --server, --fingerprint and --secret"}},
		// Not enrolled is not a usage mistake, but a script must see it.
		{false, []string{"status", "--data", t.TempDir()}, 5, []string{"not enrolled", "tally-agent enroll"}},
		{false, []string{"status", "--json", "--data", t.TempDir()}, 5, []string{`"enrolled": false`, "not enrolled"}},
		{false, []string{"status", "--data", fresh()}, 5, []string{"not enrolled", "no data folder"}},
	}
	check := func(t *testing.T, how string, c usageCase, out string, code int) {
		t.Helper()
		bin := map[bool]string{true: "tally-server", false: "tally-agent"}[c.server]
		if code != c.code {
			t.Errorf("%s %s %v: exit %d, want %d\n%s", how, bin, c.args, code, c.code, out)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s %s %v: output lacks %q\n%s", how, bin, c.args, w, out)
			}
		}
		for i, a := range c.args {
			if a == "--data" && strings.HasSuffix(c.args[i+1], string(filepath.Separator)+"new") {
				if _, err := os.Stat(c.args[i+1]); !os.IsNotExist(err) {
					t.Errorf("%s %s %v: created its data folder (%v)", how, bin, c.args, err)
				}
			}
		}
	}
	for _, c := range cases {
		out, code := runCLI(t, c.server, c.args...)
		check(t, "in-process", c, out, code)
	}
	serverBin, agentBin := binaries(t)
	for _, c := range cases {
		bin := agentBin
		if c.server {
			bin = serverBin
		}
		out, code := runBin(t, bin, c.args...)
		check(t, "binary", c, out, code)
	}
}

// The admin commands exit with the codes of the table: 4 when the server
// cannot be reached (or none runs on the data folder given), 5 for a refused token, 7 for what does not exist; an
// enroll refused by the server leaves no data folder behind.
func TestAdminAndEnrollExitCodes(t *testing.T) {
	srv := servertest.New(t)
	data := srv.Config.DataDir
	url := srv.Addresses().AdminURL
	cases := []usageCase{
		{true, []string{"computers", "list", "--data", data}, exitcode.OK, []string{"No computers yet"}},
		{true, []string{"computers", "list", "--admin-url", "http://127.0.0.1:1", "--token", "x"}, exitcode.Unreachable, []string{"cannot reach the server's admin API"}},
		// No server ever started in this data folder: none can be reached.
		{true, []string{"computers", "list", "--data", t.TempDir()}, exitcode.Unreachable, []string{"no running server found in", "start it with 'tally-server serve --data"}},
		{true, []string{"usage", "--data", filepath.Join(t.TempDir(), "nosuch")}, exitcode.Unreachable, []string{"no running server found in"}},
		{true, []string{"computers", "list", "--admin-url", url, "--token", "wrong"}, exitcode.Refused, nil},
		{true, []string{"computers", "show", "999", "--data", data}, exitcode.NotFound, nil},
		{true, []string{"license", "remove", "L-NOSUCH", "--data", data}, exitcode.NotFound, nil},
		{false, []string{"enroll", "--server", srv.Addr(), "--fingerprint", srv.Fingerprint(), "--secret", "wrong", "--data", filepath.Join(t.TempDir(), "new")},
			exitcode.BadSecret, nil},
	}
	for _, c := range cases {
		out, code := runCLI(t, c.server, c.args...)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d\n%s", c.args, code, c.code, out)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q\n%s", c.args, w, out)
			}
		}
	}
	if _, err := os.Stat(cases[len(cases)-1].args[len(cases[len(cases)-1].args)-1]); !os.IsNotExist(err) {
		t.Errorf("an enroll refused by the server left its data folder (%v)", err)
	}
}
