package daemon_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/license/licensetest"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

// TestReplicasShareOneIdentity starts two servers on one PostgreSQL
// database, each with a data folder of its own: the second takes the
// first's key, admin token and trusted issuers from the database, so
// agents pin one fingerprint and one token administers both; what one
// stores the other serves.
func TestReplicasShareOneIdentity(t *testing.T) {
	url := pg.Cluster(t).NewDatabase(t)
	a := servertest.New(t, servertest.WithStore(url))
	iss := a.TrustNewIssuer(t)
	b := servertest.New(t, servertest.WithStore(url))
	if a.Fingerprint() != b.Fingerprint() {
		t.Fatalf("fingerprints differ: %s and %s", a.Fingerprint(), b.Fingerprint())
	}
	if a.Identity().Token != b.Identity().Token {
		t.Fatal("the replicas' admin tokens differ")
	}
	for _, name := range []string{datadir.KeyFile, datadir.QUICKeysFile} {
		x, _ := os.ReadFile(filepath.Join(a.Config.DataDir, name))
		y, _ := os.ReadFile(filepath.Join(b.Config.DataDir, name))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Fatalf("%s differs between the replicas' data folders", name)
		}
	}
	// The issuer trusted on the first before the second started is
	// trusted by the second: a license it signs imports there.
	l := b.ImportLicense(t, iss, license.Payload{Product: "inventory", Seats: 3, Kind: license.KindNode})
	got, err := a.Admin.Licenses(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != l.ID {
		t.Fatalf("the first replica lists %+v, want the license the second imported (%s)", got, l.ID)
	}
}

// TestProductAddedOnOneReplicaIsKnownToTheOthers: an application product
// added through one replica takes licenses on another, which reads the
// products again when it meets one it does not know.
func TestProductAddedOnOneReplicaIsKnownToTheOthers(t *testing.T) {
	url := pg.Cluster(t).NewDatabase(t)
	a := servertest.New(t, servertest.WithStore(url))
	iss := a.TrustNewIssuer(t)
	b := servertest.New(t, servertest.WithStore(url))
	ctx := context.Background()
	if _, err := a.Admin.AddProduct(ctx, store.ApplicationProduct{Name: "cad", Title: "CAD suite", Kinds: []string{"node-locked", "concurrent"}}); err != nil {
		t.Fatal(err)
	}
	l := b.ImportLicense(t, iss, license.Payload{Product: "cad", Seats: 2, Kind: license.KindNodeLocked})
	if l.Product != "cad" {
		t.Fatalf("imported %+v", l)
	}
}

// TestLicenseImportedOnOneReplicaSharesItsIssuer: an issuer trusted only
// in the first replica's folder (issuer trust without --store) is shared
// when a license it signs is imported there, and the second replica
// verifies that license instead of finding no grant in it.
func TestLicenseImportedOnOneReplicaSharesItsIssuer(t *testing.T) {
	url := pg.Cluster(t).NewDatabase(t)
	a := servertest.New(t, servertest.WithStore(url))
	b := servertest.New(t, servertest.WithStore(url))
	iss := licensetest.NewIssuer(t)
	pub, err := license.EncodePublicKey(iss.Public())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := daemon.TrustIssuer(a.Dir(), pub); err != nil {
		t.Fatal(err)
	}
	a.ImportLicense(t, iss, license.Payload{Product: "inventory", Seats: 3, Kind: license.KindNode})
	ls, err := b.Admin.Licenses(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || ls[0].Problem != "" {
		t.Fatalf("the second replica lists %+v: want the license, with no problem", ls)
	}
}
