// Package userscheduler runs seed 003's housekeeping that must happen by
// itself: it clears each user credential at its expiry (freeing the seat
// then, not when an admin runs a task) and syncs each directory on its
// interval, so a user deleted there frees its seat at that sync.
package userscheduler

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/server/directory"
	"github.com/tallyhq/tally/server/store"
)

// Runner clears each credential at its expiry and syncs each directory on
// its interval, by itself: no admin runs a task for a seat to come back.
type Runner struct {
	Store store.Users
	Clock clock.Clock
	// Poll is how often the runner reads the injected clock (default 1 s);
	// a credential is cleared within one poll of its expiry.
	Poll time.Duration
	// Source makes the listing of a directory (default: LDAP).
	Source func(store.Directory) directory.Source
	Logger *slog.Logger

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start begins the runner's loop.
func (r *Runner) Start() {
	if r.Poll <= 0 {
		r.Poll = time.Second
	}
	if r.Clock == nil {
		r.Clock = clock.System{}
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	if r.Source == nil {
		r.Source = func(d store.Directory) directory.Source { return &directory.LDAP{Dir: d} }
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(r.Poll)
		defer t.Stop()
		for {
			r.Tick(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// Stop ends the loop and waits for a run in progress.
func (r *Runner) Stop() {
	if r.cancel != nil {
		r.cancel()
		r.wg.Wait()
	}
}

// Tick does what is due at the clock's now.
func (r *Runner) Tick(ctx context.Context) {
	now := r.Clock.Now()
	if next, ok, err := r.Store.NextCredentialExpiry(ctx); err != nil {
		r.Logger.Error("read credential expiry", "err", err)
	} else if ok && !now.Before(next) {
		res, err := r.Store.SweepUsers(ctx)
		if err != nil {
			r.Logger.Error("clear expired credentials", "err", err)
		} else {
			r.Logger.Info("cleared expired credentials", "credentials", len(res.Items), "seats_freed", res.SeatsFreed)
		}
	}
	dirs, err := r.Store.Directories(ctx)
	if err != nil {
		r.Logger.Error("list directories", "err", err)
		return
	}
	for _, d := range dirs {
		if d.LastSyncAt != nil && now.Before(d.LastSyncAt.Add(d.Interval)) {
			continue
		}
		res, err := directory.Sync(ctx, r.Store, d.Name, r.Source(d), "scheduler")
		if err != nil {
			r.Logger.Error("directory sync failed", "directory", d.Name, "err", err)
			continue
		}
		r.Logger.Info("directory synced", "directory", d.Name, "seen", res.Seen, "added", res.Added, "deleted", res.Deleted, "seats_freed", res.SeatsFreed)
	}
}
