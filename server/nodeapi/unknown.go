package nodeapi

import (
	"sync"
	"time"

	"github.com/tallyhq/tally/protocol"
)

// Keys found unknown (never enrolled, or revoked) are remembered for
// unknownFor, at most maxUnknown of them: a client that never enrolled and
// opens stream after stream then costs the store one lookup every
// unknownFor, and a successful enrollment forgets its key at once.
const (
	unknownFor = 2 * time.Second
	maxUnknown = 4096
)

// unknownKeys remembers the refusals of unknown keys.
type unknownKeys struct {
	mu sync.Mutex
	m  map[string]unknownEntry
}

type unknownEntry struct {
	refusal *protocol.Error
	until   time.Time
}

// lookup returns the remembered refusal of id at now, or nil.
func (u *unknownKeys) lookup(id string, now time.Time) *protocol.Error {
	u.mu.Lock()
	defer u.mu.Unlock()
	k, ok := u.m[id]
	if !ok {
		return nil
	}
	if now.After(k.until) {
		delete(u.m, id)
		return nil
	}
	return k.refusal
}

// remember keeps id's refusal for unknownFor from now; when maxUnknown are
// kept, the expired ones go, and if none has, id is not kept.
func (u *unknownKeys) remember(id string, refusal *protocol.Error, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[string]unknownEntry{}
	}
	if len(u.m) >= maxUnknown {
		for k, v := range u.m {
			if now.After(v.until) {
				delete(u.m, k)
			}
		}
		if len(u.m) >= maxUnknown {
			return
		}
	}
	u.m[id] = unknownEntry{refusal: refusal, until: now.Add(unknownFor)}
}

func (u *unknownKeys) forget(id string) {
	u.mu.Lock()
	delete(u.m, id)
	u.mu.Unlock()
}
