// Package license reads, verifies and mints Tally license files. A file is
// signed with Ed25519 by an issuer whose public key the server trusts: the
// signature covers the deterministic CBOR encoding of the payload, the
// payload is decoded only after the signature verifies, and the whole file
// must be exactly what the issuer wrote (its readable comment lines are
// derived from the payload), so any changed byte is caught and named.
package license

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/dates"
)

// Kinds of license.
const (
	KindNode       = "node"        // consumed by a node's qualifying post (the default)
	KindNodeLocked = "node-locked" // bound to machines by Activation IDs
	KindConcurrent = "concurrent"  // leases
	KindUser       = "user"        // one seat per user with an active credential (seed 003)
)

// Durations.
const (
	Perpetual    = "perpetual"
	Subscription = "subscription"
	TimeLimited  = "time-limited"
)

// Errors that say what is wrong with a file; test them with errors.Is.
var (
	ErrMalformed       = errors.New("not a Tally license file")
	ErrBadSignature    = errors.New("signature does not verify: the file was changed or damaged")
	ErrAltered         = errors.New("the file was changed outside its signed part")
	ErrUntrustedIssuer = errors.New("issuer is not trusted by this server")
	ErrExpired         = errors.New("license has already expired")
	ErrInvalid         = errors.New("invalid license")
)

// Payload is what the issuer signs.
type Payload struct {
	Format       uint   `cbor:"1,keyasint"`
	ID           string `cbor:"2,keyasint"`
	Product      string `cbor:"3,keyasint"`
	Seats        uint32 `cbor:"4,keyasint"`
	Kind         string `cbor:"5,keyasint"`
	Duration     string `cbor:"6,keyasint"`
	IssuedAt     int64  `cbor:"7,keyasint"`           // unix seconds
	Expires      int64  `cbor:"8,keyasint,omitempty"` // unix seconds; 0: never
	UpgradeUntil int64  `cbor:"9,keyasint,omitempty"` // unix seconds; 0: no limit
	Customer     string `cbor:"10,keyasint,omitempty"`
	Issuer       string `cbor:"11,keyasint"`
	// Zone is the IANA time zone the issuer gave the dates in: the file's
	// readable lines show them there, so "expires 2027-06-30" reads as the
	// day the issuer typed wherever the server runs.
	Zone string `cbor:"12,keyasint,omitempty"`
}

// MaxSeats is the most seats one license may grant.
const MaxSeats = 10_000_000

// ExpiresAt returns the last instant the license is valid, zero for none.
func (p *Payload) ExpiresAt() time.Time { return lastInstant(p.Expires) }

// UpgradeUntilAt returns the last instant of upgrade protection, zero for
// none.
func (p *Payload) UpgradeUntilAt() time.Time { return lastInstant(p.UpgradeUntil) }

// lastInstant reads an end date of the payload, which names the last whole
// second that is still covered: a license issued to expire on 2027-06-30
// carries 23:59:59 of that day and is valid until the day is over.
func lastInstant(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, int64(time.Second-time.Nanosecond)).UTC()
}

// location is the zone the payload's dates are shown in.
func (p *Payload) location() (*time.Location, error) {
	if p.Zone == "" {
		return time.UTC, nil
	}
	return time.LoadLocation(p.Zone)
}

// Validate checks the payload's own consistency.
func (p *Payload) Validate() error {
	switch {
	case p.Format != 1:
		return fmt.Errorf("%w: format %d is not supported by this server", ErrInvalid, p.Format)
	case p.ID == "" || len(p.ID) > 64:
		return fmt.Errorf("%w: missing or overlong ID", ErrInvalid)
	case p.Product == "" || len(p.Product) > 64:
		return fmt.Errorf("%w: missing product", ErrInvalid)
	case p.Seats == 0 || p.Seats > MaxSeats:
		return fmt.Errorf("%w: seats must be between 1 and 10,000,000", ErrInvalid)
	}
	if _, err := p.location(); err != nil {
		return fmt.Errorf("%w: time zone %q of its dates is unknown", ErrInvalid, p.Zone)
	}
	switch p.Kind {
	case KindNode, KindNodeLocked, KindConcurrent, KindUser:
	default:
		return fmt.Errorf("%w: kind %q (want node, node-locked, concurrent or user)", ErrInvalid, p.Kind)
	}
	switch p.Duration {
	case Perpetual:
		if p.Expires != 0 {
			return fmt.Errorf("%w: a perpetual license has no expiry", ErrInvalid)
		}
	case Subscription, TimeLimited:
		if p.Expires == 0 {
			return fmt.Errorf("%w: a %s license needs an expiry date", ErrInvalid, p.Duration)
		}
	default:
		return fmt.Errorf("%w: duration %q (want perpetual, subscription or time-limited)", ErrInvalid, p.Duration)
	}
	if len(p.Customer) > 200 {
		return fmt.Errorf("%w: customer name too long", ErrInvalid)
	}
	return nil
}

// File is a parsed and verified license file.
type File struct {
	Payload   Payload
	Raw       []byte // the payload as signed
	Signature []byte
	Data      []byte // the file as written
}

// IssuerID names an issuer key: 16 hex digits of its SHA-256.
func IssuerID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Trusted is the set of issuer keys a server trusts, by issuer ID.
type Trusted map[string]ed25519.PublicKey

const (
	blockLicense   = "TALLY LICENSE"
	blockSignature = "TALLY LICENSE SIGNATURE"
)

