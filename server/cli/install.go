package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/common/addrlist"
	"github.com/tallyhq/tally/common/buildinfo"
	"github.com/tallyhq/tally/common/exitcode"
	"github.com/tallyhq/tally/installer"
)

const serverComponent = "tally-server"

// serverAllowed lists every path 'tally-server install' may write: an
// uninstall removes nothing else, whatever its manifest says.
var serverAllowed = []string{installer.ServerBinary, installer.ServerEnv, installer.ServerUnit, installer.ServerWants, installer.ServerData}

func usageErr(format string, a ...any) error {
	return exitcode.New(exitcode.Usage, fmt.Errorf(format, a...))
}

func (m *Main) installCommand() *cobra.Command {
	var root, listen, admin, advertise string
	cmd := &cobra.Command{
		Use:   "install [--listen ADDR] [--admin ADDR] [--advertise HOST:PORT] [--root DIR]",
		Short: "Install the server as a systemd service: binary, system user tally, data folder, hardened unit; enable and start it",
		Long: `Install tally-server on this Linux machine:

  ` + installer.ServerBinary + `                a copy of this binary
  ` + installer.ServerEnv + `                    TALLY_SERVER_ARGS: the serve flags given here
  ` + installer.ServerData + `/               the data folder (0700, owned by tally)
  ` + installer.ServerUnit + `  the hardened systemd unit

create the system user tally (useradd) if there is none, and enable and start the
service when systemd runs (without systemd, the unit is enabled for the next boot
and the command says so). A binary run from ` + installer.PackagedServerBinary + ` (the .deb or
.rpm package) is used in place, with the package's unit. What was written is
recorded in ` + installer.ServerData + `/` + installer.ManifestFile + ` for 'tally-server uninstall'.

Running install again upgrades in place: binary and unit replaced, the service
restarted; the database and the server's identity (key, fingerprint, admin token)
stay. The serve flags are rewritten only when some are given.

--root DIR installs under DIR (tests, image builders): nothing outside DIR is
touched, systemctl is not run, and no user is created (nothing is written to
DIR/etc/passwd: create the user in the image, 'useradd --root DIR --system tally').`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runtime.GOOS != "linux" {
				return usageErr("install is for Linux with systemd")
			}
			t, err := installer.NewTarget(root)
			if err != nil {
				return usageErr("%w", err)
			}
			var args []string
			for _, f := range []struct{ name, v string }{{"listen", listen}, {"admin", admin}, {"advertise", advertise}} {
				if f.v == "" {
					continue
				}
				check := checkHostPort
				if f.name == "advertise" {
					check = checkAdvertise
				}
				if err := check(f.v); err != nil {
					return usageErr("--%s %q: %w", f.name, f.v, err)
				}
				args = append(args, "--"+f.name, f.v)
			}
			return m.install(cmd.Context(), cmd.OutOrStdout(), t, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "", "UDP (and TCP) address for agents, e.g. 0.0.0.0:4433 (default: serve's)")
	f.StringVar(&admin, "admin", "", "TCP address of the admin API and console (default: serve's, on loopback)")
	f.StringVar(&advertise, "advertise", "", "HOST:PORT agents should dial, shown by enroll-info; several replicas separated by commas, in order of preference")
	f.StringVar(&root, "root", "", "install under DIR instead of / (touches nothing outside it, runs no systemctl, creates no user)")
	return cmd
}

// checkHostPort accepts HOST:PORT with a port number and nothing that
// would split the unit's command line.
func checkHostPort(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return errors.New("want HOST:PORT")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return fmt.Errorf("%q is not a port number", port)
	}
	if strings.ContainsAny(v, " \t\n\"'\\$%;") {
		return errors.New("spaces, quotes and $ % ; \\ are not allowed")
	}
	return nil
}

// checkAdvertise accepts the addresses agents dial: one HOST:PORT, or
// several (replicas) separated by commas, each as checkHostPort wants it.
func checkAdvertise(v string) error {
	list, err := addrlist.Parse(v)
	if err != nil {
		return err
	}
	for _, a := range list {
		if err := checkHostPort(a); err != nil {
			return err
		}
	}
	return nil
}

