// Package scheduler runs the server's periodic work: the maintenance job on
// its interval, and the expiry of licenses at the moment they expire, so
// that usage reports are exact without waiting for a post. Reclamation never
// depends on it: every post, status change and deletion frees in its own
// transaction.
package scheduler

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/server/store"
)

// Store is what the scheduler drives.
type Store interface {
	ExpireLicenses(ctx context.Context) (store.Change, error)
}

// Config configures a Scheduler.
type Config struct {
	Store       Store
	Maintenance func(ctx context.Context) (store.MaintenanceReport, error)
	// Every is the maintenance interval; zero disables periodic runs.
	Every time.Duration
	// Poll is how often license expiry is checked (default 15 s).
	Poll   time.Duration
	Clock  clock.Clock
	Logger *slog.Logger
}

// Scheduler is running periodic work.
type Scheduler struct {
	cfg    Config
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start begins the periodic work.
func Start(cfg Config) *Scheduler {
	if cfg.Poll <= 0 {
		cfg.Poll = 15 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Scheduler{cfg: cfg, cancel: cancel}
	s.wg.Add(1)
	go s.loop(ctx)
	return s
}

func (s *Scheduler) loop(ctx context.Context) {
	defer s.wg.Done()
	log := s.cfg.Logger
	poll := time.NewTicker(s.cfg.Poll)
	defer poll.Stop()
	var maint <-chan time.Time
	if s.cfg.Every > 0 && s.cfg.Maintenance != nil {
		t := time.NewTicker(s.cfg.Every)
		defer t.Stop()
		maint = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			ch, err := s.cfg.Store.ExpireLicenses(ctx)
			if err != nil {
				log.Error("expire licenses", "err", err)
				continue
			}
			for _, c := range ch.Seats {
				log.Info("license expired: seat "+c.Change, "computer", c.ComputerID, "product", c.Product, "license", c.License, "reason", c.Reason)
			}
		case <-maint:
			r, err := s.cfg.Maintenance(ctx)
			if err != nil {
				log.Error("maintenance", "err", err)
				continue
			}
			level := slog.LevelInfo
			if len(r.Drift) > 0 {
				level = slog.LevelWarn
			}
			log.Log(ctx, level, "maintenance run", "drift", len(r.Drift), "repaired", len(r.Repaired), "missing", len(r.Missing), "purged", r.Purged, "took", r.Duration)
		}
	}
}

// Stop ends the periodic work and waits for a run in progress.
func (s *Scheduler) Stop() {
	s.cancel()
	s.wg.Wait()
}
