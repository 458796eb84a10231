package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// A --ttl the protocol cannot carry is a usage mistake, refused before the
// agent opens its data folder or sends anything, never wrapped into
// another TTL (1193047h is 2^32 seconds and a bit: it was sent as 1,904 seconds).
func TestLeaseCheckoutRefusesATTLOutOfRange(t *testing.T) {
	for _, ttl := range []string{"1193047h", "169h", "-5m", "500ms", "1500ms"} {
		var out, errOut bytes.Buffer
		m := &Main{Stdout: &out, Stderr: &errOut, Getenv: env()}
		code := m.Run(context.Background(), []string{"lease", "checkout", "cad", "--ttl", ttl, "--data", t.TempDir()})
		if code != ExitUsage || !strings.Contains(errOut.String(), "whole seconds from 1s to 168h") {
			t.Errorf("--ttl %s: exit %d, stderr %q", ttl, code, errOut.String())
		}
	}
}
