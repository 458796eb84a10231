// Package cli is tally-agent's command line: enroll, show the inventory it
// would post, run (posting on an interval, or once), and report its status.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/agent/client"
	"github.com/tallyhq/tally/agent/config"
	"github.com/tallyhq/tally/agent/runner"
	"github.com/tallyhq/tally/agent/spool"
	"github.com/tallyhq/tally/agent/state"
	"github.com/tallyhq/tally/common/addrlist"
	"github.com/tallyhq/tally/common/buildinfo"
	"github.com/tallyhq/tally/common/cliusage"
	"github.com/tallyhq/tally/common/exitcode"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/common/logging"
	"github.com/tallyhq/tally/protocol"
)

// DefaultDataDir is the agent's data folder when neither --data, the
// configuration file nor TALLY_AGENT_DATA names one.
const DefaultDataDir = config.DefaultDataDir

// Exit codes: the names this package has always used for the table of
// package exitcode, which the README documents.
const (
	ExitOK          = exitcode.OK
	ExitError       = exitcode.Error
	ExitUsage       = exitcode.Usage
	ExitBadSecret   = exitcode.BadSecret
	ExitUnreachable = exitcode.Unreachable
	ExitRefused     = exitcode.Refused
	ExitPinMismatch = exitcode.PinMismatch
)

// Main is one invocation of tally-agent.
type Main struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// ConfigFile is the configuration file read when --config is not
	// given; empty means config.DefaultPath().
	ConfigFile string
}

