package protocol

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Kind names what a request asks for. Values are append-only.
type Kind uint16

// Message kinds. Zero is never valid.
const (
	KindEnroll         Kind = 1 // EnrollRequest → EnrollResponse
	KindInventory      Kind = 2 // InventoryRequest → InventoryResponse
	KindPluginData     Kind = 3 // PluginDataRequest → VerdictResponse
	KindTaskRequest    Kind = 4 // TaskRequest → TaskResponse
	KindCheckIn        Kind = 5 // CheckInRequest → VerdictResponse
	KindGoodbye        Kind = 6 // GoodbyeRequest → GoodbyeResponse
	KindPackageRequest Kind = 7 // PackageRequest → PackageResponse
	KindCatalogRequest Kind = 8 // CatalogRequest → CatalogResponse

	KindActivate         Kind = 9  // ActivateRequest → ActivateResponse
	KindDeactivate       Kind = 10 // DeactivateRequest → DeactivateResponse
	KindActivationStatus Kind = 11 // ActivationStatusRequest → ActivationStatusResponse
	KindLeaseCheckout    Kind = 12 // LeaseCheckoutRequest → LeaseResponse
	KindLeaseHeartbeat   Kind = 13 // LeaseRequest → LeaseResponse
	KindLeaseCheckin     Kind = 14 // LeaseRequest → LeaseResponse
)

var kindNames = map[Kind]string{
	KindEnroll:         "enroll",
	KindInventory:      "inventory",
	KindPluginData:     "plugin-data",
	KindTaskRequest:    "task-request",
	KindCheckIn:        "check-in",
	KindGoodbye:        "goodbye",
	KindPackageRequest: "package-request",
	KindCatalogRequest: "catalog-request",

	KindActivate:         "activate",
	KindDeactivate:       "deactivate",
	KindActivationStatus: "activation-status",
	KindLeaseCheckout:    "lease-checkout",
	KindLeaseHeartbeat:   "lease-heartbeat",
	KindLeaseCheckin:     "lease-checkin",
}

// String returns the kind's lower-case name, or "kind(N)" for an unknown one.
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", uint16(k))
}

// Known reports whether this build understands the kind.
func (k Kind) Known() bool {
	_, ok := kindNames[k]
	return ok
}

// Status is the outcome class of a response. Values are append-only.
type Status uint16

// Response statuses. Anything but StatusOK carries a human-readable Message.
const (
	StatusOK                 Status = 0
	StatusBadRequest         Status = 1  // malformed CBOR, wrong types, duplicate keys, invalid fields
	StatusTooLarge           Status = 2  // request larger than MaxRequestSize
	StatusUnsupportedVersion Status = 3  // unknown major version
	StatusUnknownKind        Status = 4  // kind this server does not know
	StatusNotEnrolled        Status = 5  // key unknown: only Enroll is accepted
	StatusBadSecret          Status = 6  // enrollment secret wrong, revoked or expired
	StatusRevoked            Status = 7  // key revoked, computer deleted or blocked
	StatusStaleSeq           Status = 8  // sequence number too old to be checked for a repeat
	StatusBusy               Status = 9  // server overloaded: retry after RetryAfter seconds
	StatusInternal           Status = 10 // server fault; the request may be retried
)

var statusNames = map[Status]string{
	StatusOK:                 "ok",
	StatusBadRequest:         "bad-request",
	StatusTooLarge:           "too-large",
	StatusUnsupportedVersion: "unsupported-version",
	StatusUnknownKind:        "unknown-kind",
	StatusNotEnrolled:        "not-enrolled",
	StatusBadSecret:          "bad-secret",
	StatusRevoked:            "revoked",
	StatusStaleSeq:           "stale-sequence",
	StatusBusy:               "busy",
	StatusInternal:           "internal",
}

// String returns the status's name.
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("status(%d)", uint16(s))
}

// Retryable reports whether the same request may succeed if sent again later.
func (s Status) Retryable() bool {
	return s == StatusBusy || s == StatusInternal
}

// Request is the envelope of every message an agent sends. The agent writes
// exactly one Request on a fresh stream and closes its sending side.
type Request struct {
	Major uint16          `cbor:"1,keyasint"`
	Rev   uint16          `cbor:"2,keyasint"`
	Kind  Kind            `cbor:"3,keyasint"`
	Seq   uint64          `cbor:"4,keyasint"` // per node, strictly increasing; the server applies each once
	Body  cbor.RawMessage `cbor:"5,keyasint,omitempty"`
}

// Response is the envelope of every answer. Seq echoes the request's.
type Response struct {
	Major      uint16          `cbor:"1,keyasint"`
	Rev        uint16          `cbor:"2,keyasint"`
	Status     Status          `cbor:"3,keyasint"`
	Message    string          `cbor:"4,keyasint,omitempty"`
	Seq        uint64          `cbor:"5,keyasint,omitempty"`
	RetryAfter uint32          `cbor:"6,keyasint,omitempty"` // seconds
	Repeat     bool            `cbor:"7,keyasint,omitempty"` // the stored outcome of an earlier, identical sequence number
	Body       cbor.RawMessage `cbor:"8,keyasint,omitempty"`
}

// Error is a non-OK response as a Go error, so callers can switch on Status
// with errors.As.
type Error struct {
	Status     Status
	Message    string
	RetryAfter uint32
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "server answered " + e.Status.String()
	}
	return e.Message
}

// Errorf builds an *Error with a formatted message.
func Errorf(s Status, format string, args ...any) *Error {
	return &Error{Status: s, Message: fmt.Sprintf(format, args...)}
}

// Err returns the response's error, or nil when it is OK.
func (r *Response) Err() error {
	if r.Status == StatusOK {
		return nil
	}
	return &Error{Status: r.Status, Message: r.Message, RetryAfter: r.RetryAfter}
}
