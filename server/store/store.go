// Package store defines what the server keeps and the interfaces a storage
// backend implements, one small interface per concern (nodes, computers,
// secrets, audit). Backends live in subpackages (store/sqlstore); one
// conformance suite (store/storetest) runs against each.
//
// Every operation that a node's request causes runs in one transaction that
// also records the request's (node, sequence number) and its response, so a
// repeated request is answered with the first outcome and applied once.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
	// ErrDamaged: the database file is damaged (malformed pages); the
	// server refuses to serve from it.
	ErrDamaged = errors.New("database damaged")
	// ErrDiskFull: the disk holding the database is full; nothing was
	// written, and the same request succeeds once space is freed.
	ErrDiskFull = errors.New("disk full")
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
	RevokedSuperseded = "superseded"  // a re-imaged machine enrolled with a new key
	RevokedDeleted    = "deleted"     // the computer was deleted
	RevokedBlocked    = "blocked"     // the computer was deleted with --block
	RevokedUninstall  = "uninstalled" // the agent said goodbye
	RevokedUnblocked  = "unblocked"   // blocked, then unblocked: the key may enroll again as a new computer
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
	Basic       *protocol.BasicInventory `json:"basic,omitempty"` // only from Computers.Computer
	// Seats are the seats the computer holds, of every kind (only from
	// Computers.Computer).
	Seats []HeldSeat `json:"seats,omitempty"`
}

// HeldSeat is one seat a computer holds: a node seat, an Activation ID's
// seat or a lease.
type HeldSeat struct {
	Product string    `json:"product"`
	Kind    string    `json:"kind"` // node, node-locked, concurrent
	License string    `json:"license"`
	Since   time.Time `json:"since"`
	Reason  string    `json:"reason"`
}

// Computer flags.
const (
	FlagDuplicateHints   = "duplicate-hints"
	FlagAgentUninstalled = "agent-uninstalled" // its agent said goodbye; cleared when it enrolls again
)

// Flags are the computer flags an admin can filter on.
var Flags = []string{FlagDuplicateHints, FlagAgentUninstalled}

// ComputerFilter selects computers for a list. Zero fields match
// everything; pages follow the computer ID.
type ComputerFilter struct {
	Hostname     string    // substring, or a glob with * and ?, case-insensitive
	Status       string    // a status name, case-insensitive
	Product      string    // holds a seat of this product (node, node-locked or lease)
	Plugin       string    // has this plug-in installed
	NotSeenSince time.Time // last seen before this time
	Flag         string    // carries this flag
	// Search matches a hostname substring (case-insensitive) or, exactly,
	// an identity hint (machine ID, product UUID, serial, instance ID, MAC).
	Search string
	OS     string // the OS or platform name, case-insensitive
	// Desc lists by ID from the highest; After is then the ID the
	// previous page ended with, and the page holds lower IDs.
	Desc  bool
	After int64 // only IDs above this (below with Desc): the cursor
	Limit int   // at most this many; zero means DefaultComputerLimit
}

// Page sizes of a computer list.
const (
	DefaultComputerLimit = 500
	MaxComputerLimit     = 10000
)

// ComputerPage is one page of a computer list.
type ComputerPage struct {
	Computers []Computer `json:"computers"`
	// Next is the After of the next page, zero on the last page.
	Next int64 `json:"next_after,omitempty"`
}

// Blocked is a machine deleted with --block: its keys and identity hints
// are refused at enrollment until an admin unblocks it.
type Blocked struct {
	ComputerID int64         `json:"computer_id"`
	Hostname   string        `json:"hostname"`
	At         time.Time     `json:"at"`
	By         string        `json:"by"`
	Hints      []BlockedHint `json:"hints"`
}

