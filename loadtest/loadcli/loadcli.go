// Package loadcli is tally-load's command line: one subcommand per load
// scenario (enroll, steady, storm, race) and baseline, the server found
// through the data folder of a local server or through explicit flags, a
// report for people on stdout and as JSON with --json.
package loadcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/common/buildinfo"
	"github.com/tallyhq/tally/loadtest/loadgen"
)

// Main is one invocation of tally-load.
type Main struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Executable is this program's path: the scenarios start it again as
	// the admin API prober (the hidden admin-probe command), so that the
	// admin API's latency is measured outside the generator's busy
	// process. Empty: the probes run inside it.
	Executable string
	// StderrTTY rewrites the progress line in place instead of printing
	// one line per second.
	StderrTTY bool
}

// Exit codes.
const (
	ExitOK     = 0
	ExitError  = 1 // the run could not be carried out
	ExitUsage  = 2 // wrong flags or arguments
	ExitFailed = 3 // the run finished but a check failed
)

type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Run executes args (without the program name) and returns the exit code.
func (m *Main) Run(ctx context.Context, args []string) int {
	if m.Getenv == nil {
		m.Getenv = os.Getenv
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := m.root()
	root.SetArgs(joinJSON(args))
	root.SetOut(m.Stdout)
	root.SetErr(m.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(m.Stderr, "tally-load: "+err.Error())
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if strings.HasPrefix(err.Error(), "unknown command") {
		return ExitUsage
	}
	return ExitError
}

func (m *Main) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "tally-load",
		Short: "Load generator for tally-server: simulated agents over real QUIC (or TLS over TCP)",
		Long: `tally-load simulates many Tally agents, each with its own key, machine identity,
plug-ins and software set (500 to 3,000 packages by default, mostly shared across
machines), posting over real QUIC (--tcp: over TLS over TCP, the transport agents
fall back to where UDP is blocked) to a running tally-server. It reports posts
acknowledged per second, latency percentiles, errors and verdicts by kind, bytes on
the wire, and the server's CPU and memory, then checks through the admin API that
what the server acknowledged is what it stored.

The server is found like the admin commands find it: --data DIR of a server on this
host (addresses.json, admin-token; licenses can then be minted for the run), or
--server, --fingerprint, --admin-url and --token. tally-load talks to no other
address, and every run is bounded in count and in time.

Replicas (several servers on one PostgreSQL database): --server A,B,C spreads the
agents over the addresses (agent i starts on address i mod 3); an agent whose server
fails (refused, handshake timeout, connection lost) sends the same request, with the
same sequence number, to the next address, as an agent given the list does. The
checks read one admin API (--admin-url, or that of the replica named by --data). A
license minted for the run needs --store, the replicas' postgres:// URL: its issuer
is shared with every replica through the database.

Scenarios: enroll, steady, storm, race. 'tally-load baseline' measures this
machine's limits in the same conditions: a bare QUIC echo, the durable SQLite
commit rate, and handshakes (full, resumed, 0-RTT); it measures QUIC only.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildinfo.Version(),
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{ExitUsage, err} })
	var cpuProfile string
	var stopProfile func()
	root.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write the generator's own CPU profile to FILE")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if cpuProfile == "" {
			return nil
		}
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
		return nil
	}
	root.PersistentPostRun = func(*cobra.Command, []string) {
		if stopProfile != nil {
			stopProfile()
		}
	}
	root.AddCommand(
		m.scenario(loadgen.Enroll, "Enroll N agents as fast as --concurrency allows"),
		m.scenario(loadgen.Steady, "Each agent posts its full inventory once, then a delta every --interval (± --jitter) for --duration"),
		m.scenario(loadgen.Storm, "Every agent posts at once after an outage; reports the time to drain"),
		m.scenario(loadgen.Race, "N agents race for a product with fewer seats; checks the counts"),
		m.baseline(),
		m.adminProbe(),
	)
	return root
}

// adminProbe is the prober process the scenarios start (loadgen.ServeProbe):
// admin API paths on standard input, latencies on standard output.
func (m *Main) adminProbe() *cobra.Command {
	return &cobra.Command{
		Use:    "admin-probe",
		Short:  "Internal: GET each admin API path read from standard input, print its latency",
		Hidden: true,
		Args:   noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, token := m.Getenv(loadgen.ProbeEnvURL), m.Getenv(loadgen.ProbeEnvToken)
			if url == "" {
				return fmt.Errorf("%s is not set: admin-probe is started by the scenarios", loadgen.ProbeEnvURL)
			}
			in := m.Stdin
			if in == nil {
				in = os.Stdin
			}
			return loadgen.ServeProbe(cmd.Context(), in, m.Stdout, url, token)
		},
	}
}

// targetFlags are the ways to name the server.
type targetFlags struct {
	data, fingerprint, secret, adminURL, token, store string
	server                                            []string
	pid                                               int
}

func (t *targetFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&t.data, "data", "", "data folder of a tally-server on this host (default $TALLY_DATA)")
	f.StringSliceVar(&t.server, "server", nil, "QUIC HOST:PORT of the server (without --data); several replicas of one server: A,B,C or the flag repeated (agent i starts on address i mod N and fails over to the next)")
	f.StringVar(&t.fingerprint, "fingerprint", "", "the server's fingerprint (without --data)")
	f.StringVar(&t.secret, "secret", "", "enrollment secret (default: read through the admin API)")
	f.StringVar(&t.adminURL, "admin-url", "", "admin API URL (without --data; default $TALLY_ADMIN_URL)")
	f.StringVar(&t.token, "token", "", "admin token (without --data; default $TALLY_TOKEN)")
	f.StringVar(&t.store, "store", "", "the replicas' postgres:// URL, to share with every replica the issuer of a license minted for the run (default $TALLY_STORE)")
	f.IntVar(&t.pid, "server-pid", 0, "PID of the server process, to sample its CPU and memory (read from --data otherwise)")
}

func (t *targetFlags) resolve(getenv func(string) string, required bool) (loadgen.Target, error) {
	data := t.data
	if data == "" && len(t.server) == 0 {
		data = getenv("TALLY_DATA")
	}
	var tg loadgen.Target
	if data != "" {
		var err error
		if tg, err = loadgen.Discover(data); err != nil {
			return tg, err
		}
	}
	if len(t.server) > 0 {
		seen := map[string]bool{}
		for _, a := range t.server {
			if _, _, err := net.SplitHostPort(a); err != nil || seen[a] {
				return tg, &exitError{ExitUsage, fmt.Errorf("--server %q: give each replica's HOST:PORT once", strings.Join(t.server, ","))}
			}
			seen[a] = true
		}
		tg.QUIC, tg.Servers = t.server[0], nil
		if len(t.server) > 1 {
			tg.Servers = t.server
		}
	}
	if t.fingerprint != "" {
		tg.Fingerprint = t.fingerprint
	}
	if t.adminURL != "" {
		tg.AdminURL = t.adminURL
	} else if tg.AdminURL == "" {
		tg.AdminURL = getenv("TALLY_ADMIN_URL")
	}
	if t.token != "" {
		tg.Token = t.token
	} else if tg.Token == "" {
		tg.Token = getenv("TALLY_TOKEN")
	}
	if t.secret != "" {
		tg.Secret = t.secret
	}
	if t.pid != 0 {
		tg.ServerPID = t.pid
	}
	if tg.Store = t.store; tg.Store == "" {
		tg.Store = getenv("TALLY_STORE")
	}
	if tg.Store != "" && !strings.HasPrefix(tg.Store, "postgres://") && !strings.HasPrefix(tg.Store, "postgresql://") {
		return tg, &exitError{ExitUsage, fmt.Errorf("--store %q: give the replicas' postgres:// URL", tg.Store)}
	}
	if required && (tg.QUIC == "" || tg.Fingerprint == "") {
		return tg, &exitError{ExitUsage, errors.New("no server: pass --data DIR of a local tally-server, or --server HOST:PORT and --fingerprint")}
	}
	return tg, nil
}

// jsonOut writes v as JSON to path, or to stdout for "-".
func (m *Main) jsonOut(path string, write func(io.Writer) error) error {
	if path == "" {
		return nil
	}
	if path == "-" {
		return write(m.Stdout)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (m *Main) scenario(s loadgen.Scenario, short string) *cobra.Command {
	var tf targetFlags
	var cfg loadgen.Config
	var jsonPath, ackedPath string
	var quiet bool
	var seed uint64
	var basicEvery int
	var probeInside bool
	cmd := &cobra.Command{
		Use:   string(s),
		Short: short,
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Agents < 1 {
				return &exitError{ExitUsage, fmt.Errorf("--agents %d: simulate at least one agent", cfg.Agents)}
			}
			tg, err := tf.resolve(m.Getenv, true)
			if err != nil {
				return err
			}
			cfg.Scenario, cfg.Target, cfg.Seed = s, tg, seed
			if m.Executable != "" && !probeInside {
				cfg.ProbeCommand = []string{m.Executable, "admin-probe"}
			}
			if cfg.BasicEvery = basicEvery; basicEvery <= 0 {
				cfg.BasicEvery = -1 // only when asked
			}
			if !quiet {
				cfg.Progress, cfg.ProgressTTY = m.Stderr, m.StderrTTY
			}
			cfg.RecordSeqs = ackedPath != ""
			rep, err := loadgen.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if err := m.jsonOut(ackedPath, rep.WriteAcked); err != nil {
				return err
			}
			text := m.Stdout
			if jsonPath == "-" {
				text = m.Stderr
			}
			rep.Print(text)
			if err := m.jsonOut(jsonPath, rep.WriteJSON); err != nil {
				return err
			}
			if !rep.OK() {
				return &exitError{ExitFailed, errors.New("a check failed (see above)")}
			}
			if cmd.Context().Err() != nil {
				return &exitError{ExitError, errors.New("interrupted")}
			}
			return nil
		},
	}
	tf.register(cmd)
	f := cmd.Flags()
	f.IntVarP(&cfg.Agents, "agents", "n", 100, "simulated agents")
	f.DurationVar(&cfg.Duration, "duration", 30*time.Second, "steady: how long agents post; storm, race: bound of the burst")
	f.DurationVar(&cfg.Interval, "interval", 10*time.Second, "steady: each agent's posting interval (0: back to back)")
	f.Float64Var(&cfg.Jitter, "jitter", 0.2, "steady: ± fraction of the interval")
	f.Float64Var(&cfg.Rate, "rate", 0, "cap on posts per second over all agents (0: none)")
	f.IntVarP(&cfg.Concurrency, "concurrency", "c", 0, "requests in flight at most (default 256; storm and race: all agents); enroll: enrollments in flight")
	f.IntVar(&cfg.Seats, "seats", 0, "race: seats of the license minted (default agents/4); steady, storm: inventory seats (default agents)")
	f.StringVar(&cfg.Product, "product", "inventory", "race: the product raced for")
	f.StringVar(&cfg.LicenseFile, "license-file", "", "import this license file instead of minting one (needed without --data)")
	f.BoolVar(&cfg.NoLicense, "no-license", false, "steady, storm: provide no inventory license (software is discarded)")
	f.IntVar(&cfg.PackagesMin, "packages-min", 500, "fewest packages on one machine")
	f.IntVar(&cfg.PackagesMax, "packages-max", 3000, "most packages on one machine")
	f.IntVar(&cfg.PoolSize, "pool", 6000, "distinct packages in the fleet")
	f.Float64Var(&cfg.Churn, "churn", 0.05, "fraction of delta posts that carry a change (upgrade, install, removal)")
	f.IntVar(&basicEvery, "basic-every", 24, "one delta post in N carries the whole basic inventory, the others its hash, as agents do (they send it once a day: 24 for hourly posts); 1: every post; 0: only when asked")
	f.Uint64Var(&seed, "seed", 1, "seed of the software sets and plug-in mix")
	f.StringVar(&cfg.Run, "run", "", "run name, part of every agent's identity (default random)")
	f.IntVar(&cfg.Sockets, "sockets", 4, "UDP sockets shared by the agents' QUIC connections (not used with --tcp)")
	f.BoolVar(&cfg.TCP, "tcp", false, "TLS over TCP (the server's fallback, at the QUIC port number) instead of QUIC; one connection per agent")
	f.BoolVar(&cfg.Prime, "prime", true, "storm: post every agent's full inventory before the outage")
	f.BoolVar(&cfg.Reconnect, "reconnect", true, "storm: drop every connection before the storm (agents reconnect)")
	f.DurationVar(&cfg.DrainTimeout, "drain-timeout", 60*time.Second, "how long posts in flight may finish after the end")
	f.IntVar(&cfg.EnrollConcurrency, "enroll-concurrency", 256, "enrollments in flight at most in the enroll phase of steady, storm and race")
	f.IntVar(&cfg.PrimeConcurrency, "prime-concurrency", 64, "full posts in flight at most in the prime phase (steady, storm)")
	f.DurationVar(&cfg.PrimeTimeout, "prime-timeout", 10*time.Minute, "bound of the prime phase (every agent's first, full post)")
	f.DurationVar(&cfg.RequestTimeout, "request-timeout", 30*time.Second, "one attempt of one request")
	f.IntVar(&cfg.CheckSample, "check-sample", 500, "computers whose software sets are compared after the run (0: all)")
	f.DurationVar(&cfg.AdminProbe, "admin-probe", 200*time.Millisecond, "interval of admin API latency probes (negative: none)")
	f.BoolVar(&probeInside, "probe-inside", false, "probe the admin API from inside the generator instead of a process of its own (its latency then includes the generator's own load)")
	f.StringVar(&jsonPath, "json", "", "write the report as JSON to FILE (--json alone: stdout)")
	f.Lookup("json").NoOptDefVal = "-"
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress line")
	// The fault suite (server/integration, make chaos) compares these with
	// the server's database; they are no use to a person.
	f.StringVar(&ackedPath, "acked", "", "write each agent's acknowledged sequence numbers as JSON to FILE")
	_ = f.MarkHidden("acked")
	return cmd
}

func (m *Main) baseline() *cobra.Command {
	var tf targetFlags
	var cfg loadgen.BaselineConfig
	var jsonPath string
	var skip []string
	cmd := &cobra.Command{
		Use:   "baseline",
		Short: "Measure this machine's limits: a bare QUIC echo, durable SQLite commits, handshakes",
		Long: `baseline measures, on this machine and now, what Tally's figures are divided by:

  echo        a bare quic-go request/response server (same TLS, listener settings,
              connections and concurrency as the load run; no decoding, no store),
              with the sizes of a delta post and of a full post
  sqlite      durable commits per second of SQLite in WAL mode with synchronous=FULL,
              one row per commit and 100 rows per commit (--sqlite-dir: use the
              server's file system)
  handshakes  connections per second, full, resumed (session tickets) and 0-RTT,
              against the echo server and, with --data or --server, the Tally server

Pass the load run's --agents (connections, up to 1,000) and --concurrency.
baseline measures QUIC only: it has no --tcp.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tg, err := tf.resolve(m.Getenv, false)
			if err != nil {
				return err
			}
			if len(tg.Servers) > 1 {
				return &exitError{ExitUsage, errors.New("baseline measures one server: give one --server")}
			}
			if tg.QUIC != "" {
				cfg.Target = &tg
			}
			cfg.Skip = map[string]bool{}
			for _, s := range skip {
				cfg.Skip[s] = true
			}
			cfg.Progress = func(s string) { fmt.Fprintln(m.Stderr, "baseline: "+s) }
			rep, err := loadgen.Baseline(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			text := m.Stdout
			if jsonPath == "-" {
				text = m.Stderr
			}
			rep.Print(text)
			return m.jsonOut(jsonPath, rep.WriteJSON)
		},
	}
	tf.register(cmd)
	f := cmd.Flags()
	f.IntVarP(&cfg.Connections, "agents", "n", 256, "echo: client connections, each with its own certificate")
	f.IntVarP(&cfg.Concurrency, "concurrency", "c", 256, "echo: requests in flight")
	f.IntVar(&cfg.Sockets, "sockets", 4, "UDP sockets shared by the connections")
	f.DurationVar(&cfg.Duration, "duration", 5*time.Second, "length of each measurement")
	f.IntVar(&cfg.PackagesMin, "packages-min", 500, "fewest packages on one machine (sets the full post's size)")
	f.IntVar(&cfg.PackagesMax, "packages-max", 3000, "most packages on one machine")
	f.IntVar(&cfg.PoolSize, "pool", 6000, "distinct packages in the fleet")
	f.Uint64Var(&cfg.Seed, "seed", 1, "seed of the software sets")
	f.StringVar(&cfg.SQLiteDir, "sqlite-dir", "", "folder for the commit-rate database (default: the system's temporary folder)")
	f.StringSliceVar(&skip, "skip", nil, "parts to skip: echo, sqlite, handshakes")
	f.StringVar(&jsonPath, "json", "", "write the report as JSON to FILE (--json alone: stdout)")
	f.Lookup("json").NoOptDefVal = "-"
	return cmd
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &exitError{ExitUsage, fmt.Errorf("%s takes no arguments (got %q)", cmd.CommandPath(), args)}
	}
	return nil
}

// joinJSON lets --json take its file as the next argument as well as
// after '=', while --json alone means stdout: the commands take no
// positional arguments, so a word after --json can only be its file.
func joinJSON(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		if args[i] == "--json" && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			out = append(out, "--json="+args[i+1])
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}
