package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func (m *Main) uninstallCmd() *cobra.Command {
	var keep bool
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Tell the server this agent is being uninstalled (every seat it holds is freed at once), then remove its data folder",
		Long: `Send the server a goodbye for the whole agent: the server frees every seat this
machine holds, for every product, at once, and retires the agent's key. Then the
data folder (key, spool, records) is removed, unless --keep-data.

If the server cannot be reached, nothing is removed (exit code 4): the goodbye
stays queued and is sent by the next 'tally-agent run' or 'uninstall' (which
sends the queued one rather than a new one, so the seats are freed once). Remove
the service definition (systemd unit, launchd job) and the binary afterwards.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, ctx, done, err := m.agentCall(cmd)
			if err != nil {
				return err
			}
			defer done()
			res, err := a.Goodbye(ctx)
			if err != nil {
				return fmt.Errorf("not uninstalled: %w; the goodbye stays queued", err)
			}
			w := cmd.OutOrStdout()
			if res.Elsewhere {
				fmt.Fprintln(w, "Another tally-agent process sent the goodbye: the server freed every seat and retired this agent's key.")
			} else {
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
	dataFlag(cmd)
	return cmd
}
