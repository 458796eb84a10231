// Package daemon assembles a running tally-server: the data folder, the
// store, the QUIC listener for agents, and the admin HTTP server, started
// in that order and stopped in reverse, so that requests in flight finish
// and commit before the database closes.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tallyhq/tally/common/addrlist"
	"github.com/tallyhq/tally/common/buildinfo"
	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/admins"
	"github.com/tallyhq/tally/server/alerting"
	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/console"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/directory"
	"github.com/tallyhq/tally/server/engine"
	"github.com/tallyhq/tally/server/leader"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/listener"
	"github.com/tallyhq/tally/server/metrics"
	"github.com/tallyhq/tally/server/nodeapi"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

// Defaults for the listen addresses.
const (
	DefaultListen = "0.0.0.0:4433"
	DefaultAdmin  = "127.0.0.1:8080"
)

// Config configures a server.
type Config struct {
	DataDir string
	// Store is the database: empty for the SQLite file in the data
	// folder, or a postgres:// URL, which several servers (replicas) may
	// share.
	Store     string
	Listen    string // UDP host:port for agents; TCP on the same port too, unless NoTCP
	Admin     string // TCP host:port for the admin API and console
	Advertise string // host:port agents dial, or several (replicas) separated by commas; derived from Listen when empty
	Pprof     string // loopback host:port for net/http/pprof; empty disables
	Logger    *slog.Logger
	Clock     clock.Clock
	// StaleAfter sets computers not seen for this long to Missing at each
	// maintenance run; zero disables the stale-node policy.
	StaleAfter time.Duration
	// MaintenanceEvery is the interval of the maintenance job (default
	// 24 h; negative disables the periodic run, on-demand runs stay).
	MaintenanceEvery time.Duration
	// ExpiryPoll is how often license expiry is checked (default 15 s).
	ExpiryPoll time.Duration
	// Alerts tunes the alert notifier (alerting.Config: Every, Poll,
	// Backoff, MaxAttempts); its store, clock and zone are the server's.
	Alerts alerting.Config
	// NoTCP turns off the TLS-over-TCP listener on the QUIC port, which
	// agents fall back to where UDP is blocked.
	NoTCP bool
	// MaxHandshakes bounds QUIC handshakes in progress (0: the listener's
	// default, 64); MaxInFlight bounds requests in progress (0: 2048).
	MaxHandshakes int
	MaxInFlight   int
	// HandshakeTimeout bounds a silent agent handshake (0: 10 s).
	HandshakeTimeout time.Duration
	// MaxUnauthenticated and UnauthenticatedBytes bound the requests of
	// keys that are not enrolled (enrollments) being handled and read (0:
	// 32 and 2 MiB); BodyBytes bounds the bytes of enrolled agents'
	// requests being read and handled (0: 64 MiB); BodyTimeout is the
	// grace for a request's body to arrive (0: 5 s). See listener.Config.
	MaxUnauthenticated   int
	UnauthenticatedBytes int64
	BodyBytes            int64
	BodyTimeout          time.Duration
	// Connection limits against hostile clients; 0 takes the listener's
	// default (see listener.Config): MaxTCPConns 1024, MaxConnsPerAddr
	// 512, MaxHandshakesPerAddr half of MaxHandshakes, QUICRetryAbove a
	// quarter of MaxHandshakes (negative: never), TCPStartTimeout 5 s.
	MaxTCPConns          int
	MaxConnsPerAddr      int
	MaxHandshakesPerAddr int
	QUICRetryAbove       int
	TCPStartTimeout      time.Duration
	// No0RTT refuses requests in 0-RTT data. 0-RTT is safe for Tally's
	// requests, each applied once by its sequence number, and saves a
	// round trip on reconnect.
	No0RTT bool
	// TimeZone is the IANA zone dates are shown in and admins' dates are
	// read in ("2027-06-30" ends at midnight there); empty: the host's
	// local zone (TZ honoured).
	TimeZone string
	// ExpiryWarning is how long before an end date (license, upgrade
	// protection, Activation ID) admins are warned (0: 30 days).
	ExpiryWarning time.Duration
	// MaxPackages caps a computer's stored software set (0: 65,536).
	MaxPackages int
	// DiskWarn is the free space of the data folder's file system under
	// which the server warns in its log (zero: DefaultDiskWarn);
	// DiskCheckEvery how often it looks (0: 1 minute).
	DiskWarn       DiskThreshold
	DiskCheckEvery time.Duration
	// SkipQuickCheck skips PRAGMA quick_check of the database at start.
	SkipQuickCheck bool
	// Sessions say when a console session expires (zero: the defaults).
	Sessions admins.SessionRules
	// Getenv reads the environment (TZ); nil is os.Getenv.
	Getenv func(string) string
	// StoreReaders is the size of the store's read pool (0: the store's
	// default).
	StoreReaders int
	// Elector decides when this server runs the jobs that must run once
	// across replicas (see jobs.go); nil: leader.Always, for a server
	// alone on its database.
	Elector leader.Elector
	// LDAPCAFile is a PEM file of the CAs that sign the directories'
	// certificates (ldaps://, StartTLS), read at each sync; empty: the
	// system's CAs.
	LDAPCAFile string
}

