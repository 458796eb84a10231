package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/agent/plugins"
	"github.com/tallyhq/tally/agent/runner"
	"github.com/tallyhq/tally/agent/state"
	"github.com/tallyhq/tally/common/buildinfo"
	"github.com/tallyhq/tally/common/logging"
	"github.com/tallyhq/tally/protocol"
)

// pluginView is one plug-in as 'plugin list' and 'status' show it.
type pluginView struct {
	Name      string `json:"name"`
	Summary   string `json:"summary,omitempty"`
	Installed bool   `json:"installed"`
	Version   string `json:"version,omitempty"`
	BuildDate string `json:"build_date,omitempty"`
	// State is "working" (its product is licensed), "stopped" (refused:
	// it posts only what qualifies for a seat), "waiting" (no answer
	// yet) or "unknown" (not part of this build); empty when not
	// installed.
	State   string           `json:"state,omitempty"`
	Product string           `json:"product,omitempty"`
	Verdict protocol.Verdict `json:"verdict,omitzero"`
	Reason  string           `json:"reason,omitempty"`
	// Effect says what the plug-in does not do while stopped.
	Effect string `json:"effect,omitempty"`
}

// Sentence is the view as 'status' prints it.
func (v pluginView) Sentence() string {
	switch v.State {
	case "working":
		return fmt.Sprintf("%s: working (%s %s)", v.Name, v.Product, v.Verdict)
	case "stopped":
		why := v.Verdict.String()
		if v.Reason != "" {
			why += ": " + v.Reason
		}
		return fmt.Sprintf("%s: not licensed (%s); %s", v.Name, why, v.Effect)
	case "unknown":
		return v.Name + ": installed, but not part of this build of the agent: it is listed and does nothing"
	}
	return v.Name + ": installed, no answer from the server yet"
}

// pluginViews lists the plug-ins of this build and the installed ones,
// with what the last verdicts say of each.
func pluginViews(dir state.Dir, st state.Status, installedOnly bool) ([]pluginView, error) {
	installed, err := runner.PluginsOf(dir)
	if err != nil {
		return nil, err
	}
	byName := map[string]protocol.Plugin{}
	for _, p := range installed {
		byName[p.Name] = p
	}
	var out []pluginView
	seen := map[string]bool{}
	add := func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		v := pluginView{Name: name}
		reg, known := plugins.Lookup(name)
		if known {
			v.Summary, v.Version, v.BuildDate = reg.Info.Summary, reg.Info.Version, reg.Info.BuildDate
		}
		p, inst := byName[name]
		if !inst {
			if !installedOnly {
				out = append(out, v)
			}
			return
		}
		v.Installed, v.Version, v.BuildDate = true, p.Version, p.BuildDate
		ps, answered := st.Plugins[name]
		switch {
		case !known:
			v.State = "unknown"
		case !answered:
			v.State = "waiting"
		case ps.Verdict.Discarded():
			v.State, v.Effect = "stopped", reg.Info.Stopped
		default:
			v.State = "working"
		}
		if answered {
			v.Product, v.Verdict, v.Reason = ps.Product, ps.Verdict, ps.Reason
		}
		out = append(out, v)
	}
	for _, n := range plugins.Default.Names() {
		add(n)
	}
	for _, p := range installed {
		add(p.Name)
	}
	return out, nil
}

func (m *Main) pluginCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "List, install and remove the licensed plug-ins",
		Long: `Plug-ins add licensed work to the agent: inventory (software inventory), monitor
(metrics), patch (patch scans), software-management (tasks) and deployment (check-ins).
An installed plug-in is listed in the next inventory post, which is what consumes its
product's seat on the server; removing it tells the server at once (a goodbye, queued
durably if the server cannot be reached), which frees the seat. A running
'tally-agent run' picks up installs and removals at its next cycle, without a restart.`,
	}
	cmd.AddCommand(m.pluginListCmd(), m.pluginInstallCmd(), m.pluginRemoveCmd())
	return cmd
}

func (m *Main) pluginListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the plug-ins of this build, which are installed, and what the server last said of each",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, dir, err := m.openDir(cmd)
			if err != nil {
				return err
			}
			st, err := dir.LoadStatus()
			if err != nil {
				return err
			}
			vs, err := pluginViews(dir, st, false)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), vs)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%-20s %-10s %-11s %-10s %s\n", "PLUG-IN", "VERSION", "BUILT", "INSTALLED", "STATE")
			for _, v := range vs {
				inst, state := "no", "-"
				if v.Installed {
					inst, state = "yes", v.State
				}
				fmt.Fprintf(w, "%-20s %-10s %-11s %-10s %s\n", v.Name, v.Version, v.BuildDate, inst, state)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	dataFlag(cmd)
	return cmd
}

