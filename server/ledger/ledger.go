// Package ledger owns what happens to a node's request, whatever store
// backend keeps it: each (node, sequence number) is applied once and a
// repeat is answered with the first outcome; the facts the license engine
// needs are gathered, the engine decides, its effects are applied, and the
// answer (verdicts, tasks, activation records) is built, all inside one
// write transaction of the backend.
//
// A backend provides the transaction (Tx: reads and writes of nodes,
// computers, seats, licenses, software sets, applied records and audit) and
// the machinery around it: a single writer, group commit, and commit
// before acknowledge. The ledger holds no SQL and the backend decides
// nothing.
//
// The first outcome of a request is kept as the encoded answer, not as a
// value: a repeat must get the very bytes the first attempt got (a
// re-encoding of a value rebuilt from the database could differ, for
// instance in a record's signature or an answer's field order), and it must
// be written in the transaction that applies the request, before anything
// is acknowledged. So the ledger encodes each answer once (answer.go), the
// backend stores those bytes as opaque, and the node API sends them as they
// are.
package ledger

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"sync"
	"time"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/engine"
	"github.com/tallyhq/tally/server/store"
)

// Options configure a Ledger. Zero values take the defaults.
type Options struct {
	Logger *slog.Logger
	// OnVerdicts, when set, is told the verdicts of every committed post
	// (for metrics).
	OnVerdicts func([]protocol.ProductVerdict)
	// RecordKey signs node-locked activation records (the server's key).
	RecordKey ed25519.PrivateKey
}

// Ledger applies node requests over a backend.
type Ledger struct {
	engine  *engine.Engine
	backend Backend
	opts    Options
	log     *slog.Logger

	pluginMu   sync.RWMutex
	pluginSets map[string]PluginSet // see Plugins
}

// Backend runs write transactions for the ledger.
type Backend interface {
	// Write runs fn in a write transaction that may share its commit with
	// others, and returns once that commit has returned. fn may run more
	// than once (a batch that failed is run again job by job): it must
	// start from scratch each time and keep its effects in memory only
	// through Tx.OnCommit.
	Write(ctx context.Context, fn func(Tx) error) error
}

// New returns a ledger deciding with eng over backend.
func New(eng *engine.Engine, backend Backend, opts Options) *Ledger {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Ledger{engine: eng, backend: backend, opts: opts, log: opts.Logger, pluginSets: map[string]PluginSet{}}
}

// Engine returns the license engine the ledger decides with.
func (l *Ledger) Engine() *engine.Engine { return l.engine }

// Node is what a request's transaction knows of its node and computer.
type Node struct {
	ID         string
	ComputerID int64
	Status     string
	Plugins    string // the computer's plug-in list as stored (EncodePlugins)
	BasicHash  string // the hash of the stored basic inventory, as the agent computes it
}

// NodeRecord is a node's state as a request finds it: the node, and
// whether the request's sequence number was applied.
type NodeRecord struct {
	Node
	Revoked       bool
	RevokedReason string
	// MaxSeq is the newest sequence number recorded in the node (see
	// Apply); Newest the newest applied.
	MaxSeq, Newest int64
	// Repeat says the request was applied, Answer is its first answer.
	Repeat bool
	Answer []byte
}

// Basic is a basic inventory ready to store, prepared outside the
// transaction.
type Basic struct {
	Inventory *protocol.BasicInventory // hints cleaned
	Blob      []byte                   // Inventory encoded
	Plugins   string                   // EncodePlugins(Inventory.Plugins)
	Hash      string                   // the hash of what the agent sent, as the agent computes it
	Backlog   uint32
}

// Tx is one write transaction of a backend, as one request (or one
// administrative action) sees it.
type Tx interface {
	// Now is the one time the transaction stamps on everything it writes.
	Now() time.Time
	// OnCommit runs f once the transaction has committed.
	OnCommit(f func())

	RequestTx
	FactsTx
	EffectsTx
	PostsTx
	NodeLockedTx
	AdminTx
	UsersTx
}

// UsersTx keeps the users agents report and the devices registered to
// them (seed 003), with the users' seats, in the request's transaction.
type UsersTx interface {
	// ReportUsers merges the users a computer's basic inventory names
	// into the users (source agent) and records its logged-in users and,
	// when primary is not nil, its primary user: a machine nobody is
	// logged in to stays its primary user's device.
	ReportUsers(computer int64, primary *protocol.User, logged []protocol.User, actor string) error
	// SyncDevices makes the computer's device registrations match its
	// primary user, plug-ins, status and existence, and takes or frees
	// the seats of the users concerned; cause is audited with them.
	SyncDevices(computer int64, actor, cause string) error
}

// RequestTx records requests applied.
type RequestTx interface {
	// NodeRequest reads r's node and whether r was applied, or
	// store.ErrNotFound. It is the first call of a request's transaction.
	NodeRequest(r store.Request) (NodeRecord, error)
	// RecordRequest stores r's encoded answer.
	RecordRequest(r store.Request, answer []byte) error
	// AdvanceSeq records seq as the node's newest number and forgets the
	// records of numbers up to forget.
	AdvanceSeq(node string, seq, forget int64) error
}

