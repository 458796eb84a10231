// Package servertest starts a real tally-server in-process for tests: a
// temporary data folder, QUIC and the admin API on 127.0.0.1 port 0, the
// real SQLite store, stopped by t.Cleanup.
package servertest

import (
	"context"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/common/logging"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/daemon"
)

// Server is a running test server.
type Server struct {
	*daemon.Daemon
	T      testing.TB
	Config daemon.Config
	Admin  *adminapi.Client
	Secret string
}

// Option changes the configuration before start.
type Option func(*daemon.Config)

// WithClock sets the server's clock.
func WithClock(c clock.Clock) Option { return func(cfg *daemon.Config) { cfg.Clock = c } }

// WithMaxHandshakes bounds the handshakes in progress.
func WithMaxHandshakes(n int) Option { return func(cfg *daemon.Config) { cfg.MaxHandshakes = n } }

// WithDataDir uses dir instead of a fresh temporary folder (to restart a
// server on the same data).
func WithDataDir(dir string) Option { return func(cfg *daemon.Config) { cfg.DataDir = dir } }

// WithStore runs the server on the database at url (a postgres:// URL,
// which several servers may share) instead of the data folder's SQLite.
func WithStore(url string) Option { return func(cfg *daemon.Config) { cfg.Store = url } }

// New starts a server and registers its shutdown with t.Cleanup.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := daemon.Config{
		DataDir: t.TempDir(),
		Listen:  "127.0.0.1:0",
		Admin:   "127.0.0.1:0",
		Logger:  logging.Discard(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	d, err := daemon.Start(cfg)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	s := &Server{Daemon: d, T: t, Config: cfg}
	t.Cleanup(func() { s.Stop() })
	s.Admin, err = adminapi.NewClient(d.Addresses().AdminURL, d.Identity().Token)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Admin.EnrollInfo(context.Background())
	if err != nil {
		t.Fatalf("enroll info: %v", err)
	}
	s.Secret = info.Secret
	return s
}

// Addr is the QUIC address agents dial.
func (s *Server) Addr() string { return s.Addresses().QUIC }

// Fingerprint is the server's fingerprint.
func (s *Server) Fingerprint() string { return s.Identity().Fingerprint }

// Stop shuts the server down; calling it again does nothing.
func (s *Server) Stop() {
	if s.Daemon == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		s.T.Errorf("stop server: %v", err)
	}
	s.Daemon = nil
}
