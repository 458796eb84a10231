// Package cli is tally-server's command line: `serve` runs the server, and
// the admin commands (computers, secrets, enroll-info, events, …) talk to a
// running server's admin API, found through its data folder on the same
// host or through an admin URL and token from anywhere.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/common/buildinfo"
	"github.com/tallyhq/tally/common/cliusage"
	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/common/exitcode"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/datadir"
)

// DefaultDataDir is the data folder when neither --data nor TALLY_DATA is given.
const DefaultDataDir = "/var/lib/tally-server"

// Main is one invocation of tally-server.
type Main struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Ready, when set, is called by serve once the server is listening
	// (tests use it instead of polling).
	Ready func(addrs datadir.Addresses)
	// Clock dates what the offline commands write (license issue); nil is
	// the system clock.
	Clock clock.Clock

	api *adminapi.Client // the client of this invocation, once made
}

func (m *Main) now() time.Time {
	if m.Clock == nil {
		return time.Now()
	}
	return m.Clock.Now()
}

// ExitError carries a specific exit code (of package exitcode) out of a
// command.
type ExitError = exitcode.Err

// Run executes the command line args (without the program name) and
// returns the exit code.
func (m *Main) Run(ctx context.Context, args []string) int {
	if m.Getenv == nil {
		m.Getenv = os.Getenv
	}
	root := m.rootCommand()
	cliusage.Apply(root)
	root.SetArgs(args)
	root.SetOut(m.Stdout)
	root.SetErr(m.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(m.Stderr, "tally-server: "+err.Error())
	return exitCode(err)
}

// exitCode maps an error to the table of package exitcode: the admin
// commands' failures that a script may want to tell apart get their own
// code, the rest exit 1.
func exitCode(err error) int {
	if code, ok := exitcode.Of(err); ok {
		return code
	}
	var ae *adminapi.APIError
	var ue *adminapi.UnreachableError
	var nr *datadir.NotRunningError
	switch {
	case errors.As(err, &ue), errors.As(err, &nr):
		return exitcode.Unreachable
	case errors.As(err, &ae) && (ae.Code == http.StatusUnauthorized || ae.Code == http.StatusForbidden):
		return exitcode.Refused
	case errors.As(err, &ae) && ae.Code == http.StatusNotFound:
		return exitcode.NotFound
	}
	return exitcode.Error
}

func (m *Main) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "tally-server",
		Short: "Tally license server: inventory, license seats and reclamation for managed machines",
		Long: `tally-server stores what Tally agents post, consumes a license seat the first time a
machine makes a qualifying post, and frees it the moment the machine is retired,
deleted or its plug-in or agent uninstalled.

Run the server with 'tally-server serve --data DIR'. Every other command talks to a
running server: on its host pass --data DIR (or set TALLY_DATA); from elsewhere pass
--admin-url and --token (or set TALLY_ADMIN_URL and TALLY_TOKEN).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildinfo.Version(),
	}
	root.SetVersionTemplate("tally-server {{.Version}}\n")
	root.AddCommand(m.serveCommand(), m.computersCommand(), m.enrollInfoCommand(), m.secretsCommand(), m.eventsCommand(),
		m.productsCommand(), m.issuerCommand(), m.licenseCommand(), m.statusesCommand(), m.maintenanceCommand(), m.usageCommand(),
		m.activationCommand(), m.leasesCommand(), m.checkDBCommand(), m.installCommand(), m.uninstallCommand(),
		m.adminsCommand(), m.applicationsCommand(), m.swlicenseCommand(), m.purchaseCommand(), m.reportCommand(), m.alertsCommand(),
		m.usersCommand(), m.directoryCommand(), m.housekeepingCommand(), m.migrateCommand(),
		&cobra.Command{Use: "version", Short: "Print the version", Args: cobra.NoArgs, Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "tally-server", buildinfo.Version())
		}})
	return root
}

// conn holds the flags that locate a running server.
type conn struct {
	data, url, token string
	json             bool
}

func (m *Main) addConnFlags(cmd *cobra.Command, c *conn, withJSON bool) {
	f := cmd.Flags()
	f.StringVar(&c.data, "data", "", "data folder of a server on this host (default $TALLY_DATA or "+DefaultDataDir+")")
	f.StringVar(&c.url, "admin-url", "", "admin URL of the server, e.g. http://127.0.0.1:8080 (default $TALLY_ADMIN_URL)")
	f.StringVar(&c.token, "token", "", "admin token (default $TALLY_TOKEN, or the data folder's admin-token)")
	if withJSON {
		f.BoolVar(&c.json, "json", false, "print JSON instead of a table")
	}
}

// client resolves the server from the flags, the environment and the
// data folder, in that order of precedence.
func (m *Main) client(c *conn) (*adminapi.Client, error) {
	url := firstNonEmpty(c.url, m.Getenv("TALLY_ADMIN_URL"))
	token := firstNonEmpty(c.token, m.Getenv("TALLY_TOKEN"))
	data := firstNonEmpty(c.data, m.Getenv("TALLY_DATA"))
	if url == "" || token == "" {
		if data == "" {
			data = DefaultDataDir
		}
		d := datadir.Dir{Path: data}
		if url == "" {
			a, err := d.ReadAddresses()
			if err != nil {
				if c.data == "" && m.Getenv("TALLY_DATA") == "" {
					return nil, fmt.Errorf("%w\n(pass --data DIR for a server on this host, or --admin-url and --token)", err)
				}
				return nil, err
			}
			url = a.AdminURL
		}
		if token == "" {
			t, err := d.ReadToken()
			if err != nil {
				return nil, fmt.Errorf("%w (or pass --token)", err)
			}
			token = t
		}
	}
	cl, err := adminapi.NewClient(url, token)
	if err != nil {
		return nil, err
	}
	m.api = cl
	return cl, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cols ...string) {
	fmt.Fprintln(t.tw, strings.Join(cols, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

func exactArgs(n int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("usage: tally-server %s", usage)
		}
		return nil
	}
}

// fmtTime shows a time in the server's time zone (serve --timezone), as
// its answers name it, so that every admin reads the times the server
// reads dates in; before any answer, in this host's zone.
func (m *Main) fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	zone := time.Local
	if m.api != nil && m.api.Zone() != nil {
		zone = m.api.Zone()
	}
	return t.In(zone).Format("2006-01-02 15:04:05")
}
