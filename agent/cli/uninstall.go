package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/agent/config"
	"github.com/tallyhq/tally/agent/state"
	"github.com/tallyhq/tally/installer"
)

const agentComponent = "tally-agent"

// agentAllowed lists every path 'tally-agent install' may write: an
// uninstall removes nothing else, whatever its manifest says.
var agentAllowed = []string{installer.AgentBinary, installer.AgentConfig, installer.AgentUnit, installer.AgentWants, installer.AgentData}

func (m *Main) uninstallCmd() *cobra.Command {
	var keep, force, pkg, purgeData bool
	var root string
	cmd := &cobra.Command{
		Use:   "uninstall [--keep-data] [--force] [--root DIR] | uninstall --package [--purge-data] [--force]",
		Short: "Tell the server this agent is being uninstalled (every seat it holds is freed at once), then remove the service, its files and the data folder",
		Long: `Send the server a goodbye for the whole agent: the server frees every seat this
machine holds, for every product (node-locked Activation IDs and leases included), at
once, retires the agent's key and marks the computer "agent uninstalled"; the agent's
node-locked records are deleted. Then the service is stopped and disabled (when systemd
runs), every file 'tally-agent install' wrote is removed (its manifest in the data
folder lists them; a configuration file that was there before the install stays), and
the data folder (key, spool, records) goes, unless --keep-data.

If the server cannot be reached (exit code 4), or does not show the pinned
fingerprint (6), nothing is removed: the goodbye stays queued and is sent by the
next 'tally-agent run' or 'uninstall' (which sends the queued one rather than a new
one, so the seats are freed once). If the server refuses this agent's key for good
(the computer was deleted, or the key retired), it holds nothing for this machine:
its seats were freed then, and the uninstall completes. --force removes the agent
without telling a server that cannot be reached (gone for good): its seats then
stay held until the stale-node policy (tally-server serve --stale-after) marks the
computer Missing, or an administrator deletes it.

--root DIR uninstalls what 'tally-agent install --root DIR' put in DIR; the
configuration file and the data folder are then those under DIR, and no service
is touched.

--package is what a package's removal script runs (prerm on remove and purge,
never on upgrade): the goodbye and its node-locked records as above (a non-zero exit
if the server cannot be reached, unless --force), the service stopped and disabled
when systemd runs, and nothing removed that the package manager owns (binary, unit,
configuration file); the data folder goes only with --purge-data.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if purgeData && !pkg {
				return &exitError{ExitUsage, errors.New("--purge-data goes with --package (without it, uninstall removes the data folder unless --keep-data)")}
			}
			if pkg && keep {
				return &exitError{ExitUsage, errors.New("--keep-data does not go with --package, which keeps the data folder unless --purge-data")}
			}
			t, err := installer.NewTarget(root)
			if err != nil {
				return &exitError{ExitUsage, err}
			}
			cfg, err := m.rootSettings(cmd, t)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			manifestPath := filepath.Join(cfg.Data, installer.ManifestFile)
			// A package's removal removes nothing install wrote either: its
			// manifest is not read, so a damaged one cannot stop a removal.
			man, merr := installer.Manifest{}, installer.ErrNoManifest
			if !pkg {
				man, merr = installer.LoadManifest(manifestPath)
			}
			switch {
			case errors.Is(merr, installer.ErrNoManifest):
			case merr != nil:
				return merr
			default:
				if err := man.Check(agentComponent, agentAllowed); err != nil {
					return err
				}
			}
			if err := m.goodbye(cmd, w, cfg, force); err != nil {
				return err
			}
			if t.SystemdRunning() {
				// Stopped before its files go, so that it sends nothing more.
				if err := installer.Systemctl(cmd.Context(), "disable", "--now", "tally-agent.service"); err != nil {
					fmt.Fprintf(w, "Could not stop and disable the service (%v); carrying on.\n", err)
				} else {
					fmt.Fprintln(w, "Stopped and disabled the tally-agent service.")
				}
			} else if (merr == nil || pkg) && runtime.GOOS == "linux" {
				// Elsewhere the service manager is the package's (the MSI's
				// ServiceControl, launchd) and stops the service itself.
				fmt.Fprintln(w, noSystemd(t))
			}
			if pkg {
				if purgeData {
					return removeData(w, cfg.Data)
				}
				if _, err := os.Stat(cfg.Data); err == nil {
					fmt.Fprintf(w, "Kept the data folder %s (removed by the package's purge, or 'tally-agent uninstall --package --purge-data').\n", cfg.Data)
				}
				return nil
			}
			if merr != nil {
				fmt.Fprintf(w, "No install manifest in %s: this agent was not installed with 'tally-agent install', so only its data folder is removed; remove its binary and service definition yourself (or its package: apt-get remove tally-agent, dnf remove tally-agent).\n", cfg.Data)
			} else if err := removeInstalled(w, t, man, cfg.Data); err != nil {
				return err
			}
			if keep {
				if err := os.Remove(manifestPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
				fmt.Fprintf(w, "Kept the data folder %s.\n", cfg.Data)
			} else if err := removeData(w, cfg.Data); err != nil {
				return err
			}
			if merr == nil {
				// A second pass removes the folders the data folder kept from
				// being empty (/var/lib under a --root).
				if _, err := installer.Remove(t, man, nil); err != nil {
					return err
				}
				if t.SystemdRunning() {
					if err := installer.Systemctl(cmd.Context(), "daemon-reload"); err != nil {
						fmt.Fprintf(w, "systemd was not reloaded (%v).\n", err)
					}
				}
			}
			fmt.Fprintln(w, "tally-agent is uninstalled.")
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&keep, "keep-data", false, "keep the data folder (key, spool, records)")
	f.BoolVar(&force, "force", false, "remove the agent even if the server cannot be reached or is not the pinned one (its seats stay held until the stale-node policy or an administrator frees them)")
	f.StringVar(&root, "root", "", "uninstall what 'tally-agent install --root DIR' installed in DIR (touches nothing outside it, runs no systemctl)")
	f.BoolVar(&pkg, "package", false, "a package's removal script: goodbye and service stop only; remove nothing the package manager owns")
	f.BoolVar(&purgeData, "purge-data", false, "with --package: remove the data folder too")
	dataFlag(cmd)
	return cmd
}

// goodbye tells the server this agent is going; an agent that never
// enrolled has nothing to tell.
func (m *Main) goodbye(cmd *cobra.Command, w io.Writer, cfg config.Agent, force bool) error {
	if _, err := os.Stat(filepath.Join(cfg.Data, state.EnrollmentFile)); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(w, "Not enrolled (no enrollment in %s): the server holds no seat for this machine.\n", cfg.Data)
		return nil
	}
	a, ctx, done, err := m.agentCallWith(cmd, cfg)
	if err != nil {
		return err
	}
	defer done()
	res, err := a.Goodbye(ctx)
	switch {
	case err != nil && !force:
		return fmt.Errorf("not uninstalled, nothing was removed: %w; the goodbye stays queued (run 'tally-agent uninstall' again when the server is back, or pass --force to remove this agent without telling it)", err)
	case err != nil:
		fmt.Fprintf(w, "The server was not told (%v): the seats of computer %d stay held until the stale-node policy marks it Missing or an administrator runs 'tally-server computers delete %d'.\n",
			err, a.Enrollment().ComputerID, a.Enrollment().ComputerID)
	case res.Gone:
		fmt.Fprintln(w, "The server had already deleted this computer or retired this agent's key, so its seats were already freed.")
	case res.Elsewhere:
		fmt.Fprintln(w, "Another tally-agent process sent the goodbye: the server freed every seat and retired this agent's key.")
	default:
		fmt.Fprintf(w, "The server freed %d seats (%v) and retired this agent's key.\n", len(res.Answer.Freed), res.Answer.Freed)
	}
	return nil
}

func removeData(w io.Writer, data string) error {
	if err := os.RemoveAll(data); err != nil {
		return fmt.Errorf("remove %s: %w", data, err)
	}
	fmt.Fprintf(w, "Removed %s.\n", data)
	return nil
}

// removeInstalled removes the files the install wrote, but not the data
// folder (the caller's choice).
func removeInstalled(w io.Writer, t installer.Target, man installer.Manifest, data string) error {
	r, err := installer.Remove(t, man, func(p string) bool { return t.Path(p) == data })
	for _, p := range r.Removed {
		fmt.Fprintf(w, "Removed %s.\n", p)
	}
	for _, p := range r.Kept {
		fmt.Fprintf(w, "Kept %s: it was there before the install.\n", p)
	}
	return err
}

// noSystemd says why no service was started or stopped.
func noSystemd(t installer.Target) string {
	if !t.IsSystem() {
		return "--root: no service was started or stopped (systemctl is not run for another root)."
	}
	return "systemd is not running on this machine (no /run/systemd/system): no service was started or stopped."
}

// rootSettings are the settings with every path under t: its
// configuration file, and the data folder it names (or --data names).
func (m *Main) rootSettings(cmd *cobra.Command, t installer.Target) (config.Agent, error) {
	if t.IsSystem() {
		return m.settings(cmd)
	}
	if f := cmd.Flags().Lookup("config"); f != nil && f.Changed {
		return config.Agent{}, &exitError{ExitUsage, fmt.Errorf("--config does not go with --root: the configuration file is %s", t.Path(installer.AgentConfig))}
	}
	mm := *m
	mm.ConfigFile = t.Path(installer.AgentConfig)
	mm.Getenv = func(string) string { return "" } // $TALLY_AGENT_DATA is this machine's
	cfg, err := mm.settings(cmd)
	if err != nil {
		return cfg, err
	}
	if !filepath.IsAbs(cfg.Data) {
		return cfg, &exitError{ExitUsage, fmt.Errorf("--data %s: with --root, give the data folder as an absolute path of the installed system", cfg.Data)}
	}
	cfg.Data = t.Path(filepath.Clean(cfg.Data))
	return cfg, nil
}
