package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/agent/software/softwaretest"
	"github.com/tallyhq/tally/server/cli"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/pgtest"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

var pg pgtest.Shared

func TestMain(m *testing.M) { pg.Main(m) }

// runMigrate runs tally-server migrate with args.
func runMigrate(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	m := &cli.Main{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code = m.Run(context.Background(), append([]string{"migrate"}, args...))
	return out.String(), errb.String(), code
}

// dpkgRoot is a system root whose dpkg database lists n packages.
func dpkgRoot(t *testing.T, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "Package: pkg%03d\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.%d\nMaintainer: Tests <t@example.com>\nDescription: test package\n\n", i, i)
	}
	return softwaretest.Dir(t, fstest.MapFS{"var/lib/dpkg/status": {Data: []byte(b.String())}})
}

// A real server's data folder, with agents that posted software and took
// seats, is refused while the server runs and moved once it has stopped:
// the summary names each table, the password never shows, and the
// PostgreSQL store then holds the same computers, software and seats.
func TestMigrateCommand(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "inventory", Seats: 5})
	var ids []int64
	for i := range 2 {
		a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret, SoftwareRoot: dpkgRoot(t, 10+i)})
		a.Install(t, "inventory", "")
		if res := a.Cycle(t); res.Verdicts["inventory"] != "licensed" {
			t.Fatalf("agent %d: verdicts %v", i, res.Verdicts)
		}
		ids = append(ids, a.Enrollment().ComputerID)
	}
	dir := srv.Dir().Path
	url := pg.Cluster(t).NewDatabase(t)
	// The cluster trusts local connections: the password is only there to
	// be hidden.
	withPW := strings.Replace(url, "postgres://postgres@", "postgres://postgres:hunter2@", 1)
	if withPW == url {
		t.Fatalf("no user in %s", url)
	}

	out, errOut, code := runMigrate("--from", dir, "--to", withPW)
	if code != 1 || !strings.Contains(errOut, "another tally-server is already running") {
		t.Fatalf("migrate while the server runs: exit %d\n%s%s", code, out, errOut)
	}
	srv.Stop()

	out, errOut, code = runMigrate("--from", dir, "--to", withPW)
	if code != 0 {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("migrate:\n%s", out)
	for _, want := range []string{"computers", "licenses", "computer_software_sets", "applied", "Moved ", "checked on PostgreSQL",
		"tally-server serve --data " + dir + " --store 'postgres://postgres:xxxxx@", "in place of xxxxx"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, "hunter2") {
		t.Fatalf("the password is shown:\n%s%s", out, errOut)
	}

	ctx := context.Background()
	opts := sqlstore.Options{}
	sq, err := sqlstore.Open(filepath.Join(dir, datadir.DatabaseFile), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	pq, err := sqlstore.OpenPostgres(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer pq.Close()
	same := func(what string, f func(s *sqlstore.DB) (any, error)) {
		t.Helper()
		a, err := f(sq)
		if err != nil {
			t.Fatal(err)
		}
		b, err := f(pq)
		if err != nil {
			t.Fatal(err)
		}
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Errorf("%s differs:\n SQLite:     %s\n PostgreSQL: %s", what, ja, jb)
		}
	}
	same("computers", func(s *sqlstore.DB) (any, error) { return s.ListComputers(ctx, store.ComputerFilter{}) })
	same("licenses", func(s *sqlstore.DB) (any, error) { return s.Licenses(ctx) })
	same("usage", func(s *sqlstore.DB) (any, error) { return s.Usage(ctx, "inventory") })
	same("events", func(s *sqlstore.DB) (any, error) { return s.Events(ctx, store.EventFilter{Limit: 1000}) })
	for _, id := range ids {
		same(fmt.Sprintf("software of computer %d", id), func(s *sqlstore.DB) (any, error) {
			sw, err := s.Software(ctx, id)
			if err == nil && len(sw) < 10 {
				err = fmt.Errorf("computer %d has %d packages", id, len(sw))
			}
			return sw, err
		})
	}

	// Once more: the target now holds data.
	_, errOut, code = runMigrate("--from", dir, "--to", url)
	if code != 1 || !strings.Contains(errOut, "not empty") || !strings.Contains(errOut, "computers") {
		t.Fatalf("second migrate: exit %d: %s", code, errOut)
	}
}

// Bad command lines exit 2 and touch nothing; a folder that is not a data
// folder is a clear error.
func TestMigrateCommandUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{},
		{"--from", dir},
		{"--to", "postgres://localhost/tally"},
		{"--from", dir, "--to", filepath.Join(dir, "tally.db")},
		{"--from", dir, "--to", "postgres://localhost/tally", "extra"},
		{"--from", dir, "--to", "postgres://localhost/tally", "--no-such-flag"},
	} {
		out, errOut, code := runMigrate(args...)
		if code != 2 {
			t.Errorf("migrate %q: exit %d, want 2\n%s%s", args, code, out, errOut)
		}
	}
	out, _, code := runMigrate("--help")
	if code != 0 || !strings.Contains(out, "--from") || !strings.Contains(out, "--to") || !strings.Contains(out, "Stop the server first") {
		t.Fatalf("--help: exit %d\n%s", code, out)
	}
	garbage := t.TempDir()
	if err := os.WriteFile(filepath.Join(garbage, datadir.DatabaseFile), []byte("not a database, just some text of some length"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runMigrate("--from", garbage, "--to", "postgres://localhost/tally")
	if code != 1 || !strings.Contains(errOut, "file is not a database") {
		t.Fatalf("migrate a file that is no database: exit %d: %s", code, errOut)
	}
	for _, from := range []string{dir, filepath.Join(dir, "missing")} {
		_, errOut, code := runMigrate("--from", from, "--to", "postgres://localhost/tally")
		if code != 1 || !strings.Contains(errOut, "data folder") {
			t.Fatalf("migrate --from %s: exit %d: %s", from, code, errOut)
		}
	}
}