// Daemon is a running server.
type Daemon struct {
	cfg      Config
	log      *slog.Logger
	dir      datadir.Dir
	id       datadir.Identity
	db       *sqlstore.DB
	quic     *listener.QUIC
	tcp      *listener.TCP // nil with NoTCP
	admin    *http.Server
	adminLn  net.Listener
	pprof    *http.Server
	jobs     *onceJobs
	metrics  *metrics.Metrics
	catalog  *catalog.Catalog
	addrs    datadir.Addresses
	dates    adminapi.Dates
	unlock   func()
	disk     *diskWatch
	serveErr chan error

	api *adminapi.API
}

// Start opens everything and begins serving. On error, whatever was opened
// is closed again.
func Start(cfg Config) (_ *Daemon, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Admin == "" {
		cfg.Admin = DefaultAdmin
	}
	// Bad addresses are refused before anything is created or changed
	// (the data folder, its keys, the first enrollment secret).
	if err := checkAddresses(cfg); err != nil {
		return nil, err
	}
	dates, err := datesOf(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.LDAPCAFile != "" {
		if _, err := directory.TLSConfig("ldaps://directory", cfg.LDAPCAFile); err != nil {
			return nil, fmt.Errorf("--ldap-ca-file: %w", err)
		}
	}
	d := &Daemon{cfg: cfg, log: cfg.Logger, dates: dates, serveErr: make(chan error, 4)}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if d.dir, d.id, err = datadir.Open(cfg.DataDir); err != nil {
		return nil, err
	}
	if d.unlock, err = d.dir.Lock(); err != nil {
		return nil, err
	}
	postgres := sqlstore.IsPostgresURL(cfg.Store)
	if cfg.Store != "" && !postgres {
		return nil, fmt.Errorf("--store %q: give a postgres:// URL, or nothing for the SQLite file in the data folder", cfg.Store)
	}
	if postgres {
		changed, err := d.shareIdentity(context.Background())
		if err != nil {
			return nil, err
		}
		if changed {
			if d.dir, d.id, err = datadir.Open(cfg.DataDir); err != nil {
				return nil, err
			}
			d.log.Info("using the identity of the database's replicas", "fingerprint", d.id.Fingerprint)
		}
		if d.cfg.Elector == nil {
			el, err := leader.NewPostgres(cfg.Store, leader.Config{Logger: d.log})
			if err != nil {
				return nil, err
			}
			d.cfg.Elector = el
		}
	}
	if d.id.Created {
		d.log.Info("created server identity", "data", d.dir.Path, "fingerprint", d.id.Fingerprint)
	}
	if d.catalog, err = LoadCatalog(d.dir); err != nil {
		return nil, err
	}
	d.metrics = metrics.New()
	opts := sqlstore.Options{Clock: cfg.Clock, Logger: cfg.Logger, Engine: engine.New(d.catalog).InZone(d.dates.Zone),
		RecordKey: d.id.Key, CommitObserver: d.metrics.Commit, OnVerdicts: d.metrics.Verdicts, VerifyLicense: d.verifySigned, SkipQuickCheck: cfg.SkipQuickCheck, MaxPackages: cfg.MaxPackages,
		Readers: cfg.StoreReaders}
	if postgres {
		d.db, err = sqlstore.OpenPostgres(context.Background(), cfg.Store, opts)
	} else {
		d.db, err = sqlstore.Open(d.dir.File(datadir.DatabaseFile), opts)
	}
	if err != nil {
		return nil, err
	}
	d.warnLicenseProblems()
	if err := d.ensureSecret(); err != nil {
		return nil, err
	}
	// The data folder's token is the first admin's: on first start, and on
	// the first start after an upgrade from before named admins.
	if made, err := d.db.EnsureFirstAdmin(context.Background(), admins.HashSecret(d.id.Token)); err != nil {
		return nil, err
	} else if made {
		d.log.Info("made the first admin, holding the data folder's admin-token", "admin", store.FirstAdmin)
	}

	d.metrics.Watch(d.db)
	d.metrics.WatchDisk(func() (uint64, uint64, error) { return diskSpace(d.dir.Path) })
	if d.cfg.DiskWarn == (DiskThreshold{}) {
		d.cfg.DiskWarn.Bytes = DefaultDiskWarn
	}
	every := d.cfg.DiskCheckEvery
	if every <= 0 {
		every = time.Minute
	}
	d.disk = d.watchDisk(every)
	handler := nodeapi.New(d.db, d.log, d.metrics.Request, nodeapi.WithClock(cfg.Clock))
	rk := quic.StatelessResetKey(d.id.ResetKey)
	tk := quic.TokenGeneratorKey(d.id.TokenKey)
	d.quic, d.tcp, err = listener.Listen(listener.Config{
		Addr:                 cfg.Listen,
		TLS:                  identity.ServerTLS(d.id.Cert, protocol.ALPN),
		Handler:              handler,
		Refuse:               nodeapi.Refuse,
		Logger:               d.log,
		StatelessResetKey:    &rk,
		TokenKey:             &tk,
		MaxHandshakes:        cfg.MaxHandshakes,
		MaxInFlight:          cfg.MaxInFlight,
		HandshakeTimeout:     cfg.HandshakeTimeout,
		Authenticate:         handler.Authenticate,
		MaxUnauthenticated:   cfg.MaxUnauthenticated,
		UnauthenticatedBytes: cfg.UnauthenticatedBytes,
		BodyBytes:            cfg.BodyBytes,
		BodyTimeout:          cfg.BodyTimeout,
		Allow0RTT:            !cfg.No0RTT,

		MaxConns:             cfg.MaxTCPConns,
		MaxConnsPerAddr:      cfg.MaxConnsPerAddr,
		MaxHandshakesPerAddr: cfg.MaxHandshakesPerAddr,
		RetryAbove:           cfg.QUICRetryAbove,
		StartTimeout:         cfg.TCPStartTimeout,
	}, cfg.NoTCP)
	if err != nil {
		return nil, err
	}
	d.metrics.CountRefusedHandshakes(func() int64 {
		n := d.quic.HandshakesRefused()
		if d.tcp != nil {
			n += d.tcp.HandshakesRefused()
		}
		return n
	})
	d.metrics.CountHandshakes(d.quic.Handshakes)
	d.metrics.CountRetries(d.quic.Retries)
	if d.tcp != nil {
		d.metrics.CountTurnedAway(d.tcp.ConnsTurnedAway)
	}

	d.adminLn, err = net.Listen("tcp", cfg.Admin)
	if err != nil {
		return nil, fmt.Errorf("admin listener on %s: %w", cfg.Admin, err)
	}
	advertise := cfg.Advertise
	if advertise == "" {
		advertise = advertiseAddr(d.quic.Addr())
	}
	info := adminapi.ServerInfo{Advertise: advertise, Fingerprint: d.id.Fingerprint, Version: buildinfo.Version()}
	con, err := console.New(console.Config{Store: d.db, Token: d.id.Token, Info: info, Logger: d.log, Dates: d.dates, Sessions: cfg.Sessions,
		Catalog: d.catalog, VerifyLicense: d.verifyLicense, Maintenance: d.maintenance, SecretRevoked: d.secretRevoked, DirectorySource: d.directorySource})
	if err != nil {
		return nil, err
	}
	d.api = adminapi.New(adminapi.Config{Store: d.db, Token: d.id.Token, Info: info, Logger: d.log,
		Extra:  map[string]http.Handler{"GET /metrics": d.metrics.Handler()},
		Public: map[string]http.Handler{"/": con}, Catalog: d.catalog, VerifyLicense: d.verifyLicense, Maintenance: d.maintenance,
		Dates: d.dates, SecretRevoked: d.secretRevoked, DirectorySource: d.directorySource})
	d.admin = &http.Server{Handler: d.api, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelWarn)}

	if cfg.Pprof != "" {
		if err := d.startPprof(cfg.Pprof); err != nil {
			return nil, err
		}
	}

	d.jobs = d.startOnceJobs()

	go func() { d.serveErr <- d.quic.Serve() }()
	if d.tcp != nil {
		go func() { d.serveErr <- d.tcp.Serve() }()
	}
	go func() {
		if err := d.admin.Serve(d.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.serveErr <- fmt.Errorf("admin server: %w", err)
		}
	}()

	d.addrs = datadir.Addresses{
		QUIC:        d.quic.Addr().String(),
		TCP:         tcpAddr(d.tcp),
		Advertise:   advertise,
		AdminURL:    "http://" + d.adminLn.Addr().String(),
		Fingerprint: d.id.Fingerprint,
		PID:         os.Getpid(),
		StartedAt:   cfg.Clock.Now().UTC(),
	}
	if err := d.dir.WriteAddresses(d.addrs); err != nil {
		return nil, err
	}
	d.log.Info("tally-server started", "version", buildinfo.Version(), "quic", d.addrs.QUIC, "tcp", d.addrs.TCP, "advertise", advertise,
		"admin", d.addrs.AdminURL, "fingerprint", d.id.Fingerprint, "data", d.dir.Path, "timezone", d.dates.Zone.String(), "expiry_warning", d.dates.Window.String())
	return d, nil
}

