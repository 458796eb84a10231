package admins

import (
	"sync"
	"time"
)

// Limiter counts failed sign-ins per key (a client address, an admin
// name) and refuses a key that failed too often within a window, until the
// window has passed: guessing a password is then slow whoever guesses,
// and one address cannot lock everyone out. Its memory is bounded.
type Limiter struct {
	Max    int           // failures allowed within Window
	Window time.Duration // how long failures count
	Keys   int           // keys remembered at most

	mu   sync.Mutex
	fail map[string]*failures
}

type failures struct {
	n     int
	first time.Time
}

// Sign-in limits: 5 failed sign-ins per address and per name in 15 minutes.
const (
	DefaultLoginFailures = 5
	DefaultLoginWindow   = 15 * time.Minute
	defaultLimiterKeys   = 10000
)

// NewLimiter returns a limiter of max failures per window.
func NewLimiter(max int, window time.Duration) *Limiter {
	return &Limiter{Max: max, Window: window, Keys: defaultLimiterKeys, fail: map[string]*failures{}}
}

// Wait returns how long key must wait before it may try again, zero if it may now.
func (l *Limiter) Wait(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.fail[key]
	if f == nil {
		return 0
	}
	end := f.first.Add(l.Window)
	if !now.Before(end) {
		delete(l.fail, key)
		return 0
	}
	if f.n < l.Max {
		return 0
	}
	return end.Sub(now)
}

// Failed records a failed attempt of key.
func (l *Limiter) Failed(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f := l.fail[key]; f != nil && now.Before(f.first.Add(l.Window)) {
		f.n++
		return
	}
	if len(l.fail) >= l.Keys {
		// Forget what has expired; if nothing has, forget an arbitrary
		// key rather than grow without bound.
		for k, f := range l.fail {
			if !now.Before(f.first.Add(l.Window)) {
				delete(l.fail, k)
			}
		}
		for k := range l.fail {
			if len(l.fail) < l.Keys {
				break
			}
			delete(l.fail, k)
		}
	}
	l.fail[key] = &failures{n: 1, first: now}
}

// Succeeded forgets key's failures.
func (l *Limiter) Succeeded(key string) {
	l.mu.Lock()
	delete(l.fail, key)
	l.mu.Unlock()
}
