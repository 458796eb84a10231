package state

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/tallyhq/tally/common/atomicfile"
	"github.com/tallyhq/tally/common/identity"
)

// A forced enroll with another server is all or nothing: its key is made
// aside (PendingKeyFile) and replaces the agent's key and enrollment only
// once the new server accepted it, so a refused or unreachable new server
// leaves the agent enrolled with its old one. The replacement renames the
// key into place (the point of no return), then the enrollment; a crash in
// between is finished by the next reader of the enrollment.
const (
	PendingKeyFile        = "node.key.next"
	PendingEnrollmentFile = "enrollment.json.next"
)

// PendingKey returns the key prepared for enrolling with another server,
// creating it on first use. A forced enroll tried again (after a refusal,
// or a crash after the new server accepted) uses the same key, so the new
// server sees one machine.
func (d Dir) PendingKey() (ed25519.PrivateKey, error) {
	key, _, err := identity.LoadOrCreateKey(d.File(PendingKeyFile))
	if err != nil {
		return nil, fmt.Errorf("new node key: %w", err)
	}
	return key, nil
}

// SwitchEnrollment makes the pending key and e (its enrollment with the new
// server) the agent's identity, and forgets the old server's status.
func (d Dir) SwitchEnrollment(e Enrollment) error {
	key, err := identity.LoadKey(d.File(PendingKeyFile))
	if err != nil {
		return fmt.Errorf("new node key: %w", err)
	}
	if id := identity.NodeID(key.Public().(ed25519.PublicKey)); id != e.NodeID {
		return fmt.Errorf("the new server enrolled node %s, not this agent's new key %s", e.NodeID, id)
	}
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	return d.WithLock(func() error {
		if err := atomicfile.Write(d.File(PendingEnrollmentFile), append(b, '\n'), 0o600); err != nil {
			return err
		}
		if err := os.Rename(d.File(PendingKeyFile), d.File(KeyFile)); err != nil {
			return fmt.Errorf("replace node key: %w", err)
		}
		if err := atomicfile.SyncDir(d.Path); err != nil {
			return err
		}
		if err := d.finishSwitch(); err != nil {
			return err
		}
		if err := os.Remove(d.File(StatusFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("forget the old server's status: %w", err)
		}
		return nil
	})
}

// finishSwitch completes a replacement cut short between its two renames:
// a pending enrollment whose node is the key's is moved into place, one
// whose key never replaced the old is removed. The caller holds the lock.
func (d Dir) finishSwitch() error {
	b, err := os.ReadFile(d.File(PendingEnrollmentFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read enrollment: %w", err)
	}
	var next Enrollment
	jerr := json.Unmarshal(b, &next)
	key, kerr := identity.LoadKey(d.File(KeyFile))
	if jerr == nil && kerr == nil && identity.NodeID(key.Public().(ed25519.PublicKey)) == next.NodeID {
		if err := os.Rename(d.File(PendingEnrollmentFile), d.File(EnrollmentFile)); err != nil {
			return fmt.Errorf("replace enrollment: %w", err)
		}
		return atomicfile.SyncDir(d.Path)
	}
	if err := os.Remove(d.File(PendingEnrollmentFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove an unfinished enrollment: %w", err)
	}
	return nil
}
