package identity

import (
	"crypto/tls"
	"testing"
)

// A session the TLS client deleted comes back with RestoreSessions; one
// stored since stays; a configuration without the keeper is left alone.
func TestRestoreSessionsPutsBackADeletedTicket(t *testing.T) {
	cfg := &tls.Config{ClientSessionCache: newSessionKeeper(4)}
	old, newer := &tls.ClientSessionState{}, &tls.ClientSessionState{}
	cfg.ClientSessionCache.Put("tally", old)
	cfg.ClientSessionCache.Put("tally", nil) // what crypto/tls does after a failed handshake
	if _, ok := cfg.ClientSessionCache.Get("tally"); ok {
		t.Fatal("a deleted session is still in the cache")
	}
	RestoreSessions(cfg)
	if got, ok := cfg.ClientSessionCache.Get("tally"); !ok || got != old {
		t.Fatalf("after RestoreSessions: %v %v, want the deleted session back", got, ok)
	}
	cfg.ClientSessionCache.Put("tally", newer)
	RestoreSessions(cfg)
	if got, _ := cfg.ClientSessionCache.Get("tally"); got != newer {
		t.Fatal("RestoreSessions replaced a newer session with an older one")
	}
	plain := &tls.Config{ClientSessionCache: tls.NewLRUClientSessionCache(1)}
	RestoreSessions(plain) // no keeper: nothing to do, no panic
	if _, ok := plain.ClientSessionCache.Get("tally"); ok {
		t.Fatal("a plain cache gained a session")
	}
}
