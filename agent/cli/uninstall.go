package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func (m *Main) uninstallCmd() *cobra.Command {
	var keep, force bool
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Tell the server this agent is being uninstalled (every seat it holds is freed at once), then remove its data folder",
		Long: `Send the server a goodbye for the whole agent: the server frees every seat this
machine holds, for every product, at once, and retires the agent's key. Then the
data folder (key, spool, records) is removed, unless --keep-data.

If the server cannot be reached (exit code 4), or does not show the pinned
fingerprint (6), nothing is removed: the goodbye stays queued and is sent by the
next 'tally-agent run' or 'uninstall' (which sends the queued one rather than a new
one, so the seats are freed once). If the server refuses this agent's key for good
(the computer was deleted, or the key retired), it holds nothing for this machine:
its seats were freed then, and the uninstall completes. --force removes the agent
without telling a server that cannot be reached (gone for good): its seats then
stay held until an administrator deletes the computer. Remove the service
definition (systemd unit, launchd job) and the binary afterwards.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, ctx, done, err := m.agentCall(cmd)
			if err != nil {
				return err
			}
			defer done()
			res, err := a.Goodbye(ctx)
			w := cmd.OutOrStdout()
			switch {
			case err != nil && !force:
				return fmt.Errorf("not uninstalled: %w; the goodbye stays queued (run 'tally-agent uninstall' again when the server is back, or pass --force to remove this agent without telling it)", err)
			case err != nil:
				fmt.Fprintf(w, "The server was not told (%v): the seats of computer %d stay held until an administrator runs 'tally-server computers delete %d'.\n",
					err, a.Enrollment().ComputerID, a.Enrollment().ComputerID)
			case res.Gone:
				fmt.Fprintln(w, "The server had already deleted this computer or retired this agent's key, so its seats were already freed.")
			case res.Elsewhere:
				fmt.Fprintln(w, "Another tally-agent process sent the goodbye: the server freed every seat and retired this agent's key.")
			default:
				fmt.Fprintf(w, "The server freed %d seats (%v) and retired this agent's key.\n", len(res.Answer.Freed), res.Answer.Freed)
			}
			if keep {
				return nil
			}
			a.Close()
			cfg, err := m.settings(cmd)
			if err != nil {
				return err
			}
			if err := os.RemoveAll(cfg.Data); err != nil {
				return fmt.Errorf("remove %s: %w", cfg.Data, err)
			}
			fmt.Fprintf(w, "Removed %s.\n", cfg.Data)
			return nil
		},
	}
	cmd.Flags().BoolVar(&keep, "keep-data", false, "keep the data folder")
	cmd.Flags().BoolVar(&force, "force", false, "remove the agent even if the server cannot be reached or is not the pinned one (its seats stay held until the computer is deleted)")
	dataFlag(cmd)
	return cmd
}
