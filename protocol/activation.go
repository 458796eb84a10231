package protocol

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// ActivationResult is the outcome of an activation request, and of a lease
// request (there "ID" reads "product", and ActivationReturned and
// ActivationNotHeld answer a check-in). Values are append-only.
type ActivationResult uint8

// Activation results.
const (
	ActivationOK       ActivationResult = 1 // a seat was bound to this machine
	ActivationAlready  ActivationResult = 2 // this machine already holds a seat of the ID: nothing changed
	ActivationNoSeat   ActivationResult = 3 // every seat of the ID is taken
	ActivationInactive ActivationResult = 4 // the ID was deactivated by an administrator
	ActivationExpired  ActivationResult = 5 // the ID (or its license) has expired
	ActivationUnknown  ActivationResult = 6 // no such ID (lease: no such product)
	ActivationReturned ActivationResult = 7 // Deactivate: the seat was returned
	ActivationNotHeld  ActivationResult = 8 // Deactivate: this machine held no seat of the ID (already returned)
	ActivationRefused  ActivationResult = 9 // the computer is not Active (retired, disposed, …)
)

var activationResultNames = [...]string{
	ActivationOK: "activated", ActivationAlready: "already-activated", ActivationNoSeat: "no-free-seat",
	ActivationInactive: "inactive", ActivationExpired: "expired", ActivationUnknown: "unknown",
	ActivationReturned: "returned", ActivationNotHeld: "not-held", ActivationRefused: "computer-not-active",
}

func (r ActivationResult) String() string {
	if int(r) < len(activationResultNames) && activationResultNames[r] != "" {
		return activationResultNames[r]
	}
	return fmt.Sprintf("activation-result(%d)", uint8(r))
}

var activationIDPattern = regexp.MustCompile(`^[A-Z0-9][A-Z0-9-]{3,63}$`)

// ValidActivationID reports whether s has the shape of an Activation ID.
func ValidActivationID(s string) bool { return activationIDPattern.MatchString(s) }

// ActivateRequest asks for a seat of a node-locked Activation ID.
type ActivateRequest struct {
	ActivationID string `cbor:"1,keyasint" json:"activation_id"`
	// Machine is the machine fingerprint the record will be bound to (see
	// machineid.Fingerprint).
	Machine string `cbor:"2,keyasint" json:"machine"`
}

// Validate checks the fields.
func (r *ActivateRequest) Validate() error {
	if !ValidActivationID(r.ActivationID) {
		return fmt.Errorf("%q is not an Activation ID", truncate(r.ActivationID))
	}
	if len(r.Machine) != 64 {
		return errors.New("machine fingerprint must be 64 hex digits")
	}
	return nil
}

// ActivateResponse answers Activate. Record is the server-signed
// activation record (see ActivationRecord) when the machine holds a seat.
type ActivateResponse struct {
	Result  ActivationResult `cbor:"1,keyasint" json:"result"`
	Message string           `cbor:"2,keyasint,omitempty" json:"message,omitempty"`
	Record  []byte           `cbor:"3,keyasint,omitempty" json:"record,omitempty"`
}

// DeactivateRequest returns this machine's seat of an Activation ID.
type DeactivateRequest struct {
	ActivationID string `cbor:"1,keyasint" json:"activation_id"`
}

// Validate checks the ID.
func (r *DeactivateRequest) Validate() error {
	if !ValidActivationID(r.ActivationID) {
		return fmt.Errorf("%q is not an Activation ID", truncate(r.ActivationID))
	}
	return nil
}

// DeactivateResponse answers Deactivate.
type DeactivateResponse struct {
	Result  ActivationResult `cbor:"1,keyasint" json:"result"`
	Message string           `cbor:"2,keyasint,omitempty" json:"message,omitempty"`
}

// ActivationStatusRequest lists the Activation IDs whose records the agent
// holds, so the server can say which are still valid.
type ActivationStatusRequest struct {
	ActivationIDs []string `cbor:"1,keyasint,omitempty" json:"activation_ids,omitempty" limit:"1024"`
}

// Validate checks the IDs.
func (r *ActivationStatusRequest) Validate() error {
	if len(r.ActivationIDs) > maxListItems {
		return errors.New("too many Activation IDs")
	}
	for _, id := range r.ActivationIDs {
		if !ValidActivationID(id) {
			return fmt.Errorf("%q is not an Activation ID", truncate(id))
		}
	}
	return nil
}

// ActivationState is the server's view of one record the agent holds.
type ActivationState struct {
	ActivationID string `cbor:"1,keyasint" json:"activation_id"`
	Valid        bool   `cbor:"2,keyasint,omitempty" json:"valid,omitempty"`
	// Reason says why an invalid record is orphaned (returned by an
	// administrator, ID deactivated, computer retired or deleted, expired).
	Reason string `cbor:"3,keyasint,omitempty" json:"reason,omitempty"`
}