// Run executes args and returns the exit code.
func (m *Main) Run(ctx context.Context, args []string) int {
	if m.Getenv == nil {
		m.Getenv = os.Getenv
	}
	root := m.root()
	cliusage.Apply(root)
	root.SetArgs(args)
	root.SetOut(m.Stdout)
	root.SetErr(m.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(m.Stderr, "tally-agent: "+err.Error())
	return exitCode(err)
}

func exitCode(err error) int {
	if code, ok := exitcode.Of(err); ok {
		return code
	}
	var pe *protocol.Error
	switch {
	case errors.Is(err, identity.ErrFingerprintMismatch):
		return ExitPinMismatch
	case errors.As(err, &pe) && pe.Status == protocol.StatusBadSecret:
		return ExitBadSecret
	case errors.As(err, &pe) && (pe.Status == protocol.StatusRevoked || pe.Status == protocol.StatusNotEnrolled),
		errors.Is(err, runner.ErrRefused), errors.Is(err, state.ErrNotEnrolled):
		return ExitRefused
	case client.Retryable(err):
		return ExitUnreachable
	}
	return ExitError
}

func (m *Main) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "tally-agent",
		Short: "Tally agent: posts this machine's inventory and licensed plug-ins to a Tally server",
		Long: `tally-agent runs on every managed machine. It enrolls once with a Tally server
(pinning the server's fingerprint), then posts basic inventory on an interval over
QUIC. Every post is written to a durable spool before it is sent, and removed only
when the server has acknowledged it.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildinfo.Version(),
	}
	root.SetVersionTemplate("tally-agent {{.Version}}\n")
	root.AddCommand(m.activationCmds()...)
	root.AddCommand(m.installCmd(), m.uninstallCmd())
	root.AddCommand(m.enrollCmd(), m.inventoryCmd(), m.runCmd(), m.statusCmd(), m.pluginCmd(),
		&cobra.Command{Use: "version", Short: "Print the version", Args: cobra.NoArgs, Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "tally-agent", buildinfo.Version())
		}})
	return root
}

// settings merges, for cmd, the defaults, the configuration file (--config,
// or the default file if there is one) and the flags the user set.
// openDir reads the settings and opens the agent's data folder.
func (m *Main) openDir(cmd *cobra.Command) (config.Agent, state.Dir, error) {
	cfg, err := m.settings(cmd)
	if err != nil {
		return cfg, state.Dir{}, err
	}
	dir, err := state.Open(cfg.Data)
	return cfg, dir, err
}

func (m *Main) settings(cmd *cobra.Command) (config.Agent, error) {
	defaults := config.Defaults()
	if v := m.Getenv("TALLY_AGENT_DATA"); v != "" {
		defaults.Data = v
	}
	path, explicit := m.ConfigFile, false
	if path == "" {
		path = config.DefaultPath()
	}
	if f := cmd.Flags().Lookup("config"); f != nil && f.Changed {
		path, explicit = f.Value.String(), true
	}
	a, err := config.Load(path, explicit, defaults)
	if err != nil {
		return a, exitcode.New(ExitUsage, err)
	}
	for _, k := range config.Keys() {
		f := cmd.Flags().Lookup(k)
		if f == nil || !f.Changed {
			continue
		}
		// String flags are taken as typed: the commands check them where
		// they are used, with the messages they always had. The others get
		// the file's checks.
		switch v := f.Value.String(); k {
		case config.KeyData:
			a.Data = v
		case config.KeyServer:
			a.Server = v
		case config.KeyFingerprint:
			a.Fingerprint = v
		case config.KeyMachineID:
			a.MachineID = v
		case config.KeyLogFormat:
			a.LogFormat = v
		case config.KeyLogLevel:
			a.LogLevel = v
		default:
			if err := a.Set(k, v); err != nil {
				return a, exitcode.New(ExitUsage, fmt.Errorf("--%s: %w (see 'tally-agent %s --help')", k, err, cmd.Name()))
			}
		}
	}
	if a.Data == "" {
		return a, exitcode.New(ExitUsage, errors.New("no data folder given: pass --data DIR"))
	}
	return a, nil
}

func dataFlag(cmd *cobra.Command) {
	cmd.Flags().String("data", "", "agent data folder (default from the configuration file, $TALLY_AGENT_DATA or "+DefaultDataDir+")")
	cmd.Flags().String("config", "", "configuration file (default "+config.DefaultPath()+", if it exists)")
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return exitcode.New(ExitUsage, fmt.Errorf("unexpected argument %q (see 'tally-agent %s --help')", args[0], cmd.Name()))
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (m *Main) enrollCmd() *cobra.Command {
	var o runner.EnrollOptions
	cmd := &cobra.Command{
		Use:   "enroll --server HOST:PORT --fingerprint FP --secret S",
		Short: "Create this node's identity and enroll it with a server",
		Long: `Create this node's Ed25519 identity (once) and enroll it with the server over mutual
TLS, pinning the server's fingerprint: the agent never sends anything to a server
whose key does not match. 'tally-server enroll-info' prints the line to paste.
The configuration file's server and fingerprint are used when the flags are not given.

Several addresses of one server (replicas sharing its identity, so one fingerprint)
are given in order of preference, separated by commas (--server a:7443,b:7443) or by
repeating --server; the agent fails over between them (README: "Several servers").

Exit codes: 3 the secret was refused, 4 the server could not be reached,
5 the server refuses this machine, 6 the fingerprint does not match.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := m.settings(cmd)
			if err != nil {
				return err
			}
			o.Fingerprint, o.MachineID = cfg.Fingerprint, cfg.MachineID
			if err := checkEnrollArgs(cfg.Server, &o); err != nil {
				return exitcode.New(ExitUsage, err)
			}
			// A data folder this enroll creates is removed again if it
			// fails, so that a failed enroll leaves nothing half-made.
			_, statErr := os.Stat(cfg.Data)
			created := errors.Is(statErr, os.ErrNotExist)
			dir, err := state.Open(cfg.Data)
			if err != nil {
				return err
			}
			o.Version = buildinfo.Version()
			prev, prevErr := dir.Enrollment()
			ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
			defer cancel()
			e, resp, err := runner.Enroll(ctx, dir, o)
			if err != nil {
				if created {
					if rerr := os.RemoveAll(dir.Path); rerr != nil {
						return fmt.Errorf("%w (and the data folder it created stays: %v)", err, rerr)
					}
				}
				return err
			}
			w := cmd.OutOrStdout()
			addrs := e.AddressList()
			switch {
			case resp.Existing && prevErr == nil && prev.Fingerprint == e.Fingerprint && prev.AddressList() != addrs:
				// The same server (same fingerprint) at new addresses: the
				// addresses are what changed, and this agent now dials them.
				fmt.Fprintf(w, "Already enrolled as computer %d (node %s); the server's address changed from %s to %s, and this agent now dials %s.\n",
					e.ComputerID, e.NodeID, prev.AddressList(), addrs, addrs)
			case resp.Existing:
				fmt.Fprintf(w, "Already enrolled with %s as computer %d (node %s); nothing changed.\n", addrs, e.ComputerID, e.NodeID)
			case resp.Reenrolled && prevErr == nil && prev.NodeID == e.NodeID:
				// Its key, refused since the agent was uninstalled, enrolled again.
				fmt.Fprintf(w, "Enrolled again with %s as computer %d (node %s): this machine was known.\n", addrs, e.ComputerID, e.NodeID)
			case resp.Reenrolled:
				fmt.Fprintf(w, "Enrolled with %s as computer %d (node %s): this machine was known, its old key is retired.\n", addrs, e.ComputerID, e.NodeID)
			case prevErr == nil && prev.NodeID == e.NodeID && prev.ComputerID != e.ComputerID:
				// Its computer was deleted: the key enrolled again makes a new one.
				fmt.Fprintf(w, "Enrolled with %s as computer %d (node %s), a new computer that starts from nothing (it was enrolled as computer %d).\n",
					addrs, e.ComputerID, e.NodeID, prev.ComputerID)
			default:
				fmt.Fprintf(w, "Enrolled with %s as computer %d (node %s).\n", addrs, e.ComputerID, e.NodeID)
			}
			fmt.Fprintf(w, "Start posting with: tally-agent run --data %s\n", dir.Path)
			return nil
		},
	}
	f := cmd.Flags()
	f.Var(new(serverFlag), "server", "server address HOST:PORT; several replicas separated by commas or by repeating --server, in order of preference (default: the configuration file's server)")
	f.String("fingerprint", "", "the server's fingerprint (SHA-256), as tally-server prints it (default: the configuration file's)")
	f.StringVar(&o.Secret, "secret", "", "enrollment secret")
	f.String("machine-id", "", "use this as the machine's identity instead of its hardware hints (cloned images, tests)")
	f.BoolVar(&o.Force, "force", false, "enroll with another server than the one recorded, replacing the key")
	dataFlag(cmd)
	return cmd
}

