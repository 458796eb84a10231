package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/common/buildinfo"
	"github.com/tallyhq/tally/common/bytesize"
	"github.com/tallyhq/tally/common/cliusage"
	"github.com/tallyhq/tally/common/logging"
	"github.com/tallyhq/tally/server/admins"
	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

func (m *Main) serveCommand() *cobra.Command {
	var cfg daemon.Config
	var logFormat, logLevel string
	var stopTimeout time.Duration
	var memLimit, expiryWarning, diskWarn string
	var bodyBudget, unauthBytes string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the server",
		Long: `Run the server: QUIC for agents, HTTP for the admin API and console.

Agents connect over QUIC on UDP, or over TLS on TCP at the same port where UDP is
blocked (--no-tcp turns that off). On first start it creates the data folder with the server's TLS identity, an
enrollment secret and an admin token (files readable only by their owner), and
prints the QUIC address, the fingerprint agents pin, and the admin URL. The real
addresses (also when a port is 0) are written to DIR/addresses.json.

SIGINT or SIGTERM stop it cleanly: requests in flight finish and commit, then the
database closes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.DataDir == "" {
				cfg.DataDir = firstNonEmpty(m.Getenv("TALLY_DATA"), DefaultDataDir)
			}
			if !cmd.Flags().Changed("store") {
				cfg.Store = m.Getenv("TALLY_STORE")
			}
			if cfg.Store != "" && !sqlstore.IsPostgresURL(cfg.Store) {
				return cliusage.Error(cmd, fmt.Errorf("--store %q: give a postgres://USER@HOST/DB URL, or leave it out for the SQLite file in the data folder", cfg.Store))
			}
			if cfg.StoreReaders < 0 || cfg.StoreReaders > 512 {
				return cliusage.Error(cmd, fmt.Errorf("--store-readers %d: give 1 to 512, or 0 for the default", cfg.StoreReaders))
			}
			w, err := parseWindow(expiryWarning)
			if err != nil {
				return cliusage.Error(cmd, fmt.Errorf("--expiry-warning: %w", err))
			}
			cfg.ExpiryWarning, cfg.Getenv = w, m.Getenv
			if cfg.DiskWarn, err = parseDiskWarn(diskWarn); err != nil {
				return cliusage.Error(cmd, fmt.Errorf("--disk-warn: %w", err))
			}
			if cfg.Sessions.Idle <= 0 || cfg.Sessions.Absolute <= 0 || cfg.Sessions.Idle > cfg.Sessions.Absolute {
				return cliusage.Error(cmd, fmt.Errorf("--session-idle %s, --session-max %s: give positive durations, the idle one no longer than the other", cfg.Sessions.Idle, cfg.Sessions.Absolute))
			}
			if cfg.MaxPackages < 1 {
				return cliusage.Error(cmd, fmt.Errorf("--max-packages: %d is not a number of packages (at least 1)", cfg.MaxPackages))
			}
			if cfg.BodyBytes, err = bytesize.Parse(bodyBudget); err != nil || cfg.BodyBytes < 8<<20 {
				return cliusage.Error(cmd, fmt.Errorf("--body-budget: %q is not a size of at least 8MiB (two requests of the largest size)", bodyBudget))
			}
			if cfg.UnauthenticatedBytes, err = bytesize.Parse(unauthBytes); err != nil || cfg.UnauthenticatedBytes < 16<<10 {
				return cliusage.Error(cmd, fmt.Errorf("--unauthenticated-bytes: %q is not a size of at least 16KiB (two enrollments of the largest size)", unauthBytes))
			}
			if cfg.MaxUnauthenticated < 1 {
				return cliusage.Error(cmd, fmt.Errorf("--max-unauthenticated: %d: at least 1, or no agent can enroll", cfg.MaxUnauthenticated))
			}
			if cfg.BodyTimeout <= 0 {
				return cliusage.Error(cmd, fmt.Errorf("--body-timeout: %v: must be positive", cfg.BodyTimeout))
			}
			if err := daemon.CheckAddresses(cfg); err != nil {
				return cliusage.Error(cmd, err)
			}
			log, err := logging.New(m.Stderr, logFormat, logLevel)
			if err != nil {
				return cliusage.Error(cmd, err)
			}
			cfg.Logger = log
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if memLimit != "" && memLimit != "0" && os.Getenv("GOMEMLIMIT") == "" {
				n, err := bytesize.Parse(memLimit)
				if err != nil {
					return cliusage.Error(cmd, fmt.Errorf("--memory-limit: %w", err))
				}
				// A soft limit: the garbage collector works harder near it,
				// keeping the resident size of a big fleet's connections in
				// bounds; it never makes the server fail.
				debug.SetMemoryLimit(n)
			}
			d, err := daemon.Start(cfg)
			if err != nil {
				return err
			}
			a := d.Addresses()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "tally-server %s is running\n", buildinfo.Version())
			fmt.Fprintf(out, "  agents (QUIC):   %s  (agents dial %s)\n", a.QUIC, a.Advertise)
			if a.TCP != "" {
				fmt.Fprintf(out, "  agents (TCP):    %s  (fallback where UDP is blocked)\n", a.TCP)
			}
			fmt.Fprintf(out, "  fingerprint:     %s\n", a.Fingerprint)
			fmt.Fprintf(out, "  admin URL:       %s  (token in %s)\n", a.AdminURL, d.Dir().File(datadir.TokenFile))
			fmt.Fprintf(out, "  data folder:     %s\n", d.Dir().Path)
			fmt.Fprintf(out, "  time zone:       %s (end dates warned %s ahead)\n", d.Dates().Zone, daysText(d.Dates().Window))
			fmt.Fprintf(out, "  enroll an agent: tally-server enroll-info --data %s\n", d.Dir().Path)
			if m.Ready != nil {
				m.Ready(a)
			}
			var serveErr error
			select {
			case <-ctx.Done():
			case serveErr = <-d.Err():
				log.Error("server failed", "err", serveErr)
			}
			stop() // a second signal now kills the process the default way
			sctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
			defer cancel()
			if err := d.Shutdown(sctx); err != nil {
				return fmt.Errorf("stop: %w", err)
			}
			return serveErr
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data", "", "data folder (default $TALLY_DATA or "+DefaultDataDir+")")
	f.StringVar(&cfg.Store, "store", "", "database: a postgres:// URL shared by every replica (TLS settings in the URL; pool sizes from --store-readers; see the README), or nothing for the SQLite file in the data folder (default $TALLY_STORE)")
	f.IntVar(&cfg.StoreReaders, "store-readers", 0, "connections of the store's read pool (0: 4); on PostgreSQL each replica also holds 2 for writes and 1 for the leader election")
	f.StringVar(&cfg.Listen, "listen", daemon.DefaultListen, "UDP address for agents (QUIC); port 0 picks a free port")
	f.StringVar(&cfg.Admin, "admin", daemon.DefaultAdmin, "TCP address of the admin API and console; port 0 picks a free port")
	f.StringVar(&cfg.Advertise, "advertise", "", "HOST:PORT agents should dial, shown by enroll-info (default: the listen address, or this host's name for a wildcard address); for replicas, every replica's address separated by commas, in order of preference, the same on each")
	f.StringVar(&cfg.Pprof, "pprof", "", "serve net/http/pprof on this loopback HOST:PORT")
	f.StringVar(&logFormat, "log-format", logging.FormatText, "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.DurationVar(&stopTimeout, "stop-timeout", 30*time.Second, "how long requests in flight may take to finish at shutdown")
	f.IntVar(&cfg.MaxHandshakes, "max-handshakes", 64, "handshakes in progress at most; past it new QUIC connections are refused at once (agents retry after a jittered wait) and TCP ones wait for a slot within --tcp-start-timeout")
	f.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", 10*time.Second, "how long an agent's QUIC handshake may stay silent (QUIC gives up on one not done in twice this); shorter frees --max-handshakes slots sooner in a storm")
	f.IntVar(&cfg.MaxTCPConns, "max-tcp-conns", 1024, "TCP connections open at once; past it the oldest that has not yet sent a request is closed to make room, or the new one when every one serves an agent")
	f.IntVar(&cfg.MaxConnsPerAddr, "max-conns-per-addr", 512, "connections from one client address (an IPv6 /64 counts as one) on each transport; agents behind one NAT address need one each")
	f.IntVar(&cfg.MaxHandshakesPerAddr, "max-handshakes-per-addr", 0, "handshakes in progress from one client address on each transport; past it new QUIC ones are refused (agents retry after a jittered wait) and TCP ones wait their turn; 0: half of --max-handshakes; negative: no bound")
	f.IntVar(&cfg.QUICRetryAbove, "quic-retry-above", 0, "QUIC handshakes in progress past which new connections must prove their address with a Retry (one more round trip); 0: a quarter of --max-handshakes; negative: never")
	f.DurationVar(&cfg.TCPStartTimeout, "tcp-start-timeout", 5*time.Second, "how long a new TCP connection has to finish TLS and send its first request")
	f.IntVar(&cfg.MaxInFlight, "max-in-flight", 2048, "requests in progress at most; past it they are answered busy with a retry-after")
	f.IntVar(&cfg.MaxUnauthenticated, "max-unauthenticated", 32, "requests of keys that never enrolled (enrollments, at most 8 KiB each) handled at once, apart from --max-in-flight; past it they wait a second, then are answered busy")
	f.StringVar(&unauthBytes, "unauthenticated-bytes", "2MiB", "bytes of requests of keys that never enrolled being read at once (at least 16KiB), apart from --body-budget; past it they are answered busy")
	f.StringVar(&bodyBudget, "body-budget", "64MiB", "bytes of enrolled agents' requests being read and handled at once (at least 8MiB); a request that cannot get its bytes within a second is answered busy")
	f.DurationVar(&cfg.BodyTimeout, "body-timeout", 5*time.Second, "how long a request's body may take to arrive after its first byte, plus one second per 64 KiB of it; slower ones are refused")
	f.StringVar(&memLimit, "memory-limit", "896MiB", "soft memory limit for the garbage collector (e.g. 2GiB; 0 for none; GOMEMLIMIT wins); raise it for fleets past 10,000 connected agents")
	f.BoolVar(&cfg.No0RTT, "no-0rtt", false, "refuse requests sent in 0-RTT data on resumed connections")
	f.BoolVar(&cfg.NoTCP, "no-tcp", false, "do not listen for agents on TCP (TLS) at the QUIC port; agents behind UDP-blocking firewalls then cannot reach the server")
	f.DurationVar(&cfg.StaleAfter, "stale-after", 0, "stale-node policy: set computers not seen for this long to Missing at each maintenance run (e.g. 720h); 0 disables it")
	f.DurationVar(&cfg.MaintenanceEvery, "maintenance-every", 24*time.Hour, "interval of the maintenance job; negative disables the periodic run")
	f.StringVar(&cfg.TimeZone, "timezone", "", "IANA time zone dates are shown in and admins' dates are read in (2027-06-30 means the end of that day there), e.g. Europe/Paris (default: this host's zone; TZ honoured)")
	f.IntVar(&cfg.MaxPackages, "max-packages", 65536, "packages one computer's stored software set may hold; a post whose software would pass it is not stored (the verdict says why, the audit log has it)")
	f.StringVar(&diskWarn, "disk-warn", "1GiB", "warn in the log while the file system holding the data folder has less free than this: a size (1GiB) or a share of its size (5%); /metrics shows the free bytes")
	f.BoolVar(&cfg.SkipQuickCheck, "skip-quick-check", false, "do not check the database's pages (PRAGMA quick_check) at start; see docs/PERFORMANCE.md for what it costs on a big database")
	f.StringVar(&cfg.LDAPCAFile, "ldap-ca-file", "", "PEM file of the CAs that sign the LDAP directories' certificates (ldaps://, --start-tls); default: the system's CAs")
	f.DurationVar(&cfg.Sessions.Idle, "session-idle", admins.DefaultSessionIdle, "a console session ends after this long without a request")
	f.DurationVar(&cfg.Sessions.Absolute, "session-max", admins.DefaultSessionAbsolute, "a console session ends this long after sign-in, however busy")
	f.StringVar(&expiryWarning, "expiry-warning", "30d", "warn this long before a license, its upgrade protection or an Activation ID ends (days like 30d, or a duration like 720h)")
	return cmd
}

// parseDiskWarn reads --disk-warn: a size (1GiB) or a percentage (5%).
func parseDiskWarn(s string) (daemon.DiskThreshold, error) {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v <= 0 || v >= 100 {
			return daemon.DiskThreshold{}, fmt.Errorf("%q is not a share of the disk between 0%% and 100%%, like 5%%", s)
		}
		return daemon.DiskThreshold{Percent: v}, nil
	}
	n, err := bytesize.Parse(s)
	if err != nil || n <= 0 {
		return daemon.DiskThreshold{}, fmt.Errorf("%q is not a size like 1GiB or a share like 5%%", s)
	}
	return daemon.DiskThreshold{Bytes: uint64(n)}, nil
}

// daysText shows a window in days when it is whole days.
func daysText(w time.Duration) string {
	if w%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", w/(24*time.Hour))
	}
	return w.String()
}

// parseWindow reads a warning window: whole days (30d) or a Go duration.
func parseWindow(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days > 0 && days <= 3660 {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	return 0, fmt.Errorf("%q is not a window like 30d or 720h (1 day to 10 years)", s)
}