// BlockedHint is one refused identity hint or key.
type BlockedHint struct {
	Kind  string `json:"kind"` // key, instance, uuid, serial, machine-id
	Value string `json:"value"`
}

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
	EventSeatConsumed  = "seat.consumed"
	EventSeatFreed     = "seat.freed"
	EventSeatMoved     = "seat.moved"
	EventDiscarded     = "data.discarded"
	EventStatus        = "computer.status"
	EventDeleted       = "computer.deleted"
	EventUnblocked     = "computer.unblocked"
	EventFlagged       = "computer.flagged"
	EventUnflagged     = "computer.unflagged"
	EventUninstalled   = "agent.uninstalled"
	EventPluginRemoved = "plugin.removed"
	EventLicenseImport = "license.imported"
	EventLicenseRemove = "license.removed"
	EventAllocated     = "license.allocated"
	EventDeallocated   = "license.deallocated"
	EventStatusAdded   = "status.added"
	EventMaintenance   = "maintenance.run"
	EventDriftRepaired = "maintenance.drift-repaired"
	// EventDriftFound records what a maintenance run found drifted (the
	// alert "drift found by maintenance" is raised on it).
	EventDriftFound = "maintenance.drift-found"
	// EventSoftwareRefused: a computer's software inventory was not stored,
	// its set would pass the server's cap (serve --max-packages).
	EventSoftwareRefused = "software.refused"
	EventPurged          = "data.purged"
	EventTaskQueued      = "task.queued"
	EventActCreated      = "activation.created"
	EventActivated       = "activation.activated"
	EventActReturned     = "activation.returned"
	EventActRevoked      = "activation.revoked"
	EventActDeactivate   = "activation.deactivated"
	EventLeaseOut        = "lease.checkout"
	EventLeaseIn         = "lease.checkin"
	EventLeaseExpired    = "lease.expired"
	EventLeaseDenied     = "lease.denied"
	EventProductAdded    = "product.added"
	EventProductRemove   = "product.removed"
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
	Until      time.Time // only events before this
	ComputerID int64
	Product    string
	Kind       string
	Actor      string
	// Before is a page cursor: only events older than this one (by time,
	// then ID), zero for the newest.
	Before EventCursor
	Limit  int
}

// EventCursor names the last event of a page of events, newest first.
type EventCursor struct {
	At time.Time
	ID int64
}

// HourCount is how many events of a kind were recorded in one hour.
type HourCount struct {
	Kind  string
	Hour  time.Time // the hour's start
	Count int64
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
	// PostInventory stores a node's basic inventory, decides its licenses
	// and stores (or discards) its software inventory.
	PostInventory(ctx context.Context, r Request, body *protocol.InventoryRequest) (Outcome, error)
	// PostPluginData stores (or discards) a plug-in's payload.
	PostPluginData(ctx context.Context, r Request, body *protocol.PluginDataRequest) (Outcome, error)
	// PluginRequest answers a task request, check-in, package or catalog
	// request of a plug-in.
	PluginRequest(ctx context.Context, r Request, body any) (Outcome, error)
	// Goodbye frees what an uninstalled agent or plug-in held.
	Goodbye(ctx context.Context, r Request, body *protocol.GoodbyeRequest) (Outcome, error)
	// Activate binds a seat of a node-locked Activation ID to the node's
	// machine and returns the signed record.
	Activate(ctx context.Context, r Request, body *protocol.ActivateRequest) (Outcome, error)
	// Deactivate returns the node's seat of an Activation ID.
	Deactivate(ctx context.Context, r Request, body *protocol.DeactivateRequest) (Outcome, error)
	// ActivationStatus tells which of the node's records are still valid.
	ActivationStatus(ctx context.Context, r Request, body *protocol.ActivationStatusRequest) (Outcome, error)
	// Lease checks out, renews or checks in a concurrent seat.
	Lease(ctx context.Context, r Request, product string, ttl time.Duration) (Outcome, error)
}

// Computers is what the admin surface reads and changes.
type Computers interface {
	// ListComputers returns one page of the live computers f selects, by
	// ID; an invalid filter is ErrInvalid.
	ListComputers(ctx context.Context, f ComputerFilter) (ComputerPage, error)
	// Computer returns one computer with its basic inventory and seats.
	Computer(ctx context.Context, id int64) (Computer, error)
	// FindComputers returns the live computers named by ref: a hostname
	// (case-insensitive) or an identity hint the server keeps (machine ID,
	// product UUID, serial, instance ID, MAC).
	FindComputers(ctx context.Context, ref string) ([]Computer, error)
	// BlockedMachines lists the machines deleted with --block.
	BlockedMachines(ctx context.Context) ([]Blocked, error)
	// Unblock lifts a block: the machine's hints and keys may enroll
	// again, as a new computer.
	Unblock(ctx context.Context, computerID int64, actor string) (Blocked, error)
	// SetStatus changes a computer's status and frees, in the same
	// transaction, exactly the seats whose product rule names it.
	SetStatus(ctx context.Context, id int64, status, actor string) (Change, error)
	// DeleteComputer frees every seat, revokes the computer's keys, and
	// with block refuses its hints and keys at any later enrollment.
	DeleteComputer(ctx context.Context, id int64, block bool, actor string) (Change, error)
	// Why explains why a computer holds, or lacks, a product's seat.
	Why(ctx context.Context, id int64, product string) (Why, error)
	Statuses(ctx context.Context) ([]Status, error)
	AddStatus(ctx context.Context, name, description string) (Status, error)
	// Software lists a computer's stored software inventory.
	Software(ctx context.Context, id int64) ([]protocol.Package, error)
	// AddTask queues an agent action for a computer; without force it
	// refuses (ErrConflict) a computer without the plug-in that runs tasks.
	AddTask(ctx context.Context, id int64, action string, force bool) (string, error)
}

