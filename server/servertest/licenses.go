package servertest

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
)

// Issuer is a license issuer trusted by a test server.
type Issuer struct {
	Key ed25519.PrivateKey
}

// TrustNewIssuer makes an issuer key and trusts it on the server.
func (s *Server) TrustNewIssuer(t testing.TB) *Issuer {
	t.Helper()
	key, err := license.NewIssuerKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := license.EncodePublicKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := daemon.TrustIssuer(s.Dir(), pub); err != nil {
		t.Fatal(err)
	}
	return &Issuer{Key: key}
}

// Mint signs a license file.
func (i *Issuer) Mint(t testing.TB, p license.Payload) []byte {
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

// ImportLicense mints and imports a license, returning it as stored.
func (s *Server) ImportLicense(t testing.TB, i *Issuer, p license.Payload) store.License {
	t.Helper()
	f := i.Mint(t, p)
	res, err := s.Admin.ImportLicenses(context.Background(), []adminapi.LicenseFile{{Name: fmt.Sprintf("%s.lic", p.Product), Data: string(f)}})
	if err != nil {
		t.Fatalf("import license: %v", err)
	}
	if len(res.Imported) != 1 {
		t.Fatalf("imported %d licenses", len(res.Imported))
	}
	return res.Imported[0]
}
