// Package state owns the agent's data folder: the node's Ed25519 key, the
// generated instance ID, the enrollment record (which server, which pinned
// fingerprint, which node and computer), and the per-node sequence counter
// shared, under a file lock, by every tally-agent process on the machine.
package state

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally/common/atomicfile"
	"github.com/tallyhq/tally/common/identity"
)

// File names inside the data folder.
const (
	KeyFile        = "node.key"
	InstanceIDFile = "instance-id"
	EnrollmentFile = "enrollment.json"
	SeqFile        = "seq"
	LockFile       = "agent.lock" // held while allocating a sequence number and spooling
	SendLockFile   = "send.lock"  // held while draining the spool, so records go out in order
	StatusFile     = "status.json"
	SpoolDir       = "spool"
)

// ErrNotEnrolled is returned when the agent has not enrolled yet.
var ErrNotEnrolled = errors.New("this agent is not enrolled: run 'tally-agent enroll --server HOST:PORT --fingerprint FP --secret S' (the line 'tally-server enroll-info' prints)")

// Dir is an agent data folder.
type Dir struct {
	Path string
}

// Open makes sure the folder exists, readable only by its owner.
func Open(path string) (Dir, error) {
	if path == "" {
		return Dir{}, errors.New("no data folder given: pass --data DIR")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return Dir{}, fmt.Errorf("data folder %s: %w", path, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return Dir{}, fmt.Errorf("create data folder: %w", err)
	}
	return Dir{Path: abs}, nil
}

// File returns the path of name inside the folder.
func (d Dir) File(name string) string { return filepath.Join(d.Path, name) }

// Key loads the node key, creating it (0600) on first use.
func (d Dir) Key() (key ed25519.PrivateKey, created bool, err error) {
	key, created, err = identity.LoadOrCreateKey(d.File(KeyFile))
	if err != nil {
		return nil, false, fmt.Errorf("node key: %w", err)
	}
	return key, created, nil
}

// InstanceID returns the generated ID of this agent installation, creating
// it on first use. It changes only when the data folder is wiped.
func (d Dir) InstanceID() (string, error) {
	p := d.File(InstanceIDFile)
	b, err := os.ReadFile(p)
	if err == nil {
		if v := strings.TrimSpace(string(b)); v != "" {
			return v, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("instance ID: %w", err)
	}
	r := make([]byte, 16)
	if _, err := rand.Read(r); err != nil {
		return "", err
	}
	r[6] = r[6]&0x0f | 0x40 // a version-4 UUID
	r[8] = r[8]&0x3f | 0x80
	h := hex.EncodeToString(r)
	v := h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	if err := atomicfile.Write(p, []byte(v+"\n"), 0o600); err != nil {
		return "", err
	}
	return v, nil
}

// Enrollment is what the agent remembers of its enrollment.
type Enrollment struct {
	// Server is the server's address; with several replicas, the first
	// of Servers, so that a record of one address reads as it always has.
	Server string `json:"server"`
	// Servers are the addresses of the server's replicas, in order of
	// preference, when there are several; they share one identity, so
	// one fingerprint is pinned for all of them.
	Servers     []string  `json:"servers,omitempty"`
	Fingerprint string    `json:"fingerprint"`
	NodeID      string    `json:"node_id"`
	ComputerID  int64     `json:"computer_id"`
	EnrolledAt  time.Time `json:"enrolled_at"`
	// MachineID overrides the hardware identity hints (--machine-id), kept
	// so later runs send the same hints.
	MachineID string `json:"machine_id,omitempty"`
}

// Addresses returns the addresses the agent dials, in order of preference.
func (e Enrollment) Addresses() []string {
	if len(e.Servers) > 0 {
		return e.Servers
	}
	if e.Server == "" {
		return nil
	}
	return []string{e.Server}
}

// AddressList returns the addresses as one line, "a:7443,b:7443".
func (e Enrollment) AddressList() string { return strings.Join(e.Addresses(), ",") }

// WithAddresses returns e dialing addrs: Server is the first, and Servers
// lists them all when there are several.
func (e Enrollment) WithAddresses(addrs []string) Enrollment {
	e.Server, e.Servers = "", nil
	if len(addrs) > 0 {
		e.Server = addrs[0]
	}
	if len(addrs) > 1 {
		e.Servers = slices.Clone(addrs)
	}
	return e
}

// Enrollment reads the enrollment record; ErrNotEnrolled if there is none.
func (d Dir) Enrollment() (Enrollment, error) {
	var e Enrollment
	if _, err := os.Stat(d.File(PendingEnrollmentFile)); err == nil {
		// A switch to another server was cut short (see SwitchEnrollment).
		if err := d.WithLock(d.finishSwitch); err != nil {
			return e, err
		}
	}
	return d.readEnrollment()
}

// readEnrollment reads the enrollment record as it is on disk.
func (d Dir) readEnrollment() (Enrollment, error) {
	var e Enrollment
	b, err := os.ReadFile(d.File(EnrollmentFile))
	if errors.Is(err, os.ErrNotExist) {
		return e, ErrNotEnrolled
	}
	if err != nil {
		return e, fmt.Errorf("read enrollment: %w", err)
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("%s is damaged (%v): enroll again", d.File(EnrollmentFile), err)
	}
	return e, nil
}

// SaveEnrollment writes the enrollment record.
func (d Dir) SaveEnrollment(e Enrollment) error {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(d.File(EnrollmentFile), append(b, '\n'), 0o600)
}

// SetAddresses makes the enrollment dial addrs (the same server, pinned
// by the same fingerprint, at new addresses), returning the addresses it
// dialed and whether they changed.
func (d Dir) SetAddresses(addrs []string) (prev []string, changed bool, err error) {
	if _, err := d.Enrollment(); err != nil { // finishes a switch cut short
		return nil, false, err
	}
	err = d.WithLock(func() error {
		e, err := d.readEnrollment()
		if err != nil {
			return err
		}
		prev = e.Addresses()
		if slices.Equal(prev, addrs) {
			return nil
		}
		changed = true
		return d.SaveEnrollment(e.WithAddresses(addrs))
	})
	return prev, changed, err
}

// WithLock runs fn holding the folder's exclusive lock, shared by every
// tally-agent process using this folder.
func (d Dir) WithLock(fn func() error) error { return d.WithNamedLock(LockFile, fn) }

// WithNamedLock runs fn holding the exclusive lock on the named lock file.
func (d Dir) WithNamedLock(name string, fn func() error) error {
	f, err := os.OpenFile(d.File(name), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open lock: %w", err)
	}
	defer f.Close()
	if err := lockFile(f); err != nil {
		return err
	}
	defer unlockFile(f)
	return fn()
}

// AllocateSeq takes the lock and durably allocates the next sequence
// number, for a request sent at once; a request queued in the spool takes
// NextSeq under the same lock as the write of its record instead.
func (d Dir) AllocateSeq() (uint64, error) {
	var seq uint64
	err := d.WithLock(func() error {
		var err error
		seq, err = d.NextSeq()
		return err
	})
	return seq, err
}

// NextSeq durably allocates the next sequence number. The caller must hold
// the lock (WithLock): allocation is a read-modify-write of one file.
//
// A missing counter starts from the current time in milliseconds rather
// than from 1: should the file be lost while the key survives, new numbers
// are still above every number used before (an agent makes a few dozen a
// day), so the server never mistakes a new post for a repeat of an old one.
func (d Dir) NextSeq() (uint64, error) {
	p := d.File(SeqFile)
	var next uint64
	b, err := os.ReadFile(p)
	switch {
	case err == nil:
		last, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s is damaged: %w", p, err)
		}
		next = last + 1
	case errors.Is(err, os.ErrNotExist):
		next = uint64(time.Now().UnixMilli())
	default:
		return 0, fmt.Errorf("read sequence: %w", err)
	}
	if err := atomicfile.Write(p, []byte(strconv.FormatUint(next, 10)+"\n"), 0o600); err != nil {
		return 0, fmt.Errorf("save sequence: %w", err)
	}
	return next, nil
}