// ActivationStatusResponse answers ActivationStatus.
type ActivationStatusResponse struct {
	States []ActivationState `cbor:"1,keyasint,omitempty" json:"states,omitempty"`
}

// ActivationRecord is what the server signs for a machine holding a
// node-locked seat. The agent verifies it offline: the signature against
// ServerKey, ServerKey against the pinned fingerprint, Machine and Node
// against this machine.
type ActivationRecord struct {
	ActivationID string `cbor:"1,keyasint" json:"activation_id"`
	Product      string `cbor:"2,keyasint" json:"product"`
	Node         string `cbor:"3,keyasint" json:"node"`
	Machine      string `cbor:"4,keyasint" json:"machine"`
	IssuedAt     int64  `cbor:"5,keyasint" json:"issued_at"`
	Expires      int64  `cbor:"6,keyasint,omitempty" json:"expires,omitempty"`
	// ServerKey is the signing key's SubjectPublicKeyInfo (DER).
	ServerKey []byte `cbor:"7,keyasint" json:"server_key"`
}

// SignedRecord carries a record's canonical encoding and its signature
// side by side: the payload is decoded only after the signature verifies.
type SignedRecord struct {
	Payload   []byte `cbor:"1,keyasint" json:"payload"`
	Signature []byte `cbor:"2,keyasint" json:"signature"`
}

// LeaseCheckoutRequest asks for a concurrent seat of a product.
type LeaseCheckoutRequest struct {
	Product string `cbor:"1,keyasint" json:"product"`
	TTL     uint32 `cbor:"2,keyasint,omitempty" json:"ttl,omitempty"` // seconds, MinLeaseTTL to MaxLeaseTTL; 0: the server's default
}

// The time to live a lease may ask for: whole seconds on the wire, and no
// longer than a week, so a crashed client's seat comes back within one.
const (
	MinLeaseTTL = time.Second
	MaxLeaseTTL = 7 * 24 * time.Hour
)

// LeaseTTLSeconds is the wire form of a lease's time to live: 0 (the
// server's default) for 0, else whole seconds from MinLeaseTTL to
// MaxLeaseTTL. Anything else is refused with a sentence, never truncated
// or wrapped into another TTL.
func LeaseTTLSeconds(ttl time.Duration) (uint32, error) {
	switch {
	case ttl == 0:
		return 0, nil
	case ttl < MinLeaseTTL || ttl > MaxLeaseTTL || ttl%time.Second != 0:
		return 0, fmt.Errorf("a lease's time to live is whole seconds from 1s to 168h (a week), not %s", ttl)
	}
	return uint32(ttl / time.Second), nil
}

// Validate checks the fields.
func (r *LeaseCheckoutRequest) Validate() error {
	if !ValidName(r.Product) {
		return fmt.Errorf("%q is not a product name", truncate(r.Product))
	}
	if time.Duration(r.TTL)*time.Second > MaxLeaseTTL {
		return fmt.Errorf("a lease's time to live is at most 168h (a week), not %ds: ask for less", r.TTL)
	}
	return nil
}

// LeaseRequest names the product of a heartbeat or check-in.
type LeaseRequest struct {
	Product string `cbor:"1,keyasint" json:"product"`
}

// Validate checks the product name.
func (r *LeaseRequest) Validate() error {
	if !ValidName(r.Product) {
		return fmt.Errorf("%q is not a product name", truncate(r.Product))
	}
	return nil
}

// LeaseResponse answers checkout, heartbeat and check-in.
type LeaseResponse struct {
	Granted bool   `cbor:"1,keyasint,omitempty" json:"granted,omitempty"`
	Expires int64  `cbor:"2,keyasint,omitempty" json:"expires,omitempty"` // unix seconds
	TTL     uint32 `cbor:"3,keyasint,omitempty" json:"ttl,omitempty"`     // seconds the lease lasts without a heartbeat
	// ExpectedBack, for a denied checkout, is when the soonest lease runs
	// out unless renewed (unix seconds).
	ExpectedBack int64  `cbor:"4,keyasint,omitempty" json:"expected_back,omitempty"`
	Message      string `cbor:"5,keyasint,omitempty" json:"message,omitempty"`
	// Result says why a lease was not granted (no free seat, no such
	// product, computer not Active, every license expired), so the agent
	// need not read Message; zero from servers before revision 6.
	Result ActivationResult `cbor:"6,keyasint,omitempty" json:"result,omitempty"`
}

// LeaseResultRevision is the first revision whose LeaseResponse carries
// Result: a server leaves it out for older agents, whose strict decoding
// would refuse it.
const LeaseResultRevision uint16 = 6