func (m *Main) pluginInstallCmd() *cobra.Command {
	var version, built string
	cmd := &cobra.Command{
		Use:   "install NAME [--version V]",
		Short: "Install a plug-in: the next inventory post lists it",
		Long: `Install a plug-in of this build. The next inventory post lists it, which consumes a
seat of its product where the product's rule says so.

--version and --build-date make the agent report another version or build date than
the build's own: a test and compatibility knob (the server picks the product
generation by version, e.g. inventory 6.2 is product inventory-6, 7.1 is inventory,
and upgrade protection by build date). The plug-in's code is the same.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &exitError{ExitUsage, fmt.Errorf("plugin install takes one plug-in name (one of: %s)", strings.Join(plugins.Default.Names(), ", "))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := m.settings(cmd)
			if err != nil {
				return err
			}
			name := args[0]
			reg, ok := plugins.Lookup(name)
			if !ok {
				return &exitError{ExitUsage, fmt.Errorf("no plug-in %q in this build (one of: %s)", name, strings.Join(plugins.Default.Names(), ", "))}
			}
			ip := state.InstalledPlugin{Name: name, Version: reg.Info.Version, BuildDate: reg.Info.BuildDate, InstalledAt: time.Now().UTC()}
			if version != "" {
				ip.Version = version
			}
			if built != "" {
				ip.BuildDate = built
			}
			if err := (&protocol.Plugin{Name: ip.Name, Version: ip.Version, BuildDate: ip.BuildDate}).Validate(); err != nil {
				return &exitError{ExitUsage, err}
			}
			dir, err := state.Open(cfg.Data)
			if err != nil {
				return err
			}
			before, err := runner.Install(dir, ip)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			switch {
			case before != nil && before.Version == ip.Version && before.BuildDate == ip.BuildDate:
				fmt.Fprintf(w, "%s %s (built %s) is installed already; nothing changed.\n", name, ip.Version, ip.BuildDate)
			case before != nil:
				fmt.Fprintf(w, "Installed %s %s (built %s) in place of %s.\n", name, ip.Version, ip.BuildDate, before.Version)
			default:
				fmt.Fprintf(w, "Installed %s %s (built %s).\n", name, ip.Version, ip.BuildDate)
			}
			fmt.Fprintln(w, "The next inventory post lists it ('tally-agent run --once' posts now; a running agent at its next cycle).")
			return nil
		},
	}
	cmd.Flags().StringVar(&version, "version", "", "report this version instead of the build's (test and compatibility knob)")
	cmd.Flags().StringVar(&built, "build-date", "", "report this build date (YYYY-MM-DD) instead of the build's (test and compatibility knob)")
	dataFlag(cmd)
	return cmd
}

func (m *Main) pluginRemoveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a plug-in and tell the server, which frees its seat",
		Long: `Remove a plug-in. The agent sends the server a goodbye for it at once, which frees the
seat of its product where the product's rule says so; if the server cannot be reached
the goodbye waits in the spool (it is never dropped) and goes with the next post. The
next basic inventory no longer lists the plug-in.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &exitError{ExitUsage, errors.New("plugin remove takes one plug-in name")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := m.settings(cmd)
			if err != nil {
				return err
			}
			name := args[0]
			dir, err := state.Open(cfg.Data)
			if err != nil {
				return err
			}
			found, err := runner.Uninstall(dir, name)
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("plug-in %q is not installed ('tally-agent plugin list' shows what is)", name)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Removed %s.\n", name)
			if _, err := dir.Enrollment(); errors.Is(err, state.ErrNotEnrolled) {
				return nil // no server to tell
			}
			return m.sayGoodbye(cmd.Context(), w, cfg.MachineID, dir, name)
		},
	}
	dataFlag(cmd)
	return cmd
}

// sayGoodbye queues the goodbye of a removed plug-in and sends what is
// queued, so that the seat is freed at once.
func (m *Main) sayGoodbye(ctx context.Context, w io.Writer, machineID string, dir state.Dir, name string) error {
	log, _ := logging.New(m.Stderr, "text", "warn")
	a, err := runner.Open(runner.Config{Dir: dir, Logger: log, Version: buildinfo.Version(), MachineID: machineID})
	if err != nil {
		return err
	}
	defer a.Close()
	seq, err := a.QueueGoodbye(name, "removed with 'tally-agent plugin remove'")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := a.Flush(ctx)
	if err != nil {
		fmt.Fprintf(w, "The server could not be told yet (%v): the goodbye (post %d) waits in the spool and goes with the next post.\n", err, seq)
		return nil
	}
	freed := "none (its product's rule keeps the seat, or it held none)"
	if len(res.Freed) > 0 {
		freed = strings.Join(res.Freed, ", ")
	}
	fmt.Fprintf(w, "Told the server (post %d); seats freed: %s.\n", seq, freed)
	return nil
}

// ensurePlugins installs the plug-ins of names that are not installed
// (the configuration file's plugins list); it returns those it added and
// those this build does not have, which it skips.
func ensurePlugins(dir state.Dir, names []string) (added, unknown []string, err error) {
	if len(names) == 0 {
		return nil, nil, nil
	}
	have, err := dir.Plugins()
	if err != nil {
		return nil, nil, err
	}
	for _, name := range names {
		if slices.ContainsFunc(have, func(p state.InstalledPlugin) bool { return p.Name == name }) {
			continue
		}
		reg, ok := plugins.Lookup(name)
		if !ok {
			unknown = append(unknown, name)
			continue
		}
		ip := state.InstalledPlugin{Name: name, Version: reg.Info.Version, BuildDate: reg.Info.BuildDate, InstalledAt: time.Now().UTC()}
		if _, err := runner.Install(dir, ip); err != nil {
			return added, unknown, err
		}
		added = append(added, name)
	}
	return added, unknown, nil
}
