// Package licensetest mints signed license files for tests: an issuer key
// of its own, the defaults a test leaves out, and the file as a store
// imports it. It links no server or store backend, so that the store
// conformance suite and the in-process test server share it.
package licensetest

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
)

// TB is what the helpers need of a test: a testing.TB, or a rapid.T.
type TB interface {
	Helper()
	Fatal(args ...any)
}

// Issuer is a license issuer key.
type Issuer struct {
	Key ed25519.PrivateKey
}

// NewIssuer makes an issuer key.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	key, err := license.NewIssuerKey()
	if err != nil {
		t.Fatal(err)
	}
	return &Issuer{Key: key}
}

// Public is the issuer's public key.
func (i *Issuer) Public() ed25519.PublicKey { return i.Key.Public().(ed25519.PublicKey) }

// Trusted is the set of issuers that trusts this one alone.
func (i *Issuer) Trusted() license.Trusted {
	pub := i.Public()
	return license.Trusted{license.IssuerID(pub): pub}
}

// Verify parses a file this issuer signed, as a server trusting it does.
func (i *Issuer) Verify(file []byte) (license.Payload, error) {
	f, err := license.Parse(file, i.Trusted())
	if err != nil {
		return license.Payload{}, err
	}
	return f.Payload, nil
}

// Mint signs a license file. A zero IssuedAt is now, a zero Kind is a node
// license, and a zero Duration is perpetual (subscription with Expires).
func (i *Issuer) Mint(t TB, p license.Payload) []byte {
	t.Helper()
	if p.IssuedAt == 0 {
		p.IssuedAt = time.Now().Unix()
	}
	if p.Kind == "" {
		p.Kind = license.KindNode
	}
	if p.Duration == "" {
		p.Duration = license.Perpetual
		if p.Expires != 0 {
			p.Duration = license.Subscription
		}
	}
	f, err := license.Issue(i.Key, p)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Import mints p and returns it verified, as a server hands it to its
// store's ImportLicenses.
func (i *Issuer) Import(t TB, p license.Payload) store.LicenseImport {
	t.Helper()
	f, err := license.Parse(i.Mint(t, p), i.Trusted())
	if err != nil {
		t.Fatal(err)
	}
	q := f.Payload
	l := store.License{ID: q.ID, Product: q.Product, Kind: q.Kind, Duration: q.Duration, Seats: int(q.Seats),
		IssuedAt: time.Unix(q.IssuedAt, 0).UTC(), Customer: q.Customer, Issuer: q.Issuer}
	if e := q.ExpiresAt(); !e.IsZero() {
		l.ExpiresAt = &e
	}
	if u := q.UpgradeUntilAt(); !u.IsZero() {
		l.UpgradeUntil = &u
	}
	return store.LicenseImport{License: l, File: f.Data}
}
