package state

import (
	"crypto/ed25519"
	"encoding/json"
	"os"
	"testing"

	"github.com/tallyhq/tally/common/identity"
)

// enrolledWith writes an enrollment of d's current key with server.
func enrolledWith(t *testing.T, d Dir, server string) Enrollment {
	t.Helper()
	key, _, err := d.Key()
	if err != nil {
		t.Fatal(err)
	}
	e := Enrollment{Server: server, NodeID: identity.NodeID(key.Public().(ed25519.PublicKey))}
	if err := d.SaveEnrollment(e); err != nil {
		t.Fatal(err)
	}
	return e
}

// A switch to another server replaces key and enrollment together; the
// pending key is reused until then.
func TestSwitchEnrollment(t *testing.T) {
	d := openDir(t)
	enrolledWith(t, d, "old:1")
	next, err := d.PendingKey()
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := d.PendingKey(); !again.Equal(next) {
		t.Fatal("a second forced enroll made another key")
	}
	if e, _ := d.Enrollment(); e.Server != "old:1" {
		t.Fatalf("a pending key changed the enrollment: %+v", e)
	}
	if err := d.SwitchEnrollment(Enrollment{Server: "new:1", NodeID: "someone-else"}); err == nil {
		t.Fatal("switched to an enrollment of another key")
	}
	id := identity.NodeID(next.Public().(ed25519.PublicKey))
	if err := d.SwitchEnrollment(Enrollment{Server: "new:1", NodeID: id}); err != nil {
		t.Fatal(err)
	}
	key, _, _ := d.Key()
	if e, _ := d.Enrollment(); e.Server != "new:1" || !key.Equal(next) {
		t.Fatalf("after the switch: %+v", e)
	}
}

// A switch cut short between its renames is finished by the next reader
// when the key was replaced, and undone when it was not.
func TestSwitchCutShort(t *testing.T) {
	for _, keyReplaced := range []bool{true, false} {
		d := openDir(t)
		enrolledWith(t, d, "old:1")
		next, err := d.PendingKey()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(Enrollment{Server: "new:1", NodeID: identity.NodeID(next.Public().(ed25519.PublicKey))})
		if err := os.WriteFile(d.File(PendingEnrollmentFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
		want := "old:1"
		if keyReplaced {
			if err := os.Rename(d.File(PendingKeyFile), d.File(KeyFile)); err != nil {
				t.Fatal(err)
			}
			want = "new:1"
		}
		e, err := d.Enrollment()
		if err != nil || e.Server != want {
			t.Errorf("key replaced %v: enrollment %+v %v, want server %s", keyReplaced, e, err, want)
		}
		if _, err := os.Stat(d.File(PendingEnrollmentFile)); !os.IsNotExist(err) {
			t.Errorf("key replaced %v: the pending enrollment stays: %v", keyReplaced, err)
		}
	}
}
