//go:build darwin

package logins

import "testing"

// On a real Mac who, last and dscl answer and what they say validates.
func TestSystemDarwin(t *testing.T) {
	p, logged, err := System(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range append(logged, derefOr(p)...) {
		if err := u.Validate(); err != nil {
			t.Fatalf("%+v: %v", u, err)
		}
	}
}
