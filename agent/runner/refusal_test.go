package runner

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/tallyhq/tally/agent/client"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
)

// Only the server's definitive refusal of the key drops records and
// leases; an outage, a busy or failing server, an impostor or a refused
// request never does.
func TestRefusedForGood(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{protocol.Errorf(protocol.StatusRevoked, "key revoked"), true},
		{fmt.Errorf("%w: %w", ErrRefused, protocol.Errorf(protocol.StatusNotEnrolled, "not enrolled")), true},
		{protocol.Errorf(protocol.StatusBusy, "busy"), false},
		{protocol.Errorf(protocol.StatusInternal, "internal"), false},
		{protocol.Errorf(protocol.StatusBadRequest, "bad"), false},
		{protocol.Errorf(protocol.StatusStaleSeq, "stale"), false},
		{&client.TransportError{Op: "dial", Err: context.DeadlineExceeded}, false},
		{fmt.Errorf("handshake: %w", identity.ErrFingerprintMismatch), false},
		{errors.New("anything else"), false},
		{nil, false},
	} {
		if got := refusedForGood(c.err); got != c.want {
			t.Errorf("refusedForGood(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// The enroll line a refusal prints runs as shown in a POSIX shell.
func TestShellQuote(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX quoting")
	}
	for in, want := range map[string]string{
		"/var/lib/tally-agent":   "/var/lib/tally-agent",
		"tally.example.com:4433": "tally.example.com:4433",
		"[::1]:4433":             "[::1]:4433",
		"/srv/my agent":          "'/srv/my agent'",
		"/srv/it's":              `'/srv/it'\''s'`,
		"":                       "''",
		"/tmp/$HOME":             "'/tmp/$HOME'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
