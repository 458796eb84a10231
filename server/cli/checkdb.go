package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/common/exitcode"
	"github.com/tallyhq/tally/server/daemon"
)

func (m *Main) checkDBCommand() *cobra.Command {
	var data string
	cmd := &cobra.Command{
		Use:   "check-db",
		Short: "Check the database: every page (PRAGMA integrity_check), the seat invariants and the licenses against their signed files",
		Long: `Check the data folder's database without changing it: PRAGMA integrity_check
on every page, then the seat invariants (seats held never above a license's signed
grant, counters equal to the seats, no seat on a deleted computer, …) and every
license row against its signed file.

It opens the database read-only and may run while the server serves from it (it
then checks the last commit). It exits 0 when nothing is found, 1 with the findings
otherwise. Seat drift is repaired by 'tally-server maintenance run'; a damaged file
is restored as the findings say.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := firstNonEmpty(data, m.Getenv("TALLY_DATA"), DefaultDataDir)
			rep, err := daemon.CheckDatabase(cmd.Context(), dir)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if rep.OK() {
				fmt.Fprintln(w, "The database is sound: every page checks, and the seats agree with the licenses' signed files.")
				return nil
			}
			for _, f := range rep.Integrity {
				fmt.Fprintf(w, "  damaged:   %s\n", f)
			}
			for _, f := range rep.Invariants {
				fmt.Fprintf(w, "  invariant: %s\n", f)
			}
			if len(rep.Integrity) > 0 {
				return exitcode.Newf(exitcode.Error, "the database's pages are damaged: stop the server and restore it from a backup, or salvage it with 'sqlite3 %s/tally.db .recover' (see the README, \"Running the server\")", dir)
			}
			return exitcode.Newf(exitcode.Error, "the seats or licenses disagree (%d findings): run 'tally-server maintenance run' to repair them", len(rep.Invariants))
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "data folder (default $TALLY_DATA or "+DefaultDataDir+")")
	return cmd
}
