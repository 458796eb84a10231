package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

// LoadCatalog reads the built-in catalog and the admin's products file in
// the data folder, if there is one. A broken file stops the server with a
// message naming the file, the product and the field.
func LoadCatalog(d datadir.Dir) (*catalog.Catalog, error) {
	path := d.File(datadir.ProductsFileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return catalog.Builtin()
	}
	if err != nil {
		return nil, fmt.Errorf("read products: %w", err)
	}
	return catalog.Load(&catalog.AdminFile{Name: path, Data: data})
}

// TrustedIssuers reads the issuer public keys trusted by the server in the
// data folder (trusted-issuers/*.pub).
func TrustedIssuers(d datadir.Dir) (license.Trusted, error) {
	dir := d.File(datadir.IssuersFile)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return license.Trusted{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read trusted issuers: %w", err)
	}
	t := license.Trusted{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".pub") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		pub, err := license.DecodePublicKey(data)
		if err != nil {
			return nil, fmt.Errorf("trusted issuer %s: %w", e.Name(), err)
		}
		t[license.IssuerID(pub)] = pub
	}
	return t, nil
}

// TrustIssuer adds an issuer public key to the data folder's trust.
func TrustIssuer(d datadir.Dir, pubPEM []byte) (string, error) {
	pub, err := license.DecodePublicKey(pubPEM)
	if err != nil {
		return "", err
	}
	id := license.IssuerID(pub)
	dir := d.File(datadir.IssuersFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	enc, err := license.EncodePublicKey(pub)
	if err != nil {
		return "", err
	}
	return id, os.WriteFile(filepath.Join(dir, id+".pub"), enc, 0o600)
}

// ShareIssuer stores a trusted issuer's key in the PostgreSQL database at
// storeURL, so that every replica of it trusts the issuer (they take it
// at their next verification of a license it signed).
func ShareIssuer(ctx context.Context, storeURL string, d datadir.Dir, id string) error {
	name := datadir.IssuersFile + "/" + id + ".pub"
	data, err := os.ReadFile(d.File(name))
	if err != nil {
		return err
	}
	_, err = sqlstore.ShareServerFiles(ctx, storeURL, []sqlstore.ServerFile{{Name: name, Content: data, MTime: time.Now().UnixMilli()}}, nil)
	return err
}

// TrustedIssuerIDs lists the trusted issuers, sorted.
func TrustedIssuerIDs(d datadir.Dir) ([]string, error) {
	t, err := TrustedIssuers(d)
	if err != nil {
		return nil, err
	}
	var ids []string
	for id := range t {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

// VerifyLicenseFile checks one license file for import: signature and
// content, trusted issuer, known product, not expired at now.
func VerifyLicenseFile(data []byte, trusted license.Trusted, cat *catalog.Catalog, now time.Time) (store.LicenseImport, error) {
	f, err := license.Parse(data, trusted)
	if err != nil {
		return store.LicenseImport{}, err
	}
	if err := f.CheckImport(now); err != nil {
		return store.LicenseImport{}, err
	}
	p := f.Payload
	if _, ok := cat.Product(p.Product); !ok {
		return store.LicenseImport{}, fmt.Errorf("%w: license %s is for product %q, which this server does not know: for an application licensed by Activation IDs or leases, add it with 'tally-server products add %s --kinds node-locked,concurrent' (see 'tally-server products list')",
			license.ErrInvalid, p.ID, p.Product, p.Product)
	}
	l := store.License{ID: p.ID, Product: p.Product, Kind: p.Kind, Duration: p.Duration, Seats: int(p.Seats),
		IssuedAt: time.Unix(p.IssuedAt, 0).UTC(), Customer: p.Customer, Issuer: p.Issuer}
	if e := p.ExpiresAt(); !e.IsZero() {
		l.ExpiresAt = &e
	}
	if u := p.UpgradeUntilAt(); !u.IsZero() {
		l.UpgradeUntil = &u
	}
	return store.LicenseImport{License: l, File: f.Data}, nil
}

func (d *Daemon) verifyLicense(data []byte) (store.LicenseImport, error) {
	trusted, err := TrustedIssuers(d.dir)
	if err != nil {
		return store.LicenseImport{}, err
	}
	l, err := VerifyLicenseFile(data, trusted, d.catalog, d.cfg.Clock.Now())
	if d.pullIssuers(err) {
		return d.verifyLicense(data)
	}
	if err == nil && sqlstore.IsPostgresURL(d.cfg.Store) {
		// The other replicas must trust the issuer of a license imported
		// here, even one trusted only in this replica's folder.
		if serr := ShareIssuer(context.Background(), d.cfg.Store, d.dir, l.License.Issuer); serr != nil {
			return store.LicenseImport{}, fmt.Errorf("share issuer %s with the replicas: %w", l.License.Issuer, serr)
		}
	}
	if err != nil && errors.Is(err, license.ErrInvalid) && strings.Contains(err.Error(), "which this server does not know") && sqlstore.IsPostgresURL(d.cfg.Store) {
		// Another replica may have added the product: read them again.
		if rerr := d.db.Refresh(context.Background()); rerr == nil {
			return VerifyLicenseFile(data, trusted, d.catalog, d.cfg.Clock.Now())
		}
	}
	return l, err
}

// pullIssuers, after a verification that failed on an untrusted issuer,
// takes the issuers trusted on the other replicas of a shared database
// into the data folder, and reports whether it found one new.
func (d *Daemon) pullIssuers(err error) bool {
	if !errors.Is(err, license.ErrUntrustedIssuer) || !sqlstore.IsPostgresURL(d.cfg.Store) {
		return false
	}
	before, terr := TrustedIssuers(d.dir)
	if terr != nil {
		return false
	}
	if _, serr := d.shareIdentity(context.Background()); serr != nil {
		d.log.Warn("could not read the replicas' trusted issuers", "err", serr)
		return false
	}
	after, terr := TrustedIssuers(d.dir)
	return terr == nil && len(after) > len(before)
}

// verifySigned verifies a stored license file (the signature and the
// trusted issuer, not expiry): the store takes each license's grant from
// it, never from the database row's columns.
func (d *Daemon) verifySigned(file []byte) (license.Payload, error) {
	trusted, err := TrustedIssuers(d.dir)
	if err != nil {
		return license.Payload{}, err
	}
	f, err := license.Parse(file, trusted)
	if d.pullIssuers(err) {
		return d.verifySigned(file)
	}
	if err != nil {
		return license.Payload{}, err
	}
	return f.Payload, nil
}

// warnLicenseProblems logs, at start, each license whose database row
// disagrees with its signed file (the file counts until maintenance
// repairs the row).
func (d *Daemon) warnLicenseProblems() {
	ls, err := d.db.Licenses(context.Background())
	if err != nil {
		d.log.Warn("could not check the licenses against their signed files", "err", err)
		return
	}
	for _, l := range ls {
		if l.Problem != "" {
			d.log.Warn("license row disagrees with its signed file; run 'tally-server maintenance run' to repair it", "license", l.ID, "problem", l.Problem)
		}
	}
}

// maintenance runs the job and lists what ends soon, also in the log, so
// the scheduled run warns as the on-demand one does.
func (d *Daemon) maintenance(ctx context.Context) (store.MaintenanceReport, error) {
	who := store.ActorSystem
	if p, ok := adminapi.PrincipalOf(ctx); ok {
		who = p.Name // run on demand: the admin who asked
	}
	rep, err := d.db.RunMaintenance(ctx, store.MaintenanceOptions{StaleAfter: d.cfg.StaleAfter, Actor: who})
	if err != nil {
		return rep, err
	}
	for _, e := range rep.Errors {
		d.log.Warn("maintenance step failed; the other steps ran", "error", e)
	}
	for _, r := range rep.Repaired {
		d.log.Warn("maintenance repaired drift", "repaired", r)
	}
	if rep.Expiring, err = adminapi.ExpiringNow(ctx, d.db, d.dates); err != nil {
		return rep, err
	}
	for _, e := range rep.Expiring {
		d.log.Warn("end date within the expiry warning window", "what", e.What, "id", e.ID, "product", e.Product, "ends", e.EndsAt.Format("2006-01-02 15:04 MST"), "state", e.Phrase)
	}
	return rep, nil
}

// Catalog returns the product catalog in use.
func (d *Daemon) Catalog() *catalog.Catalog { return d.catalog }
