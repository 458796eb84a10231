package logins

import (
	"testing"

	"github.com/tallyhq/tally/protocol"
)

func derefOr(p *protocol.User) []protocol.User {
	if p == nil {
		return nil
	}
	return []protocol.User{*p}
}

// On this machine, whatever it is, the system's answer validates.
func TestSystemValidates(t *testing.T) {
	p, logged, err := System(t.Context())
	if err != nil {
		t.Fatalf("this machine does not say who uses it: %v", err)
	}
	for _, u := range append(logged, derefOr(p)...) {
		if err := u.Validate(); err != nil {
			t.Fatalf("%+v: %v", u, err)
		}
	}
}