// serverFlag is --server: one address, several separated by commas, or
// the flag repeated, which adds to the list (checked as a whole by
// checkEnrollArgs) instead of silently keeping the last.
type serverFlag []string

func (s *serverFlag) String() string     { return strings.Join(*s, ",") }
func (s *serverFlag) Set(v string) error { *s = append(*s, v); return nil }
func (s *serverFlag) Type() string       { return "HOST:PORT[,...]" }

// checkEnrollArgs checks every argument of enroll before anything is
// written, setting o.Servers from server (one address or several,
// separated by commas): a mistake in one is a usage error that creates
// nothing.
func checkEnrollArgs(server string, o *runner.EnrollOptions) error {
	if server == "" || o.Fingerprint == "" || o.Secret == "" {
		return errors.New("enroll needs --server, --fingerprint and --secret: 'tally-server enroll-info' prints the whole line")
	}
	if !strings.Contains(server, ",") {
		host, port, err := net.SplitHostPort(server)
		if err != nil || host == "" {
			return fmt.Errorf("--server %q: want HOST:PORT, e.g. tally.example.com:4433 (the address 'tally-server enroll-info' prints)", server)
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return fmt.Errorf("--server %q: %q is not a port number (want HOST:PORT, e.g. tally.example.com:4433)", server, port)
		}
	}
	list, err := addrlist.Parse(server)
	if err != nil {
		return fmt.Errorf("--server %q: %w (want HOST:PORT, or several separated by commas, as 'tally-server enroll-info' prints them)", server, err)
	}
	if _, err := identity.ParseFingerprint(o.Fingerprint); err != nil {
		return fmt.Errorf("--fingerprint: %w", err)
	}
	o.Servers, o.Server = list, ""
	return nil
}

