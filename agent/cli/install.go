package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/agent/client"
	"github.com/tallyhq/tally/agent/config"
	"github.com/tallyhq/tally/agent/plugins"
	"github.com/tallyhq/tally/agent/runner"
	"github.com/tallyhq/tally/agent/state"
	"github.com/tallyhq/tally/common/addrlist"
	"github.com/tallyhq/tally/common/buildinfo"
	"github.com/tallyhq/tally/common/exitcode"
	"github.com/tallyhq/tally/installer"
)

// installOptions are install's flags.
type installOptions struct {
	server, fingerprint, secret, machineID, plugins, root string
	servers                                               []string // server, checked and split
}

func (m *Main) installCmd() *cobra.Command {
	var o installOptions
	var servers serverFlag
	cmd := &cobra.Command{
		Use:   "install --server HOST:PORT --fingerprint FP --secret S [--plugins inventory,monitor] [--root DIR]",
		Short: "Install this agent as a systemd service: binary, configuration, data folder, unit; enroll; enable and start it",
		Long: `Install the agent on this Linux machine and enroll it:

  ` + installer.AgentBinary + `               a copy of this binary
  ` + installer.AgentConfig + `                server, fingerprint and plug-ins (other keys kept)
  ` + installer.AgentData + `/               the data folder (0700): key, enrollment, spool
  ` + installer.AgentUnit + `  the hardened systemd unit

then enroll with the server, install the plug-ins listed, and enable and start the
service when systemd runs (without systemd, the unit is enabled for the next boot
and the command says so). A binary run from ` + installer.PackagedAgentBinary + ` (the .deb or .rpm
package) is used in place, with the package's unit. What was written is recorded in
` + installer.AgentData + `/` + installer.ManifestFile + `, which 'tally-agent uninstall' removes.

Running install again upgrades in place: the binary and the unit are replaced, and
the node (its key and enrollment), the spool, the plug-ins and the node-locked
records stay; --secret may then be left out. --server and --fingerprint default to
the configuration file's. --root DIR installs under DIR instead of / (tests, image
builders): nothing outside DIR is touched and systemctl is not run.

Exit codes: 2 a wrong flag (nothing is written), 3 the secret was refused, 4 the
server could not be reached, 6 the fingerprint does not match; on a first install
that fails, nothing is left behind.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.server = servers.String()
			return m.install(cmd, o)
		},
	}
	f := cmd.Flags()
	f.Var(&servers, "server", "server address HOST:PORT; several replicas separated by commas or by repeating --server, in order of preference (default: the configuration file's server)")
	f.StringVar(&o.fingerprint, "fingerprint", "", "the server's fingerprint (default: the configuration file's)")
	f.StringVar(&o.secret, "secret", "", "enrollment secret (not needed to upgrade an enrolled agent)")
	f.StringVar(&o.plugins, "plugins", "", "plug-ins to install, e.g. inventory,monitor (written to the configuration file)")
	f.StringVar(&o.machineID, "machine-id", "", "use this as the machine's identity instead of its hardware hints (cloned images, tests)")
	f.StringVar(&o.root, "root", "", "install under DIR instead of / (touches nothing outside it, runs no systemctl)")
	return cmd
}

func (m *Main) install(cmd *cobra.Command, o installOptions) error {
	if runtime.GOOS != "linux" {
		return exitcode.New(ExitUsage, fmt.Errorf("install is for Linux with systemd; on Windows use the MSI, on macOS the launchd job (installer/README.md)"))
	}
	t, err := installer.NewTarget(o.root)
	if err != nil {
		return exitcode.New(ExitUsage, err)
	}
	usage := func(format string, a ...any) error { return exitcode.New(ExitUsage, fmt.Errorf(format, a...)) }
	confPath := t.Path(installer.AgentConfig)
	conf, err := os.ReadFile(confPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("configuration file: %w", err)
	}
	cur := config.Defaults()
	if err := config.Parse(confPath, conf, &cur); err != nil {
		return exitcode.New(ExitUsage, err)
	}
	if o.server == "" {
		o.server = cur.Server
	}
	if o.fingerprint == "" {
		o.fingerprint = cur.Fingerprint
	}
	if o.server == "" || o.fingerprint == "" {
		return usage("install needs --server and --fingerprint (or a configuration file %s that sets them): 'tally-server enroll-info' prints the whole line", confPath)
	}
	eo := runner.EnrollOptions{Fingerprint: o.fingerprint, Secret: "-"}
	if err := checkEnrollArgs(o.server, &eo); err != nil {
		return exitcode.New(ExitUsage, err)
	}
	o.servers = eo.Servers
	want := cur.PluginList()
	if o.plugins != "" {
		if want, err = config.ParsePlugins(o.plugins); err != nil {
			return usage("--plugins: %w", err)
		}
	}
	for _, p := range want {
		if _, ok := plugins.Lookup(p); !ok {
			return usage("--plugins: no plug-in %q in this build (one of: %s)", p, strings.Join(plugins.Default.Names(), ", "))
		}
	}
	if len(o.machineID) > 256 {
		return usage("--machine-id: longer than 256 bytes")
	}
	data := t.Path(installer.AgentData)
	manifestPath := filepath.Join(data, installer.ManifestFile)
	man, err := installer.LoadManifest(manifestPath)
	upgrade := err == nil
	switch {
	case errors.Is(err, installer.ErrNoManifest):
		man = installer.Manifest{Component: agentComponent}
	case err != nil:
		return err
	default:
		if err := man.Check(agentComponent, agentAllowed); err != nil {
			return err
		}
	}
	var prev state.Enrollment
	prevErr := state.ErrNotEnrolled
	if b, err := os.Stat(filepath.Join(data, state.EnrollmentFile)); err == nil && b.Mode().IsRegular() {
		prev, prevErr = (state.Dir{Path: data}).Enrollment()
	}
	enrolled := prevErr == nil && strings.EqualFold(prev.Fingerprint, o.fingerprint)
	if o.secret == "" && !enrolled {
		return usage("install needs --secret to enroll this machine: 'tally-server enroll-info' prints the whole line")
	}
	if prevErr == nil && !enrolled {
		return usage("this agent is enrolled with another server (%s, fingerprint %.16s…): uninstall it first ('tally-agent uninstall'), or enroll with 'tally-agent enroll --force'", prev.Server, prev.Fingerprint)
	}

	w := cmd.OutOrStdout()
	iw := &installer.Writer{T: t, M: &man}
	fresh := !upgrade
	// A first install that fails leaves nothing behind; a failed upgrade
	// keeps its manifest up to date, so that uninstall removes what it wrote.
	done := false
	defer func() {
		if done {
			return
		}
		if fresh && prevErr != nil {
			_ = os.RemoveAll(data)
			_, _ = installer.Remove(t, man, nil)
		} else if len(man.Files) > 0 {
			_ = man.Save(manifestPath)
		}
	}()
	if err := iw.MkdirAll(installer.AgentData, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(data, 0o700); err != nil {
		return err
	}
	dir := state.Dir{Path: data}
	if err := m.installEnroll(cmd.Context(), w, dir, o, enrolled, prev); err != nil {
		return err
	}
	if prevErr == nil {
		cancelled, err := runner.CancelGoodbye(dir)
		if err != nil {
			return err
		}
		if cancelled {
			fmt.Fprintln(w, "An uninstall that could not reach the server had queued a goodbye; installing again cancels it (the seats stay held).")
		}
	}
	added, _, err := ensurePlugins(dir, want)
	if err != nil {
		return err
	}

	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		return fmt.Errorf("find this binary to copy it: %w", err)
	}
	packaged := t.IsSystem() && exe == installer.PackagedAgentBinary
	switch {
	case packaged:
		fmt.Fprintf(w, "Using the package's %s and its unit.\n", installer.PackagedAgentBinary)
	case t.IsSystem() && exe == installer.AgentBinary:
		// Run from the installed copy: it is the binary already.
	default:
		if err := iw.CopyFile(installer.AgentBinary, exe, 0o755); err != nil {
			return err
		}
	}
	set := map[string]string{config.KeyServer: addrlist.Join(o.servers), config.KeyFingerprint: strings.ToLower(o.fingerprint)}
	if len(want) > 0 {
		set[config.KeyPlugins] = strings.Join(want, ", ")
	}
	newConf, err := config.Update(confPath, conf, set)
	if err != nil {
		return err
	}
	if err := iw.WriteFile(installer.AgentConfig, newConf, 0o644); err != nil {
		return err
	}
	if !packaged {
		unit, err := installer.Unit("tally-agent.service", installer.AgentBinary)
		if err != nil {
			return err
		}
		if err := iw.WriteFile(installer.AgentUnit, unit, 0o644); err != nil {
			return err
		}
	}
	systemd := t.SystemdRunning()
	if !systemd && !packaged {
		// What 'systemctl enable' does: the unit starts at the next boot
		// of this system (or of the image built in --root).
		if err := iw.Symlink(installer.AgentWants, installer.AgentUnit); err != nil {
			return err
		}
	}
	now := time.Now().UTC()
	man.Version = buildinfo.Version()
	if upgrade {
		man.UpgradedAt = now
	} else {
		man.InstalledAt = now
	}
	if err := man.Save(manifestPath); err != nil {
		return err
	}
	done = true

	verb := "Installed"
	if upgrade {
		verb = "Upgraded"
	}
	fmt.Fprintf(w, "%s tally-agent %s under %s:\n", verb, buildinfo.Version(), t.Root)
	for _, e := range man.Files {
		fmt.Fprintf(w, "  %s\n", t.Path(e.Path))
	}
	fmt.Fprintf(w, "  %s/ (data folder, 0700)\n", data)
	if len(want) > 0 {
		fmt.Fprintf(w, "Plug-ins: %s", strings.Join(want, ", "))
		if len(added) > 0 {
			fmt.Fprintf(w, " (newly installed: %s)", strings.Join(added, ", "))
		}
		fmt.Fprintln(w)
	}
	return startAgentService(cmd.Context(), w, t, systemd, upgrade)
}

// installEnroll enrolls the agent, or (already enrolled with this server)
// makes sure the server still knows it; an upgrade goes on offline.
func (m *Main) installEnroll(ctx context.Context, w io.Writer, dir state.Dir, o installOptions, enrolled bool, prev state.Enrollment) error {
	if o.secret == "" {
		fmt.Fprintf(w, "Enrolled already as computer %d (node %s); the enrollment is kept.\n", prev.ComputerID, prev.NodeID)
		return keepAddresses(w, dir, o.servers)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	e, resp, err := runner.Enroll(ctx, dir, runner.EnrollOptions{Servers: o.servers, Fingerprint: o.fingerprint, Secret: o.secret,
		MachineID: o.machineID, Version: buildinfo.Version()})
	switch {
	case err != nil && enrolled && client.Retryable(err):
		fmt.Fprintf(w, "The server could not be reached (%v): the enrollment as computer %d (node %s) is kept, and the agent posts when the server is back.\n",
			err, prev.ComputerID, prev.NodeID)
		return keepAddresses(w, dir, o.servers)
	case err != nil:
		return err
	case resp.Existing:
		fmt.Fprintf(w, "Enrolled already with %s as computer %d (node %s); the enrollment is kept.\n", e.AddressList(), e.ComputerID, e.NodeID)
	default:
		fmt.Fprintf(w, "Enrolled with %s as computer %d (node %s).\n", e.AddressList(), e.ComputerID, e.NodeID)
	}
	return nil
}

// keepAddresses makes a kept enrollment dial addrs, the server's addresses
// install was given: the pinned fingerprint is the same, so they are the
// same server (replicas added or moved), and no secret is needed.
func keepAddresses(w io.Writer, dir state.Dir, addrs []string) error {
	prev, changed, err := dir.SetAddresses(addrs)
	if err != nil || !changed {
		return err
	}
	fmt.Fprintf(w, "The server's addresses changed from %s to %s: the agent now dials %s.\n",
		strings.Join(prev, ","), addrlist.Join(addrs), addrlist.Join(addrs))
	return nil
}

// startAgentService enables and (re)starts the unit when systemd runs, and
// says plainly what was not done when it does not.
func startAgentService(ctx context.Context, w io.Writer, t installer.Target, systemd, upgrade bool) error {
	if !systemd {
		fmt.Fprintln(w, noSystemd(t))
		fmt.Fprintf(w, "The unit is enabled (%s): it starts at the next boot with systemd. To post without systemd: %s run\n",
			t.Path(installer.AgentWants), installer.AgentBinary)
		return nil
	}
	steps := [][]string{{"daemon-reload"}, {"enable", "tally-agent.service"}, {"restart", "tally-agent.service"}}
	for _, s := range steps {
		if err := installer.Systemctl(ctx, s...); err != nil {
			return err
		}
	}
	if upgrade {
		fmt.Fprintln(w, "Restarted the tally-agent service on the new binary.")
	} else {
		fmt.Fprintln(w, "Enabled and started the tally-agent service ('systemctl status tally-agent', 'journalctl -u tally-agent').")
	}
	return nil
}
