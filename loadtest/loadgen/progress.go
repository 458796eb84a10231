package loadgen

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// limiter spaces first attempts to at most rate per second.
type limiter struct {
	mu    sync.Mutex
	every time.Duration
	next  time.Time
}

func newLimiter(rate float64) *limiter {
	if rate <= 0 {
		return nil
	}
	return &limiter{every: time.Duration(float64(time.Second) / rate)}
}

func (l *limiter) wait(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	at := l.next
	l.next = l.next.Add(l.every)
	l.mu.Unlock()
	return sleep(ctx, time.Until(at))
}

// progress writes one line per second while a phase runs.
func (r *runner) progress(ctx context.Context, ph *phase) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var prev int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		acked := ph.totalAcked()
		var p99 time.Duration
		for k := range numKinds {
			if q := ph.lat[k].Quantile(0.99); q > p99 {
				p99 = q
			}
		}
		ph.mu.Lock()
		var errs int64
		for _, n := range ph.errs {
			errs += n
		}
		ph.mu.Unlock()
		line := fmt.Sprintf("%s %3.0fs: %d acked (%d/s), in flight %d, p99 %.1f ms, errors %d, handshakes %d",
			ph.name, time.Since(ph.start).Seconds(), acked, acked-prev, ph.inflight.Load(), ms(p99), errs,
			ph.handFull.Load()+ph.handResumed.Load())
		prev = acked
		if cpu, rss, ok := r.server.current(); ok {
			line += fmt.Sprintf(", server CPU %.0f%% RSS %.0f MB", cpu, mb(rss))
		}
		if r.cfg.ProgressTTY {
			fmt.Fprintf(r.cfg.Progress, "\r\033[K%s", line)
		} else {
			fmt.Fprintln(r.cfg.Progress, line)
		}
	}
}