func (m *Main) inventoryCmd() *cobra.Command {
	var asJSON bool
	var root string
	cmd := &cobra.Command{
		Use:   "inventory [--json] [--root DIR]",
		Short: "Print the inventory this agent would post (no network)",
		Long: `Print the whole post the agent would make, without any network: the basic inventory
(listing the installed plug-ins), the software installed, and what could not be read.
The software part is posted only while the inventory plug-in is installed and licensed.

--root DIR inventories the software of a system whose root is mounted at DIR (a
chroot, a container image, another disk). The basic inventory stays this host's:
hardware, network and the running kernel are not read from DIR.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, dir, err := m.openDir(cmd)
			if err != nil {
				return err
			}
			machineID := cfg.MachineID
			instance, err := dir.InstanceID()
			if err != nil {
				return err
			}
			if machineID == "" {
				if e, err := dir.Enrollment(); err == nil {
					machineID = e.MachineID
				}
			}
			a := collectOnly{instance: instance, machineID: machineID, dir: dir}
			req, problems, err := a.post(cmd.Context(), root)
			if err != nil {
				return err
			}
			if asJSON {
				// Compact: indenting thousands of packages costs more than
				// collecting them (pipe through jq to read).
				return json.NewEncoder(cmd.OutOrStdout()).Encode(struct {
					protocol.InventoryRequest
					Problems []string `json:"problems,omitempty"`
				}{req, problems})
			}
			b := req.Basic
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "hostname:   %s\nos:         %s %s (%s, kernel %s, %s)\ncpu:        %s (%d cores, %d threads)\nmemory:     %d bytes\n",
				b.Hostname, b.Platform, b.PlatformVersion, b.OS, b.KernelVersion, b.Arch, b.CPUModel, b.CPUCores, b.CPUThreads, b.MemoryBytes)
			fmt.Fprintf(w, "disks:      %d\ninterfaces: %d\nhints:      instance %s, machine-id %q, product uuid %q, serial %q, macs %v\n",
				len(b.Disks), len(b.NICs), b.Hints.InstanceID, b.Hints.MachineID, b.Hints.ProductUUID, b.Hints.Serial, b.Hints.MACs)
			var names []string
			for _, p := range b.Plugins {
				names = append(names, p.Name+" "+p.Version)
			}
			fmt.Fprintf(w, "plug-ins:   %s\n", orDash(strings.Join(names, ", ")))
			fmt.Fprintf(w, "software:   %s\n", softwareSummary(req.Software))
			for _, p := range problems {
				fmt.Fprintf(w, "not collected: %s\n", p)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the whole post as JSON (one line)")
	cmd.Flags().StringVar(&root, "root", "/", "inventory the software of the system mounted at DIR (the basic inventory stays this host's)")
	cmd.Flags().String("machine-id", "", "identity override, as for enroll")
	dataFlag(cmd)
	return cmd
}

func (m *Main) runCmd() *cobra.Command {
	var once bool
	var root string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Post inventory on an interval (or once with --once)",
		Long: `Post basic inventory every --interval (with random jitter so a fleet does not post in
the same second), and keep the spool drained. While the server is unreachable, posts
stay queued on disk and the agent retries with exponential back-off.

With --once: queue one inventory post, send everything queued, print the outcome
and exit (exit code 4 if the server could not be reached: the posts stay queued).

Settings come from the configuration file (see --config), which the flags given
override; the flags' defaults below apply when neither sets them.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := m.settings(cmd)
			if err != nil {
				return err
			}
			log, err := logging.New(m.Stderr, cfg.LogFormat, cfg.LogLevel)
			if err != nil {
				return exitcode.New(ExitUsage, err)
			}
			dir, err := state.Open(cfg.Data)
			if err != nil {
				return err
			}
			added, unknown, err := ensurePlugins(dir, cfg.PluginList())
			if err != nil {
				return err
			}
			if len(added) > 0 {
				log.Info("installed the plug-ins the configuration file lists", "plugins", added, "config", cfg.File)
			}
			if len(unknown) > 0 {
				log.Warn("the configuration file lists plug-ins this build does not have; skipped", "plugins", unknown, "config", cfg.File)
			}
			a, err := runner.Open(runner.Config{Dir: dir, Logger: log, Version: buildinfo.Version(), MachineID: cfg.MachineID,
				Spool: spool.Options{MaxBytes: cfg.SpoolMaxBytes, MaxAge: cfg.SpoolMaxAge}, SoftwareRoot: root})
			if err != nil {
				return err
			}
			defer a.Close()
			if once {
				ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
				defer cancel()
				seq, res, err := a.Once(ctx)
				if seq == 0 && err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				for _, p := range res.Problems {
					fmt.Fprintf(w, "damaged spool record set aside: %s\n", p)
				}
				for _, s := range res.SetAside {
					fmt.Fprintf(w, "rejected by the server and set aside: %s\n", s)
				}
				if err != nil {
					if sp, serr := a.Spool().Stats(); serr == nil {
						res.Pending = sp.Records // the plug-ins may have queued more
					}
					fmt.Fprintf(w, "Queued inventory post %d; %d posts wait in the spool.\n", seq, res.Pending)
					return err
				}
				fmt.Fprintf(w, "Posted inventory to %s (sent %d, %d already applied, %d left in the spool).\n",
					a.Server(), res.Sent, res.Repeats, res.Pending)
				for _, r := range res.Records {
					if r.Kind == protocol.KindInventory {
						fmt.Fprintf(w, "  inventory post %d: %d bytes (%s)\n", r.Seq, r.Bytes, r.Form)
					}
				}
				printVerdicts(w, res.Verdicts)
				return nil
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			o := runner.RunOptions{Interval: cfg.Interval, Jitter: cfg.Jitter, MaxBackoff: cfg.MaxBackoff}
			log.Info("tally-agent running", "version", buildinfo.Version(), "server", a.Enrollment().AddressList(),
				"computer", a.Enrollment().ComputerID, "interval", o.Interval, "config", orDash(cfg.File))
			return a.Run(ctx, o)
		},
	}
	f := cmd.Flags()
	d := config.Defaults()
	f.BoolVar(&once, "once", false, "post once and exit")
	f.Duration("interval", d.Interval, "time between inventory posts")
	f.Float64("jitter", d.Jitter, "random extra delay, as a fraction of the interval")
	f.Duration("max-backoff", d.MaxBackoff, "longest wait between attempts while the server is unreachable")
	f.String("spool-max-bytes", "64MiB", "size limit of the spool of queued posts")
	f.String("spool-max-age", "30d", "age after which a queued inventory post that a later one replaces is dropped")
	f.String("log-format", d.LogFormat, "log format: text or json")
	f.String("log-level", d.LogLevel, "log level: debug, info, warn or error")
	f.StringVar(&root, "root", "/", "inventory the software of the system mounted at DIR (the basic inventory stays this host's)")
	dataFlag(cmd)
	return cmd
}

