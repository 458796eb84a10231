// Package activation signs and verifies node-locked activation records:
// the server signs a record binding an Activation ID's seat to one node and
// one machine fingerprint; the agent keeps it and proves the seat offline,
// checking the signature, that the signing key is the server it pinned, and
// that the record names this node and this machine. A record edited, or
// copied to another machine, does not verify there.
package activation

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/tallyhq/tally/protocol"
)

// Errors of Verify, tested with errors.Is.
var (
	ErrDamaged      = errors.New("activation record is damaged or was edited: its signature does not verify")
	ErrOtherServer  = errors.New("activation record was signed by another server than the one this agent trusts")
	ErrOtherMachine = errors.New("activation record belongs to another machine")
	ErrOtherNode    = errors.New("activation record belongs to another agent identity")
	ErrExpired      = errors.New("activation record has expired")
)

// Sign encodes and signs a record with the server's key.
func Sign(key ed25519.PrivateKey, r protocol.ActivationRecord) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	r.ServerKey = spki
	payload, err := protocol.MarshalCanonical(&r)
	if err != nil {
		return nil, fmt.Errorf("encode activation record: %w", err)
	}
	return protocol.MarshalCanonical(&protocol.SignedRecord{Payload: payload, Signature: ed25519.Sign(key, payload)})
}

// Expect is what a record must match on this machine.
type Expect struct {
	Fingerprint string // the pinned server fingerprint (hex SHA-256 of its key's SPKI)
	Node        string // this agent's node ID
	Machine     string // this machine's fingerprint
	Now         time.Time
}

// Verify checks a signed record and returns its content.
func Verify(data []byte, want Expect) (protocol.ActivationRecord, error) {
	var r protocol.ActivationRecord
	var sr protocol.SignedRecord
	if err := protocol.Unmarshal(data, &sr); err != nil {
		return r, fmt.Errorf("%w (%v)", ErrDamaged, err)
	}
	// The key is read from the payload, so the payload is parsed before
	// the signature is checked; nothing of it is trusted until both the
	// key's fingerprint and the signature match.
	var head struct {
		ServerKey []byte `cbor:"7,keyasint"`
	}
	if err := protocol.UnmarshalLenient(sr.Payload, &head); err != nil {
		return r, fmt.Errorf("%w (%v)", ErrDamaged, err)
	}
	sum := sha256.Sum256(head.ServerKey)
	if subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(want.Fingerprint)) != 1 {
		return r, ErrOtherServer
	}
	k, err := x509.ParsePKIXPublicKey(head.ServerKey)
	pub, ok := k.(ed25519.PublicKey)
	if err != nil || !ok || len(sr.Signature) != ed25519.SignatureSize || !ed25519.Verify(pub, sr.Payload, sr.Signature) {
		return r, ErrDamaged
	}
	if err := protocol.Unmarshal(sr.Payload, &r); err != nil {
		return r, fmt.Errorf("%w (%v)", ErrDamaged, err)
	}
	if r.Machine != want.Machine {
		return r, ErrOtherMachine
	}
	if r.Node != want.Node {
		return r, ErrOtherNode
	}
	if r.Expires != 0 && !want.Now.Before(time.Unix(r.Expires, 0)) {
		return r, ErrExpired
	}
	return r, nil
}