// Licensing imports, removes and allocates licenses, and reports usage.
type Licensing interface {
	// ImportLicenses stores verified license files, all or none.
	ImportLicenses(ctx context.Context, ls []LicenseImport, actor string) ([]License, error)
	Licenses(ctx context.Context) ([]License, error)
	// RemoveLicense deletes a license; its seats move to other licenses
	// of the product with room, or are freed.
	RemoveLicense(ctx context.Context, id, actor string) (Change, error)
	// Allocate reserves a seat of a license for a computer.
	Allocate(ctx context.Context, licenseID string, computerID int64, actor string) (Change, error)
	Deallocate(ctx context.Context, licenseID string, computerID int64, actor string) (Change, error)
	Usage(ctx context.Context, product string) ([]Usage, error)
	// UsageTotals is Usage without the holders (their Holders are empty):
	// the counts a dashboard shows, without a row per seat held.
	UsageTotals(ctx context.Context, product string) ([]Usage, error)
	// ExpireLicenses moves or frees the seats of licenses expired by now.
	ExpireLicenses(ctx context.Context) (Change, error)
	// NextExpiry returns the soonest future expiry of a license holding
	// seats, zero if none.
	NextExpiry(ctx context.Context) (time.Time, error)
}

// Activations manages node-locked Activation IDs and reports leases.
type Activations interface {
	CreateActivation(ctx context.Context, product string, quantity int, expires *time.Time, actor string) (Activation, error)
	ActivationList(ctx context.Context) ([]Activation, error)
	Activation(ctx context.Context, id string) (Activation, error)
	// ReturnActivation frees the seat a computer holds (rehost); the record
	// left on that machine is revoked at its next contact.
	ReturnActivation(ctx context.Context, id string, computer int64, actor string) (Change, error)
	// DeactivateActivation makes an ID inactive and returns every seat.
	DeactivateActivation(ctx context.Context, id, actor string) (Change, error)
	Leases(ctx context.Context) ([]Lease, error)
}

// Products adds and removes application products: products licensed
// only by Activation IDs or leases, with no plug-in.
type Products interface {
	// AddProduct validates and stores an application product, and adds it
	// to the catalog once committed. Adding again a product with the same
	// title and kinds changes nothing and reports added false, so that a
	// script that sets up products can run twice.
	AddProduct(ctx context.Context, p ApplicationProduct, actor string) (added bool, err error)
	// RemoveProduct removes an application product added with AddProduct
	// that no license names.
	RemoveProduct(ctx context.Context, name, actor string) error
}

// ApplicationProduct is what an administrator gives to add one.
type ApplicationProduct struct {
	Name  string   `json:"name"`
	Title string   `json:"title,omitempty"`
	Kinds []string `json:"kinds"`
}

// Maintenance is the job the server runs on a schedule and on demand.
type Maintenance interface {
	RunMaintenance(ctx context.Context, o MaintenanceOptions) (MaintenanceReport, error)
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
	// HourlyCounts sums the events of the given kinds per hour since a
	// time (an aggregated event counts its Count), for charts.
	HourlyCounts(ctx context.Context, kinds []string, since time.Time) ([]HourCount, error)
}

// Store is everything a backend provides.
type Store interface {
	Nodes
	Computers
	Secrets
	Audit
	Licensing
	Activations
	Products
	Maintenance
	Close() error
}

// RevokedError is the refusal of a key the server revoked: why (one of the
// Revoked… reasons) and the computer it was, so that the node API can tell
// the agent in one sentence what happened and what to do. It matches
// ErrRevoked, and ErrBlocked when the machine is blocked.
type RevokedError struct {
	Reason     string
	ComputerID int64
}

func (e *RevokedError) Error() string {
	return fmt.Sprintf("key revoked (%s) of computer %d", e.Reason, e.ComputerID)
}

// Is makes errors.Is(err, ErrRevoked) hold for every revoked key and
// errors.Is(err, ErrBlocked) for a blocked machine's.
func (e *RevokedError) Is(target error) bool {
	return target == ErrRevoked || (target == ErrBlocked && e.Reason == RevokedBlocked)
}

// BlockedError is the refusal of a machine an administrator deleted with
// --block (its key, or a new key with its identity hints).
func BlockedError(computerID int64) error {
	return &RevokedError{Reason: RevokedBlocked, ComputerID: computerID}
}