// CheckAddresses is checkAddresses for the command line, which refuses a
// malformed address as a usage mistake before anything starts.
func CheckAddresses(cfg Config) error { return checkAddresses(cfg) }

// checkAddresses checks the form of every address the daemon will listen
// on or advertise: HOST:PORT with a port number (a port already taken is
// only found when listening).
func checkAddresses(cfg Config) error {
	if cfg.Advertise != "" && strings.Contains(cfg.Advertise, ",") {
		// Replicas: every address agents may dial, in order of preference.
		if _, err := addrlist.Parse(cfg.Advertise); err != nil {
			return fmt.Errorf("--advertise %q: %w", cfg.Advertise, err)
		}
		cfg.Advertise = ""
	}
	for _, a := range []struct{ flag, addr string }{
		{"--listen", cfg.Listen}, {"--admin", cfg.Admin}, {"--advertise", cfg.Advertise}, {"--pprof", cfg.Pprof},
	} {
		if a.addr == "" {
			continue
		}
		host, port, err := net.SplitHostPort(a.addr)
		if err != nil {
			return fmt.Errorf("%s %q: %w (want HOST:PORT, e.g. 0.0.0.0:4443)", a.flag, a.addr, err)
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && a.flag == "--advertise") {
			return fmt.Errorf("%s %q: %q is not a port number", a.flag, a.addr, port)
		}
		if a.flag == "--advertise" && host == "" {
			return fmt.Errorf("--advertise %q: agents need a host name or IP address to dial", a.addr)
		}
		if a.flag == "--pprof" {
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				return fmt.Errorf("--pprof %q: profiling is only served on loopback (127.0.0.1 or ::1)", a.addr)
			}
		}
	}
	return nil
}

