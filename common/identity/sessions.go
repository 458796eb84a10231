package identity

import (
	"crypto/tls"
	"sync"
)

// sessionKeeper is the client's TLS session cache. Go's TLS client deletes
// a session ticket from its cache when a handshake that offered it fails,
// to recover from a ticket the server cannot use. A busy server refuses a
// handshake (QUIC's CONNECTION_REFUSED) before it reads the ticket, and an
// agent's first attempt to reconnect after an outage usually is refused:
// without the ticket every retry ran a full handshake, and could not send
// its request as 0-RTT (87 of 20,000 agents resumed in a 20,000-agent
// storm). The keeper remembers the last session stored under each key, so
// that RestoreSessions can put it back after such a refusal.
type sessionKeeper struct {
	tls.ClientSessionCache
	mu   sync.Mutex
	last map[string]*tls.ClientSessionState
}

func newSessionKeeper(capacity int) *sessionKeeper {
	return &sessionKeeper{ClientSessionCache: tls.NewLRUClientSessionCache(capacity), last: map[string]*tls.ClientSessionState{}}
}

// Put stores cs under key; a nil cs (a deletion) leaves the last session
// remembered.
func (k *sessionKeeper) Put(key string, cs *tls.ClientSessionState) {
	if cs != nil {
		k.mu.Lock()
		k.last[key] = cs
		k.mu.Unlock()
	}
	k.ClientSessionCache.Put(key, cs)
}

// restore puts back each remembered session whose key the cache no longer
// holds.
func (k *sessionKeeper) restore() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for key, cs := range k.last {
		if _, ok := k.ClientSessionCache.Get(key); !ok {
			k.ClientSessionCache.Put(key, cs)
		}
	}
}

// RestoreSessions puts back, in a configuration made by ClientTLS, the
// session tickets that a failed handshake made the TLS client delete.
// Call it only after a handshake the server refused before any
// cryptography (a busy server's CONNECTION_REFUSED): after any other
// failure the ticket may be what failed.
func RestoreSessions(cfg *tls.Config) {
	if k, ok := cfg.ClientSessionCache.(*sessionKeeper); ok {
		k.restore()
	}
}