// FactsTx reads what the engine needs.
type FactsTx interface {
	// Seats returns the node's computer's seats and allocations, by
	// product; again reads them anew after the transaction changed them.
	// The maps are read-only.
	Seats(n Node, again bool) (seats, allocations map[string]string, err error)
	// Computer returns a live computer with its seats, plug-ins and
	// hostname, store.ErrNotFound if unknown or deleted.
	Computer(id int64) (engine.Computer, string, error)
	// LicenseDates returns the node licenses of products without seat
	// counts, and whether any may have expired with seats on it.
	LicenseDates(products []string) (engine.Pool, bool, error)
	// MarkSwept says the licenses of pool were swept at now.
	MarkSwept(pool engine.Pool)
	// LicenseCounts returns the node licenses of products with their
	// seats held and allocated counted.
	LicenseCounts(products []string) (engine.Pool, error)
	// LicenseLoad returns what a license grants (its verified file), the
	// seats held on it and the allocations not yet taken.
	LicenseLoad(id string) (seats, held, reserved int, err error)
	// ExpiredWithSeats lists, by product, the licenses of products (nil:
	// all) that expired by now and still carry seats.
	ExpiredWithSeats(products []string) (map[string][]string, error)
	// SeatHolders lists the computers holding a seat of a license, oldest
	// first.
	SeatHolders(license string) ([]int64, error)
}

// EffectsTx writes what the engine decided.
type EffectsTx interface {
	ConsumeSeat(e engine.Effect) error
	// FreeSeat reports false when the seat was already free.
	FreeSeat(e engine.Effect) (bool, error)
	MoveSeat(e engine.Effect) error
	// CountRefusal counts a refusal (discarded data, a request or lease
	// refused) per computer, product, pool and verdict.
	CountRefusal(pool string, computer int64, product string, v protocol.Verdict, nodeID, actor string) error
	AddEvent(e store.Event) error
}

// PostsTx stores what posts carry.
type PostsTx interface {
	SetStatus(computer int64, status string) error
	StoreBasic(computer int64, b *Basic) error
	// Touch records that the computer was heard from.
	Touch(computer int64, backlog uint32) error
	// StoreSoftware stores a licensed software inventory; refused says why
	// it was not stored (the set's cap), the seat standing.
	StoreSoftware(n Node, sw *protocol.SoftwareInventory) (ack *protocol.SoftwareAck, refused string, err error)
	StoreProductData(computer int64, product, kind string, blob []byte) error
	// TakeTasks returns the computer's undelivered tasks, now delivered.
	TakeTasks(computer int64) ([]protocol.Task, error)
	// PatchCatalog returns the minimum versions of names (nil: all).
	PatchCatalog(names []string) ([]protocol.MinimumVersion, error)
	RevokeNode(node, reason string) error
	SetFlag(computer int64, flag string, on bool, actor, why string) error
	// SetPlugins replaces the computer's plug-in list, which no longer
	// matches its stored basic inventory.
	SetPlugins(computer int64, plugins string) error
}

// NodeLockedTx keeps Activation IDs' bindings and leases.
type NodeLockedTx interface {
	// ExpireActivations ends the bindings of expired Activation IDs.
	ExpireActivations(actor string) ([]store.SeatChange, error)
	// ActivationID reads an ID's facts; nil when unknown.
	ActivationID(id string) (*engine.ActivationID, error)
	// Binding returns the live binding of an ID to a computer.
	Binding(activationID string, computer int64) (b Binding, ok bool, err error)
	Bind(a *engine.ActivationID, n Node, machine string, record []byte) error
	// ComputerBindings lists a computer's live bindings.
	ComputerBindings(computer int64) ([]Binding, error)
	// EndBinding ends a live binding and gives its seat back, once.
	EndBinding(b Binding, reason string) error
	// LastEndReason says why the computer's latest binding of an ID
	// ended; ok is false if it never had one.
	LastEndReason(activationID string, computer int64) (reason string, ok bool, err error)

	// Lease returns the computer's lease of a product, if any (live or
	// not).
	Lease(product string, computer int64) (l Lease, ok bool, err error)
	// ComputerLeases lists a computer's live leases.
	ComputerLeases(computer int64) ([]HeldLease, error)
	DropLease(product string, computer int64) error
	// RenewLease moves a lease's expiry, and its time to live unless
	// zero.
	RenewLease(product string, computer int64, expires time.Time, ttl time.Duration) error
	// LeasePool returns the product's concurrent licenses with their live
	// leases counted, and the expiry of every live lease.
	LeasePool(product string) ([]*engine.License, []time.Time, error)
	GrantLease(product string, n Node, license string, expires time.Time, ttl time.Duration) error
}

// Binding is a live binding of an Activation ID to a computer.
type Binding struct {
	ID           int64
	ActivationID string
	Product      string
	License      string
	Record       []byte // only from Tx.Binding
}

// HeldLease is a live lease a computer holds.
type HeldLease struct {
	Product, License string
}

// Lease is a computer's lease of a product.
type Lease struct {
	Expires time.Time
	TTL     time.Duration
}
