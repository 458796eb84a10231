//go:build windows

package logins

import "testing"

// On a real Windows machine tasklist answers and what it says validates.
func TestSystemWindows(t *testing.T) {
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
