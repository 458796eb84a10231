package servertest

import (
	"context"
	"fmt"
	"testing"

	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/license/licensetest"
	"github.com/tallyhq/tally/server/store"
)

// Issuer is a license issuer trusted by a test server.
type Issuer = licensetest.Issuer

// TrustNewIssuer makes an issuer key and trusts it on the server.
func (s *Server) TrustNewIssuer(t testing.TB) *Issuer {
	t.Helper()
	i := licensetest.NewIssuer(t)
	pub, err := license.EncodePublicKey(i.Public())
	if err != nil {
		t.Fatal(err)
	}
	id, err := daemon.TrustIssuer(s.Dir(), pub)
	if err != nil {
		t.Fatal(err)
	}
	if s.Config.Store != "" {
		if err := daemon.ShareIssuer(context.Background(), s.Config.Store, s.Dir(), id); err != nil {
			t.Fatal(err)
		}
	}
	return i
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
