// Package store defines what the server keeps and the interfaces a storage
// backend implements, one small interface per concern (nodes, computers,
// secrets, audit). Backends live in subpackages (store/sqlite); one
// conformance suite (store/storetest) runs against each.
//
// Every operation that a node's request causes runs in one transaction that
// also records the request's (node, sequence number) and its response, so a
// repeated request is answered with the first outcome and applied once.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/tallyhq/tally/protocol"
)

// Errors a backend returns; callers test them with errors.Is.
var (
	ErrNotFound  = errors.New("not found")
	ErrBadSecret = errors.New("enrollment secret is wrong, revoked or expired")
	ErrRevoked   = errors.New("key revoked")
	ErrBlocked   = errors.New("machine blocked by an administrator")
	ErrStaleSeq  = errors.New("sequence number too old to check for a repeat")
	ErrConflict  = errors.New("conflict")
	ErrInvalid   = errors.New("invalid")
	ErrClosed    = errors.New("store closed")
)

// SeqWindow is how many of a node's most recent sequence numbers the store
// remembers with their responses. A request whose sequence number is below
// the window and not remembered is refused with ErrStaleSeq rather than
// applied a second time.
const SeqWindow = 256

// Node is one agent key. A computer has one live node at a time; older keys
// of the same machine (re-enrolled) are revoked.
type Node struct {
	ID            string    `json:"id"`
	ComputerID    int64     `json:"computer_id"`
	EnrolledAt    time.Time `json:"enrolled_at"`
	LastSeen      time.Time `json:"last_seen"`
	Revoked       bool      `json:"revoked"`
	RevokedReason string    `json:"revoked_reason,omitempty"`
	// Superseded is true when a newer key enrolled for the same machine.
	// If this key is heard from again, the machine was cloned, not
	// re-imaged: see Nodes.SplitClone.
	Superseded bool `json:"superseded,omitempty"`
}

// Revocation reasons.
const (
	RevokedSuperseded = "superseded" // a re-imaged machine enrolled with a new key
	RevokedDeleted    = "deleted"    // the computer was deleted
	RevokedBlocked    = "blocked"    // the computer was deleted with --block
)

// Computer is one managed machine.
type Computer struct {
	ID              int64     `json:"id"`
	Hostname        string    `json:"hostname"`
	OS              string    `json:"os"`
	Platform        string    `json:"platform"`
	PlatformVersion string    `json:"platform_version"`
	Arch            string    `json:"arch"`
	Status          string    `json:"status"`
	FirstSeen       time.Time `json:"first_seen"`
	LastSeen        time.Time `json:"last_seen"`
	NodeID          string    `json:"node_id,omitempty"` // the live key
	Flags           []string  `json:"flags,omitempty"`
	// DuplicateOf lists the computers that share this one's hints while
	// both are alive (cloned images).
	DuplicateOf []int64                  `json:"duplicate_of,omitempty"`
	Deleted     bool                     `json:"deleted,omitempty"`
	Basic       *protocol.BasicInventory `json:"basic,omitempty"` // only from Computers.Get
}

// Computer flags.
const (
	FlagDuplicateHints = "duplicate-hints"
)

// Secret is an enrollment secret.
type Secret struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Value     string     `json:"value,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	Uses      int64      `json:"uses"`
	LastUsed  *time.Time `json:"last_used,omitempty"`
}

// Active reports whether the secret can enroll at now.
func (s Secret) Active(now time.Time) bool {
	return s.RevokedAt == nil && (s.ExpiresAt == nil || now.Before(*s.ExpiresAt))
}

// Event is one audit record.
type Event struct {
	ID         int64     `json:"id"`
	At         time.Time `json:"at"`
	Actor      string    `json:"actor"`
	Kind       string    `json:"kind"`
	ComputerID int64     `json:"computer_id,omitempty"`
	NodeID     string    `json:"node_id,omitempty"`
	Product    string    `json:"product,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Count      int64     `json:"count,omitempty"`
}

// Event kinds.
const (
	EventEnrolled      = "computer.enrolled"
	EventReenrolled    = "computer.reenrolled"
	EventKeyRevoked    = "node.revoked"
	EventCloneDetected = "computer.clone-detected"
	EventEnrollRefused = "enroll.refused"
	EventSecretCreated = "secret.created"
	EventSecretRevoked = "secret.revoked"
)

// Actors that are not a node or a named admin.
const (
	ActorAdmin  = "admin"
	ActorSystem = "system"
)

// NodeActor names a node as the actor of an event.
func NodeActor(nodeID string) string { return "node:" + nodeID }

// EventFilter selects audit events. Zero fields match everything.
type EventFilter struct {
	Since      time.Time
	ComputerID int64
	Product    string
	Kind       string
	Limit      int
}

// Request identifies one request of one node: the store applies each
// (NodeID, Seq) at most once.
type Request struct {
	NodeID string
	Seq    uint64
	Kind   protocol.Kind
}

// Outcome is the encoded response body of an applied request and whether
// it was a repeat answered from the record of the first one.
type Outcome struct {
	Body   []byte
	Repeat bool
}

// EnrollParams is an enrollment attempt by a key.
type EnrollParams struct {
	NodeID    string
	PublicKey []byte
	Request   protocol.EnrollRequest
}

// Nodes is what the node-facing listener needs.
type Nodes interface {
	// Enroll checks the secret and creates the node, matching its hints to
	// an existing computer when the machine was re-imaged. Idempotent for
	// a key that is already enrolled.
	Enroll(ctx context.Context, p EnrollParams) (protocol.EnrollResponse, error)
	// Node returns the node with that ID, ErrNotFound if unknown.
	Node(ctx context.Context, id string) (Node, error)
	// SplitClone is called when a superseded key is heard from: the
	// machine it belongs to is alive, so it was cloned, not re-imaged. The
	// key gets a computer of its own and both are flagged.
	SplitClone(ctx context.Context, nodeID string) (Node, error)
	// PostInventory stores a node's basic inventory.
	PostInventory(ctx context.Context, r Request, body *protocol.InventoryRequest) (Outcome, error)
}

// Computers is what the admin surface reads and changes.
type Computers interface {
	ListComputers(ctx context.Context) ([]Computer, error)
	// Computer returns one computer with its basic inventory.
	Computer(ctx context.Context, id int64) (Computer, error)
}

// Secrets manages enrollment secrets.
type Secrets interface {
	CreateSecret(ctx context.Context, name string, value string, expires *time.Time) (Secret, error)
	ListSecrets(ctx context.Context) ([]Secret, error)
	RevokeSecret(ctx context.Context, id string) (Secret, error)
}

// Audit reads the audit log.
type Audit interface {
	Events(ctx context.Context, f EventFilter) ([]Event, error)
}

// Store is everything a backend provides.
type Store interface {
	Nodes
	Computers
	Secrets
	Audit
	Close() error
}

// IsNotFound reports whether err means the thing asked for does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