// startPprof serves net/http/pprof on addr, which checkAddresses has
// checked to be a loopback HOST:PORT.
func (d *Daemon) startPprof(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("pprof listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	d.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go d.pprof.Serve(ln)
	d.log.Info("pprof listening", "addr", ln.Addr().String())
	return nil
}

// ensureSecret creates the first enrollment secret on a new database and
// writes it into the data folder; on an older one it makes sure the file
// holds no secret that can no longer enroll.
func (d *Daemon) ensureSecret() error {
	ctx := context.Background()
	secrets, err := d.db.ListSecrets(ctx)
	if err != nil {
		return err
	}
	if len(secrets) > 0 {
		return d.refreshSecretFile(ctx)
	}
	s, err := d.db.CreateSecret(ctx, "initial", "", nil)
	if err != nil {
		return fmt.Errorf("create the first enrollment secret: %w", err)
	}
	d.log.Info("created the first enrollment secret", "id", s.ID, "file", d.dir.File(datadir.SecretFile))
	return d.dir.WriteSecret(s.Value)
}

// secretRevoked keeps the enroll-secret file from handing out the secret
// just revoked.
func (d *Daemon) secretRevoked(ctx context.Context, _ store.Secret) error {
	return d.refreshSecretFile(ctx)
}

// refreshSecretFile replaces a revoked or expired secret in the data
// folder's enroll-secret file with the newest active one, or removes the
// file when no secret can enroll. A file the admin removed stays removed.
func (d *Daemon) refreshSecretFile(ctx context.Context) error {
	path := d.dir.File(datadir.SecretFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	secrets, err := d.db.ListSecrets(ctx)
	if err != nil {
		return err
	}
	now := d.dates.Now()
	held := strings.TrimSpace(string(data))
	for _, s := range secrets {
		if s.Value == held && s.Active(now) {
			return nil
		}
	}
	next, err := adminapi.PickSecret(secrets, "", now)
	if err != nil {
		d.log.Warn("no enrollment secret can enroll: removed the enroll-secret file", "file", path)
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", path, err)
		}
		return nil
	}
	d.log.Info("the enroll-secret file held a secret that can no longer enroll: it now holds another", "file", path, "id", next.ID)
	return d.dir.WriteSecret(next.Value)
}

// datesOf reads the time zone and expiry warning settings; a zone that is
// not known stops the server before anything is created.
func datesOf(cfg Config) (adminapi.Dates, error) {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	loc, err := license.LoadZone(cfg.TimeZone, getenv)
	if err != nil {
		return adminapi.Dates{}, fmt.Errorf("--timezone: %w", err)
	}
	w := cfg.ExpiryWarning
	if w < 0 {
		return adminapi.Dates{}, fmt.Errorf("--expiry-warning %s: give a positive window such as 30d or 720h", w)
	}
	if w == 0 {
		w = license.DefaultExpiryWarning
	}
	return adminapi.Dates{Zone: loc, Window: w, Clock: cfg.Clock}, nil
}

// advertiseAddr picks the address agents should dial: the bound one, or
// for a wildcard bind, this host's name with the bound port.
func advertiseAddr(a net.Addr) string {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return a.String()
	}
	if !ua.IP.IsUnspecified() {
		return ua.String()
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return net.JoinHostPort(host, strconv.Itoa(ua.Port))
}

// tcpAddr is the TCP listener's address, or "" when it is off.
func tcpAddr(t *listener.TCP) string {
	if t == nil {
		return ""
	}
	return t.Addr().String()
}

// Addresses returns where the server listens.
func (d *Daemon) Addresses() datadir.Addresses { return d.addrs }

// Identity returns the server's identity (fingerprint, token).
func (d *Daemon) Identity() datadir.Identity { return d.id }

// Dates returns the time zone, expiry warning window and clock in use.
func (d *Daemon) Dates() adminapi.Dates { return d.dates }

// Dir returns the data folder.
func (d *Daemon) Dir() datadir.Dir { return d.dir }

// AdminRoutes lists every route of the admin API with the least role it needs.
func (d *Daemon) AdminRoutes() []adminapi.Route { return d.api.Routes() }

// Store returns the store (for tests and embedded use).
func (d *Daemon) Store() *sqlstore.DB { return d.db }

// Err delivers a fatal serving error, if one happens.
func (d *Daemon) Err() <-chan error { return d.serveErr }

// Shutdown stops the listeners, lets requests in flight finish (until ctx
// ends), and closes the database.
func (d *Daemon) Shutdown(ctx context.Context) error {
	d.log.Info("tally-server stopping")
	err := d.close0(ctx)
	d.log.Info("tally-server stopped")
	return err
}

func (d *Daemon) close() { _ = d.close0(context.Background()) }

func (d *Daemon) close0(ctx context.Context) error {
	var errs []error
	tcpDone := make(chan error, 1)
	if d.tcp != nil { // stopped alongside QUIC, so both share the stop timeout
		go func() { tcpDone <- d.tcp.Shutdown(ctx) }()
	} else {
		tcpDone <- nil
	}
	if d.quic != nil {
		errs = append(errs, d.quic.Shutdown(ctx))
	}
	if err := <-tcpDone; err != nil {
		errs = append(errs, err)
	}
	if d.jobs != nil {
		d.jobs.stop()
	}
	if d.disk != nil {
		d.disk.close()
	}
	if d.admin != nil {
		errs = append(errs, d.admin.Shutdown(ctx))
	} else if d.adminLn != nil {
		d.adminLn.Close()
	}
	if d.pprof != nil {
		d.pprof.Close()
	}
	if d.db != nil {
		errs = append(errs, d.db.Close())
	}
	if d.addrs.PID != 0 {
		errs = append(errs, d.dir.RemoveAddresses())
	}
	if d.unlock != nil {
		d.unlock()
	}
	return errors.Join(errs...)
}

// directorySource reaches a directory over LDAP, trusting --ldap-ca-file.
func (d *Daemon) directorySource(dir store.Directory) directory.Source {
	return &directory.LDAP{Dir: dir, CAFile: d.cfg.LDAPCAFile}
}
