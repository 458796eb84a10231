package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/common/cliusage"
	"github.com/tallyhq/tally/common/exitcode"
	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/engine"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store/sqlstore"
	"github.com/tallyhq/tally/server/store/storemigrate"
)

func (m *Main) migrateCommand() *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:   "migrate --from DATA_DIR --to postgres://…",
		Short: "Move a stopped server's SQLite database to an empty PostgreSQL database",
		Long: `Move an installation from SQLite to PostgreSQL: every table of DATA_DIR/tally.db
is copied into the PostgreSQL database --to names, whose schema it creates.

Stop the server first: migrate takes the data folder's lock and refuses while a
server runs on it. It only reads the SQLite file. The target must be empty (a new
database: createdb tally); a target that holds computers, licenses, events or any
other row is refused and left as it is.

Everything is copied in one PostgreSQL transaction, which commits only after the
checks pass: each table's row count equals SQLite's, and the seat invariants
(seats held never above a license's signed grant, each license's counter equal to
the seats, Activation IDs and leases within their quantities) hold on PostgreSQL.
A failure leaves the target empty. The SQLite database must be at the schema
version of this tally-server (start this version once on it before migrating).

Then start the server with 'tally-server serve --data DATA_DIR --store postgres://…'.
The data folder keeps the SQLite file, which PostgreSQL's server no longer uses.`,
		Example: `  tally-server migrate --from /var/lib/tally-server --to postgres://tally@db.example.com/tally`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !sqlstore.IsPostgresURL(to) {
				return cliusage.Error(cmd, fmt.Errorf("--to %q is not a PostgreSQL URL: give postgres://USER@HOST/DATABASE", storemigrate.Redact(to)))
			}
			if fi, err := os.Stat(from); err != nil || !fi.IsDir() {
				return exitcode.Newf(exitcode.Error, "--from %s is not a folder: give the server's data folder (its --data)", from)
			}
			d := datadir.Dir{Path: from}
			file := d.File(datadir.DatabaseFile)
			if _, err := os.Stat(file); err != nil {
				return exitcode.Newf(exitcode.Error, "no database in %s (no %s): give the server's data folder (its --data)", from, datadir.DatabaseFile)
			}
			unlock, err := d.Lock()
			if err != nil {
				return fmt.Errorf("%w (migrate reads the database only while no server runs on it)", err)
			}
			defer unlock()
			check, err := checkOptions(d)
			if err != nil {
				return err
			}
			where := storemigrate.Redact(to)
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Moving %s to %s …\n", file, where)
			began := time.Now()
			rep, err := storemigrate.Run(cmd.Context(), file, to, check)
			if err != nil {
				return err
			}
			width := len("TABLE")
			for _, t := range rep.Tables {
				width = max(width, len(t.Name))
			}
			fmt.Fprintf(w, "  %-*s %12s\n", width, "TABLE", "ROWS")
			for _, t := range rep.Tables {
				fmt.Fprintf(w, "  %-*s %12d\n", width, t.Name, t.Rows)
			}
			fmt.Fprintf(w, "Moved %d rows in %d tables (schema version %d) in %.1f s; checked on PostgreSQL: every table's row count equals SQLite's, and the seats agree with the licenses.\n",
				rep.Rows(), len(rep.Tables), rep.SchemaVersion, time.Since(began).Seconds())
			next := fmt.Sprintf("tally-server serve --data %s --store '%s'", from, where)
			if where != to {
				next += " (with the password in place of xxxxx)"
			}
			fmt.Fprintf(w, "Next: start the server on PostgreSQL: %s\n", next)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the stopped server's data folder, which holds tally.db")
	cmd.Flags().StringVar(&to, "to", "", "the empty PostgreSQL database, as postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

// checkOptions is what the seat invariants are checked with: the data
// folder's catalog (products.toml over the built-in one) and its trusted
// issuers, as 'check-db' and the server check them.
func checkOptions(d datadir.Dir) (sqlstore.Options, error) {
	cat, err := daemon.LoadCatalog(d)
	if err != nil {
		return sqlstore.Options{}, err
	}
	trusted, err := daemon.TrustedIssuers(d)
	if err != nil {
		return sqlstore.Options{}, err
	}
	verify := func(file []byte) (license.Payload, error) {
		f, err := license.Parse(file, trusted)
		if err != nil {
			return license.Payload{}, err
		}
		return f.Payload, nil
	}
	return sqlstore.Options{Engine: engine.New(cat), VerifyLicense: verify}, nil
}