func (m *Main) install(ctx context.Context, w io.Writer, t installer.Target, serveArgs []string) error {
	data := t.Path(installer.ServerData)
	manifestPath := filepath.Join(data, installer.ManifestFile)
	man, err := installer.LoadManifest(manifestPath)
	// A manifest without files is an uninstall's that kept the data.
	upgrade := err == nil && len(man.Files) > 0
	switch {
	case errors.Is(err, installer.ErrNoManifest):
		man = installer.Manifest{Component: serverComponent}
	case err != nil:
		return err
	default:
		if err := man.Check(serverComponent, serverAllowed); err != nil {
			return err
		}
	}
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		return fmt.Errorf("find this binary to copy it: %w", err)
	}
	iw := &installer.Writer{T: t, M: &man}
	done := false
	defer func() {
		if !done && len(man.Files)+len(man.Dirs) > 0 {
			_ = man.Save(manifestPath)
		}
	}()

	uid, gid := -1, -1
	if t.IsSystem() {
		created, err := ensureUser(ctx)
		if err != nil {
			return err
		}
		if created {
			man.User = installer.ServerUser
			fmt.Fprintf(w, "Created the system user %s.\n", installer.ServerUser)
		}
		u, err := user.Lookup(installer.ServerUser)
		if err != nil {
			return err
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	} else {
		fmt.Fprintf(w, "--root: no user was created and nothing was written to %s: the unit runs as %s; create it in the image (useradd --root %s --system --user-group %s).\n",
			t.Path("/etc/passwd"), installer.ServerUser, t.Root, installer.ServerUser)
	}
	if err := iw.MkdirAll(installer.ServerData, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(data, 0o700); err != nil {
		return err
	}
	if uid >= 0 {
		// The service's StateDirectory= would fix this at start too; a
		// machine without systemd needs it now.
		if err := os.Chown(data, uid, gid); err != nil {
			return err
		}
	}
	packaged := t.IsSystem() && exe == installer.PackagedServerBinary
	switch {
	case packaged:
		fmt.Fprintf(w, "Using the package's %s and its unit.\n", installer.PackagedServerBinary)
	case t.IsSystem() && exe == installer.ServerBinary:
	default:
		if err := iw.CopyFile(installer.ServerBinary, exe, 0o755); err != nil {
			return err
		}
	}
	if _, err := os.Stat(t.Path(installer.ServerEnv)); len(serveArgs) > 0 || err != nil {
		env := "# Flags added to 'tally-server serve' by the tally-server unit; written by 'tally-server install'.\n" +
			"TALLY_SERVER_ARGS=" + strings.Join(serveArgs, " ") + "\n"
		if err := iw.WriteFile(installer.ServerEnv, []byte(env), 0o644); err != nil {
			return err
		}
	}
	if !packaged {
		unit, err := installer.Unit("tally-server.service", installer.ServerBinary)
		if err != nil {
			return err
		}
		if err := iw.WriteFile(installer.ServerUnit, unit, 0o644); err != nil {
			return err
		}
	}
	systemd := t.SystemdRunning()
	if !systemd && !packaged {
		if err := iw.Symlink(installer.ServerWants, installer.ServerUnit); err != nil {
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
	fmt.Fprintf(w, "%s tally-server %s under %s:\n", verb, buildinfo.Version(), t.Root)
	for _, e := range man.Files {
		fmt.Fprintf(w, "  %s\n", t.Path(e.Path))
	}
	fmt.Fprintf(w, "  %s/ (data folder, 0700)\n", data)
	if !systemd {
		fmt.Fprintln(w, noSystemd(t))
		fmt.Fprintf(w, "The unit is enabled (%s): it starts at the next boot with systemd. Without systemd: runuser -u %s -- %s serve --data %s\n",
			t.Path(installer.ServerWants), installer.ServerUser, installer.ServerBinary, installer.ServerData)
	} else {
		for _, s := range [][]string{{"daemon-reload"}, {"enable", "tally-server.service"}, {"restart", "tally-server.service"}} {
			if err := installer.Systemctl(ctx, s...); err != nil {
				return err
			}
		}
		fmt.Fprintln(w, "Enabled and (re)started the tally-server service ('systemctl status tally-server', 'journalctl -u tally-server').")
	}
	fmt.Fprintf(w, "The line for agents: tally-server enroll-info --data %s\n", installer.ServerData)
	return nil
}

// noSystemd says why no service was started or stopped.
func noSystemd(t installer.Target) string {
	if !t.IsSystem() {
		return "--root: no service was started or stopped (systemctl is not run for another root)."
	}
	return "systemd is not running on this machine (no /run/systemd/system): no service was started or stopped."
}

// ensureUser creates the system user tally unless it exists.
func ensureUser(ctx context.Context) (bool, error) {
	if _, err := user.Lookup(installer.ServerUser); err == nil {
		return false, nil
	}
	out, err := exec.CommandContext(ctx, "useradd", "--system", "--user-group", "--home-dir", installer.ServerData, "--no-create-home",
		"--shell", "/usr/sbin/nologin", "--comment", "Tally license server", installer.ServerUser).CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("useradd %s: %w: %s", installer.ServerUser, err, strings.TrimSpace(string(out)))
	}
	return true, nil
}

func (m *Main) uninstallCommand() *cobra.Command {
	var root string
	var purge bool
	cmd := &cobra.Command{
		Use:   "uninstall [--purge] [--root DIR]",
		Short: "Stop and remove the server's service and the files 'tally-server install' wrote; the database stays unless --purge",
		Long: `Stop and disable the tally-server service (when systemd runs), and remove the files
'tally-server install' wrote (its manifest lists them). The data folder, with the
database and the server's identity (key, fingerprint that every agent pins, admin
token), stays: installing again carries on where it was. --purge removes it too,
and the system user tally if install created it: every computer, seat, license
and audit record is then gone for good.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := installer.NewTarget(root)
			if err != nil {
				return usageErr("%w", err)
			}
			return m.uninstall(cmd.Context(), cmd.OutOrStdout(), t, purge)
		},
	}
	cmd.Flags().BoolVar(&purge, "purge", false, "remove the data folder (the database, the server's identity) and the user install created, too")
	cmd.Flags().StringVar(&root, "root", "", "uninstall what 'tally-server install --root DIR' installed in DIR")
	return cmd
}

func (m *Main) uninstall(ctx context.Context, w io.Writer, t installer.Target, purge bool) error {
	data := t.Path(installer.ServerData)
	manifestPath := filepath.Join(data, installer.ManifestFile)
	man, err := installer.LoadManifest(manifestPath)
	if errors.Is(err, installer.ErrNoManifest) {
		return fmt.Errorf("%w: tally-server was not installed with 'tally-server install' here (or is uninstalled already); nothing was removed", err)
	}
	if err != nil {
		return err
	}
	if err := man.Check(serverComponent, serverAllowed); err != nil {
		return err
	}
	systemd := t.SystemdRunning()
	if systemd {
		if err := installer.Systemctl(ctx, "disable", "--now", "tally-server.service"); err != nil {
			fmt.Fprintf(w, "Could not stop and disable the service (%v); carrying on.\n", err)
		} else {
			fmt.Fprintln(w, "Stopped and disabled the tally-server service.")
		}
	} else {
		fmt.Fprintln(w, noSystemd(t))
	}
	keepData := func(p string) bool { return p == installer.ServerData }
	r, err := installer.Remove(t, man, keepData)
	for _, p := range r.Removed {
		fmt.Fprintf(w, "Removed %s.\n", p)
	}
	for _, p := range r.Kept {
		fmt.Fprintf(w, "Kept %s: it was there before the install.\n", p)
	}
	if err != nil {
		return err
	}
	if purge {
		if err := os.RemoveAll(data); err != nil {
			return fmt.Errorf("remove %s: %w", data, err)
		}
		fmt.Fprintf(w, "Removed %s: the database and the server's identity are gone.\n", data)
		if man.User != "" && t.IsSystem() {
			if out, err := exec.CommandContext(ctx, "userdel", man.User).CombinedOutput(); err != nil {
				fmt.Fprintf(w, "The user %s stays (userdel: %v: %s).\n", man.User, err, strings.TrimSpace(string(out)))
			} else {
				fmt.Fprintf(w, "Removed the user %s.\n", man.User)
			}
		}
	} else {
		// The manifest stays, without its files: the folders it created
		// (under a --root) are still for a later --purge to remove.
		man.Files = nil
		if err := man.Save(manifestPath); err != nil {
			return err
		}
		fmt.Fprintf(w, "Kept %s: the database and the server's identity (agents pin its fingerprint); 'tally-server uninstall --purge' removes them.\n", data)
	}
	if _, err := installer.Remove(t, man, keepData); err != nil {
		return err
	}
	if purge {
		if _, err := installer.Remove(t, man, nil); err != nil {
			return err
		}
	}
	if systemd {
		if err := installer.Systemctl(ctx, "daemon-reload"); err != nil {
			fmt.Fprintf(w, "systemd was not reloaded (%v).\n", err)
		}
	}
	fmt.Fprintln(w, "tally-server is uninstalled.")
	return nil
}