func printVerdicts(w io.Writer, v map[string]string) {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %-22s %s\n", k, v[k])
	}
}

func (m *Main) statusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show enrollment, server, transport, last post, spool depth, the last verdict per product and each plug-in's state",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := m.settings(cmd)
			if err != nil {
				return err
			}
			// Asking is no reason to create a data folder.
			if _, err := os.Stat(cfg.Data); errors.Is(err, os.ErrNotExist) {
				return exitcode.New(ExitRefused, fmt.Errorf("%w (no data folder %s)", state.ErrNotEnrolled, cfg.Data))
			}
			dir, err := state.Open(cfg.Data)
			if err != nil {
				return err
			}
			type out struct {
				Enrolled   bool              `json:"enrolled"`
				Enrollment *state.Enrollment `json:"enrollment,omitempty"`
				Status     state.Status      `json:"status"`
				Spool      any               `json:"spool"`
				Plugins    []pluginView      `json:"plugins"`
			}
			var o out
			if e, err := dir.Enrollment(); err == nil {
				o.Enrolled, o.Enrollment = true, &e
			} else if !errors.Is(err, state.ErrNotEnrolled) {
				return err
			}
			if o.Status, err = dir.LoadStatus(); err != nil {
				return err
			}
			outbox, err := spool.Open(dir.File(state.SpoolDir), spool.Options{})
			if err != nil {
				return err
			}
			sp, err := outbox.Stats()
			if err != nil {
				return err
			}
			o.Spool = sp
			if o.Plugins, err = pluginViews(dir, o.Status, true); err != nil {
				return err
			}
			if o.Plugins == nil {
				o.Plugins = []pluginView{}
			}
			if asJSON {
				if err := printJSON(cmd.OutOrStdout(), o); err != nil {
					return err
				}
			}
			if !o.Enrolled {
				// A script asking whether this machine is enrolled gets
				// its answer from the exit code.
				return exitcode.New(ExitRefused, state.ErrNotEnrolled)
			}
			if asJSON {
				return nil
			}
			w := cmd.OutOrStdout()
			e := o.Enrollment
			fmt.Fprintf(w, "enrolled:     computer %d, node %s, since %s\n", e.ComputerID, e.NodeID, e.EnrolledAt.Local().Format(time.DateTime))
			fmt.Fprintf(w, "server:       %s (fingerprint %.16s…)\n", e.AddressList(), e.Fingerprint)
			st := o.Status
			if len(e.Addresses()) > 1 && st.Server != "" {
				fmt.Fprintf(w, "answered by:  %s (the address dialed first)\n", st.Server)
			}
			fmt.Fprintf(w, "transport:    %s\n", orDash(st.Transport))
			fmt.Fprintf(w, "last post:    %s\n", fmtTime(st.LastSuccess))
			if st.LastPostBytes > 0 {
				fmt.Fprintf(w, "last inventory post: %d bytes on the wire\n", st.LastPostBytes)
			}
			if st.LastError != "" && st.LastError != st.Refused {
				fmt.Fprintf(w, "last error:   %s (%s)\n", st.LastError, fmtTime(st.LastAttempt))
			}
			if st.Refused != "" {
				fmt.Fprintf(w, "REFUSED:      %s (%s)\n", st.Refused, fmtTime(st.LastAttempt))
			}
			fmt.Fprintf(w, "spool:        %d posts queued, %d bytes, %d damaged set aside\n", sp.Records, sp.Bytes, sp.Damaged)
			names := make([]string, 0, len(st.Products))
			for p := range st.Products {
				names = append(names, p)
			}
			sort.Strings(names)
			for _, p := range names {
				ps := st.Products[p]
				fmt.Fprintf(w, "product:      %-22s %s %s\n", p, ps.Verdict, ps.Reason)
			}
			for _, v := range o.Plugins {
				fmt.Fprintf(w, "plug-in:      %s\n", v.Sentence())
			}
			if len(o.Plugins) == 0 {
				fmt.Fprintln(w, "plug-ins:     none installed ('tally-agent plugin list' shows those of this build)")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	dataFlag(cmd)
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format(time.DateTime)
}