// IsNotFound reports whether err means the thing asked for does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// License is a license as stored and reported.
type License struct {
	ID           string     `json:"id"`
	Product      string     `json:"product"`
	Kind         string     `json:"kind"`
	Duration     string     `json:"duration"`
	Seats        int        `json:"seats"`
	Held         int        `json:"held"`
	Allocated    int        `json:"allocated"`
	IssuedAt     time.Time  `json:"issued_at"`
	ExpiresAt    *time.Time `json:"expires_at,omitempty"`
	UpgradeUntil *time.Time `json:"upgrade_until,omitempty"`
	Customer     string     `json:"customer,omitempty"`
	Issuer       string     `json:"issuer"`
	ImportedAt   time.Time  `json:"imported_at"`
	Expired      bool       `json:"expired"`
	// Problem says how the database row disagrees with the license's
	// signed file, which counts; empty when they agree.
	Problem string `json:"problem,omitempty"`
	EndDates
}

// EndDates says how near a license's (or Activation ID's) end and the end
// of its upgrade protection are, in calendar days of the server's time
// zone. The admin API fills it in; the store leaves it empty.
type EndDates struct {
	ExpiryState     string `json:"expiry_state,omitempty"` // valid, expiring (within the warning window), expired
	DaysLeft        *int   `json:"days_left,omitempty"`    // 0 on the last day, negative once past; absent without an end
	Expiry          string `json:"expiry,omitempty"`       // "expires in 14 days", "expires today", "expired 3 days ago"
	UpgradeState    string `json:"upgrade_state,omitempty"`
	UpgradeDaysLeft *int   `json:"upgrade_days_left,omitempty"`
	Upgrade         string `json:"upgrade,omitempty"` // "upgrade protection ends in 10 days"
}

// LicenseImport is a verified license file to store.
type LicenseImport struct {
	License License
	File    []byte
}

// SeatChange is one seat consumed, freed or moved.
type SeatChange struct {
	Change     string `json:"change"`         // consumed, freed, moved
	Kind       string `json:"kind,omitempty"` // node (when empty), node-locked, concurrent
	ComputerID int64  `json:"computer_id"`
	Hostname   string `json:"hostname,omitempty"`
	Product    string `json:"product"`
	License    string `json:"license,omitempty"` // the license it was on (freed) or is on (consumed, moved)
	From       string `json:"from,omitempty"`    // moved: the license it left
	Reason     string `json:"reason"`
}

// Seat kinds of a SeatChange or HeldSeat.
const (
	SeatNode       = "node"
	SeatNodeLocked = "node-locked"
	SeatConcurrent = "concurrent"
)

var seatNouns = map[string][2]string{
	SeatNode:       {"node seat", "node seats"},
	SeatNodeLocked: {"activation seat", "activation seats"},
	SeatConcurrent: {"lease", "leases"},
}

// SeatSummary says in one line what seats changed, by change and kind
// ("freed 1 node seat, freed 2 activation seats"), or "no seat changed".
func SeatSummary(seats []SeatChange) string {
	type key struct{ change, kind string }
	var order []key
	n := map[key]int{}
	for _, s := range seats {
		k := key{s.Change, s.Kind}
		if k.kind == "" {
			k.kind = SeatNode
		}
		if n[k] == 0 {
			order = append(order, k)
		}
		n[k]++
	}
	if len(order) == 0 {
		return "no seat changed"
	}
	parts := make([]string, len(order))
	for i, k := range order {
		noun, ok := seatNouns[k.kind]
		if !ok {
			noun = [2]string{k.kind + " seat", k.kind + " seats"}
		}
		if n[k] == 1 {
			parts[i] = fmt.Sprintf("%s 1 %s", k.change, noun[0])
		} else {
			parts[i] = fmt.Sprintf("%s %d %s", k.change, n[k], noun[1])
		}
	}
	return strings.Join(parts, ", ")
}

// Change reports what an admin action did to seats.
type Change struct {
	Seats   []SeatChange `json:"seats"`
	Message string       `json:"message,omitempty"`
}

// Status is a computer status.
type Status struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Builtin     bool   `json:"builtin"`
	Computers   int    `json:"computers"`
}

// Holder is a computer holding a seat.
type Holder struct {
	ComputerID int64     `json:"computer_id"`
	Hostname   string    `json:"hostname"`
	License    string    `json:"license"`
	Since      time.Time `json:"since"`
	Reason     string    `json:"reason"`
	Allocated  bool      `json:"allocated,omitempty"`
	// ActivationID is the ID a node-locked holder activated; Expires is
	// when a lease holder's lease runs out unless renewed.
	ActivationID string     `json:"activation_id,omitempty"`
	Expires      *time.Time `json:"expires,omitempty"`
}