// Parse verifies a license file against the trusted issuers and returns
// it. It does not check expiry or the product (see CheckImport).
func Parse(data []byte, trusted Trusted) (*File, error) {
	norm := bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	lb, rest := pem.Decode(norm)
	if lb == nil || lb.Type != blockLicense {
		return nil, fmt.Errorf("%w: no %q block", ErrMalformed, blockLicense)
	}
	sb, _ := pem.Decode(rest)
	if sb == nil || sb.Type != blockSignature {
		return nil, fmt.Errorf("%w: no %q block", ErrMalformed, blockSignature)
	}
	issuer := lb.Headers["Issuer"]
	if issuer == "" {
		return nil, fmt.Errorf("%w: the license block names no issuer", ErrMalformed)
	}
	pub, ok := trusted[issuer]
	if !ok {
		return nil, fmt.Errorf("%w: issuer %s (trust its public key with 'tally-server issuer trust FILE')", ErrUntrustedIssuer, issuer)
	}
	if len(sb.Bytes) != ed25519.SignatureSize || !ed25519.Verify(pub, lb.Bytes, sb.Bytes) {
		return nil, ErrBadSignature
	}
	var p Payload
	if err := protocol.Unmarshal(lb.Bytes, &p); err != nil {
		return nil, fmt.Errorf("%w: signed payload does not decode: %v", ErrInvalid, err)
	}
	if p.Issuer != issuer {
		return nil, fmt.Errorf("%w: payload names issuer %s, block names %s", ErrInvalid, p.Issuer, issuer)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	canonical := render(&p, lb.Bytes, sb.Bytes)
	if !bytes.Equal(bytes.TrimRight(norm, "\n "), bytes.TrimRight(canonical, "\n ")) {
		return nil, ErrAltered
	}
	return &File{Payload: p, Raw: lb.Bytes, Signature: sb.Bytes, Data: canonical}, nil
}

// CheckImport applies the rules of import: the license must not have
// expired at now.
func (f *File) CheckImport(now time.Time) error {
	if e := f.Payload.ExpiresAt(); !e.IsZero() && !now.Before(e) {
		loc, _ := f.Payload.location()
		return fmt.Errorf("%w: license %s expired on %s", ErrExpired, f.Payload.ID, dates.Text(e, loc))
	}
	return nil
}

// Issue signs a payload with the issuer's key and returns the file.
func Issue(key ed25519.PrivateKey, p Payload) ([]byte, error) {
	p.Format = 1
	p.Issuer = IssuerID(key.Public().(ed25519.PublicKey))
	if p.ID == "" {
		b := make([]byte, 10)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		p.ID = "L-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	raw, err := protocol.MarshalCanonical(&p)
	if err != nil {
		return nil, fmt.Errorf("encode license: %w", err)
	}
	return render(&p, raw, ed25519.Sign(key, raw)), nil
}

func render(p *Payload, raw, sig []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Tally license %s: %d %s seats of %s\n", p.ID, p.Seats, p.Kind, p.Product)
	loc, err := p.location()
	if err != nil {
		loc = time.UTC // Validate refuses such a payload before it is rendered
	}
	date := func(s int64) string {
		if p.Zone == "" { // files issued before zones were recorded read as they were signed
			return time.Unix(s, 0).UTC().Format("2006-01-02")
		}
		return dates.Text(lastInstant(s), loc)
	}
	exp := "never expires"
	if p.Expires != 0 {
		exp = "expires " + date(p.Expires)
	}
	up := "upgrades covered without limit"
	if p.UpgradeUntil != 0 {
		up = "upgrades covered until " + date(p.UpgradeUntil)
	}
	zone := ""
	if p.Zone != "" && (p.Expires != 0 || p.UpgradeUntil != 0) {
		zone = " (dates in " + p.Zone + ")"
	}
	fmt.Fprintf(&b, "# %s, %s, %s%s\n", p.Duration, exp, up, zone)
	fmt.Fprintf(&b, "# issued %s by issuer %s", time.Unix(p.IssuedAt, 0).UTC().Format("2006-01-02"), p.Issuer)
	if p.Customer != "" {
		fmt.Fprintf(&b, " to %s", oneLine(p.Customer))
	}
	b.WriteString("\n# Import it with: tally-server license import FILE\n")
	b.Write(pem.EncodeToMemory(&pem.Block{Type: blockLicense, Headers: map[string]string{"Issuer": p.Issuer}, Bytes: raw}))
	b.Write(pem.EncodeToMemory(&pem.Block{Type: blockSignature, Bytes: sig}))
	return b.Bytes()
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// NewIssuerKey makes an issuer key pair.
func NewIssuerKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	return priv, err
}

// EncodePublicKey writes an issuer's public key as PEM, with its ID.
func EncodePublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"Tally-Issuer": IssuerID(pub)}, Bytes: der}), nil
}

// DecodePublicKey reads an issuer public key written by EncodePublicKey
// (or any PEM Ed25519 public key).
func DecodePublicKey(data []byte) (ed25519.PublicKey, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM public key (want the issuer.pub that 'tally-server issuer init' wrote)")
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("public key is not Ed25519")
	}
	return pub, nil
}

// EncodePrivateKey writes an issuer's private key as PKCS#8 PEM.
func EncodePrivateKey(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// DecodePrivateKey reads an issuer private key.
func DecodePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM private key (want the issuer.key that 'tally-server issuer init' wrote)")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("private key is not Ed25519")
	}
	return priv, nil
}