// LicenseUsage is one license's part of a product's usage.
type LicenseUsage struct {
	License
	Available int `json:"available"`
}

// Usage is the license position of one pool of a product: the licenses
// of one kind (node seats, node-locked Activation IDs, concurrent leases).
type Usage struct {
	Product  string `json:"product"`
	Title    string `json:"title"`
	Kind     string `json:"kind"`
	Granted  int    `json:"granted"`  // seats of licenses valid now
	Consumed int    `json:"consumed"` // seats held
	Reserved int    `json:"reserved"` // allocated but not yet consumed
	// Waiting counts computers refused a seat that hold none: demand the
	// licenses do not cover.
	Waiting int `json:"waiting"`
	// Available is granted − consumed − reserved − waiting: negative is a
	// shortfall.
	Available int              `json:"available"`
	Compliant bool             `json:"compliant"`
	Discards  map[string]int64 `json:"discards"`
	Licenses  []LicenseUsage   `json:"licenses"`
	Holders   []Holder         `json:"holders"`
	// Expires is the phrase of the soonest end among the row's licenses
	// that expire or have expired within the warning window, empty if none
	// (filled by the admin API).
	Expires string `json:"expires,omitempty"`
}

// Why answers why a computer holds, or lacks, a product's seat.
type Why struct {
	ComputerID int64   `json:"computer_id"`
	Hostname   string  `json:"hostname"`
	Product    string  `json:"product"`
	Holds      bool    `json:"holds"`
	Seat       *Holder `json:"seat,omitempty"`
	Status     string  `json:"status"`
	Plugin     string  `json:"plugin,omitempty"` // the product's plug-in as last reported, empty if not installed
	Answer     string  `json:"answer"`
	Events     []Event `json:"events"`
}

// MaintenanceOptions tune a maintenance run.
type MaintenanceOptions struct {
	// StaleAfter sets computers not seen for this long to Missing; zero
	// disables the stale-node policy.
	StaleAfter time.Duration
	Actor      string
}

// MaintenanceReport tells what a maintenance run did.
type MaintenanceReport struct {
	At       time.Time    `json:"at"`
	Drift    []string     `json:"drift"`    // invariant violations found (there should be none)
	Repaired []string     `json:"repaired"` // what was repaired
	Expired  []SeatChange `json:"expired"`  // seats moved or freed because a license expired
	Missing  []int64      `json:"missing"`  // computers set Missing by the stale-node policy
	Freed    []SeatChange `json:"freed"`    // seats freed by setting Missing
	Purged   int          `json:"purged"`   // computers whose freed product data was purged
	// Errors names each step that failed and why; the other steps ran.
	Errors   []string `json:"errors,omitempty"`
	Duration string   `json:"duration"`
	// Expiring lists the licenses, upgrade protections and Activation IDs
	// that end within the warning window or have ended (filled by the
	// admin API, in the server's time zone).
	Expiring []Expiring `json:"expiring"`
}

// Expiring is one end date within the warning window.
type Expiring struct {
	What     string    `json:"what"` // license, upgrade-protection, activation
	ID       string    `json:"id"`
	Product  string    `json:"product"`
	EndsAt   time.Time `json:"ends_at"`
	DaysLeft int       `json:"days_left"`
	State    string    `json:"state"` // expiring or expired
	Phrase   string    `json:"phrase"`
}

// Activation is a node-locked Activation ID as reported.
type Activation struct {
	ID        string             `json:"id"`
	Product   string             `json:"product"`
	License   string             `json:"license"`
	Quantity  int                `json:"quantity"`
	InUse     int                `json:"in_use"`
	Status    string             `json:"status"` // active, inactive, expired
	ExpiresAt *time.Time         `json:"expires_at,omitempty"`
	CreatedAt time.Time          `json:"created_at"`
	Holders   []ActivationHolder `json:"holders"`
	EndDates
}

// ActivationHolder is a machine holding a seat of an Activation ID.
type ActivationHolder struct {
	ComputerID  int64     `json:"computer_id"`
	Hostname    string    `json:"hostname"`
	NodeID      string    `json:"node_id"`
	ActivatedAt time.Time `json:"activated_at"`
}

// Lease is a concurrent seat checked out.
type Lease struct {
	Product    string    `json:"product"`
	License    string    `json:"license"`
	ComputerID int64     `json:"computer_id"`
	Hostname   string    `json:"hostname"`
	GrantedAt  time.Time `json:"granted_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}
