package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/store"
)

// MaxPurchasesPerImport bounds one import: 2,000 purchases is a large
// organisation's year.
const MaxPurchasesPerImport = 20_000

const purchaseColumns = `id, po, item, vendor, purchase_date, quantity, unit_price, type, effective, expiry, cost_centre, description`

func scanPurchase(row interface{ Scan(...any) error }) (positions.Purchase, error) {
	var p positions.Purchase
	err := row.Scan(&p.ID, &p.PO, &p.Item, &p.Vendor, &p.Date, &p.Quantity, &p.UnitPrice, &p.Type, &p.Effective, &p.Expiry, &p.CostCentre, &p.Description)
	return p, err
}

// resolveLicense names a license for a link: a software license (SW-n or
// its name) or one of Tally's product licenses (its ID).
func resolveLicense(ctx context.Context, tx *Tx, ref string) (string, error) {
	if id, err := swLicenseRowID(ctx, txQuerier{tx}, ref); err == nil {
		return swLicenseID(id), nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	var n int
	if err := tx.QueryRow(`SELECT COUNT(*) FROM licenses WHERE id = ?`, ref).Scan(&n); err != nil {
		return "", err
	}
	if n == 0 {
		return "", fmt.Errorf("%w: no license %q: name a software license (SW-n or its name, see 'tally-server swlicense list') or a product license ID ('tally-server license list')", store.ErrNotFound, ref)
	}
	return ref, nil
}

// loadPurchase reads a purchase with its links.
func loadPurchase(ctx context.Context, q posQuerier, id int64) (store.PurchaseView, error) {
	var v store.PurchaseView
	p, err := scanPurchase(q.QueryRowContext(ctx, `SELECT `+purchaseColumns+` FROM purchases WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("%w: no purchase %d (see 'tally-server purchase list')", store.ErrNotFound, id)
	}
	if err != nil {
		return v, err
	}
	v.Purchase, v.Links = p, []positions.Link{}
	rows, err := q.QueryContext(ctx, `SELECT purchase_id, license, quantity FROM purchase_links WHERE purchase_id = ? ORDER BY license`, id)
	if err != nil {
		return v, err
	}
	defer rows.Close()
	v.Unallocated = p.Quantity
	for rows.Next() {
		var k positions.Link
		if err := rows.Scan(&k.Purchase, &k.License, &k.Quantity); err != nil {
			return v, err
		}
		v.Links = append(v.Links, k)
		v.Unallocated -= k.Quantity
	}
	return v, rows.Err()
}

// AddPurchases implements store.SoftwareLicenses: all or none.
func (db *DB) AddPurchases(ctx context.Context, ps []store.NewPurchase, actor string) ([]store.PurchaseView, error) {
	if len(ps) == 0 {
		return nil, fmt.Errorf("%w: no purchase to add", store.ErrInvalid)
	}
	if len(ps) > MaxPurchasesPerImport {
		return nil, fmt.Errorf("%w: %d purchases in one import: at most %d; nothing was added", store.ErrInvalid, len(ps), MaxPurchasesPerImport)
	}
	for i, p := range ps {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("%w: purchase %d (%s): %w; nothing was added", store.ErrInvalid, i+1, p.PO, err)
		}
		if err := positions.CheckSplit(p.Purchase, p.Links); err != nil {
			return nil, fmt.Errorf("%w: purchase %d: %w; nothing was added", store.ErrInvalid, i+1, err)
		}
	}
	var out []store.PurchaseView
	err := db.write(ctx, func(tx *Tx) error {
		out = out[:0]
		for i, np := range ps {
			p := np.Purchase
			id, err := tx.ExecID(`INSERT INTO purchases (po, item, vendor, purchase_date, quantity, unit_price, type, effective, expiry, cost_centre, description, created_at, actor)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
				p.PO, p.Item, p.Vendor, p.Date, p.Quantity, p.UnitPrice, p.Type, p.Effective, p.Expiry, p.CostCentre, p.Description, ms(tx.Now), actor)
			if err != nil {
				return fmt.Errorf("store purchase %d (%s): %w", i+1, p.PO, err)
			}
			seen := map[string]bool{}
			for _, k := range np.Links {
				lic, err := resolveLicense(ctx, tx, k.License)
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("%w: purchase %d (%s): %s; nothing was added", store.ErrNotFound, i+1, p.PO, strings.TrimPrefix(err.Error(), store.ErrNotFound.Error()+": "))
				}
				if err != nil {
					return err
				}
				if seen[lic] {
					return fmt.Errorf("%w: purchase %d (%s) links license %s twice; nothing was added", store.ErrInvalid, i+1, p.PO, lic)
				}
				seen[lic] = true
				if _, err := tx.Exec(`INSERT INTO purchase_links (purchase_id, license, quantity) VALUES (?, ?, ?)`, id, lic, k.Quantity); err != nil {
					return err
				}
			}
			v, err := loadPurchase(ctx, txQuerier{tx}, id)
			if err != nil {
				return err
			}
			out = append(out, v)
			if err := auditChange(tx, actor, store.EventPurchaseAdded, "", fmt.Sprintf("purchase %d (%s) added", id, p.PO), nil, v); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// PurchaseList implements store.SoftwareLicenses.
func (db *DB) PurchaseList(ctx context.Context) ([]store.PurchaseView, error) {
	snap, err := db.purchasesAndLinks(ctx)
	if err != nil {
		return nil, err
	}
	by := map[int64][]positions.Link{}
	for _, k := range snap.Links {
		by[k.Purchase] = append(by[k.Purchase], k)
	}
	out := make([]store.PurchaseView, 0, len(snap.Purchases))
	for _, p := range snap.Purchases {
		v := store.PurchaseView{Purchase: p, Links: by[p.ID], Unallocated: p.Quantity}
		if v.Links == nil {
			v.Links = []positions.Link{}
		}
		for _, k := range v.Links {
			v.Unallocated -= k.Quantity
		}
		out = append(out, v)
	}
	return out, nil
}

// Purchase implements store.SoftwareLicenses.
func (db *DB) Purchase(ctx context.Context, id int64) (store.PurchaseView, error) {
	return loadPurchase(ctx, db.r, id)
}

// LinkPurchase implements store.SoftwareLicenses.
func (db *DB) LinkPurchase(ctx context.Context, purchase int64, license string, quantity int, actor string) (store.PurchaseView, error) {
	if quantity <= 0 || quantity > positions.MaxQuantity {
		return store.PurchaseView{}, fmt.Errorf("%w: quantity %d: a link takes a positive quantity, at most the purchase's", store.ErrInvalid, quantity)
	}
	var out store.PurchaseView
	err := db.write(ctx, func(tx *Tx) error {
		q := txQuerier{tx}
		before, err := loadPurchase(ctx, q, purchase)
		if err != nil {
			return err
		}
		lic, err := resolveLicense(ctx, tx, license)
		if err != nil {
			return err
		}
		links := []positions.Link{{Purchase: purchase, License: lic, Quantity: quantity}}
		for _, k := range before.Links {
			if k.License != lic {
				links = append(links, k)
			}
		}
		if err := positions.CheckSplit(before.Purchase, links); err != nil {
			return fmt.Errorf("%w: %w; nothing was changed", store.ErrInvalid, err)
		}
		if _, err := tx.Exec(`INSERT INTO purchase_links (purchase_id, license, quantity) VALUES (?, ?, ?)
			ON CONFLICT (purchase_id, license) DO UPDATE SET quantity = excluded.quantity`, purchase, lic, quantity); err != nil {
			return err
		}
		if out, err = loadPurchase(ctx, q, purchase); err != nil {
			return err
		}
		return auditChange(tx, actor, store.EventPurchaseLinked, "", fmt.Sprintf("purchase %d (%s): %d linked to license %s", purchase, before.PO, quantity, lic), before, out)
	})
	return out, err
}

// UnlinkPurchase implements store.SoftwareLicenses.
func (db *DB) UnlinkPurchase(ctx context.Context, purchase int64, license, actor string) (store.PurchaseView, error) {
	var out store.PurchaseView
	err := db.write(ctx, func(tx *Tx) error {
		q := txQuerier{tx}
		before, err := loadPurchase(ctx, q, purchase)
		if err != nil {
			return err
		}
		lic := license
		if id, err := swLicenseRowID(ctx, q, license); err == nil {
			lic = swLicenseID(id)
		}
		res, err := tx.Exec(`DELETE FROM purchase_links WHERE purchase_id = ? AND license = ?`, purchase, lic)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: purchase %d is not linked to license %s (see 'tally-server purchase show %d')", store.ErrNotFound, purchase, license, purchase)
		}
		if out, err = loadPurchase(ctx, q, purchase); err != nil {
			return err
		}
		return auditChange(tx, actor, store.EventPurchaseUnlinked, "", fmt.Sprintf("purchase %d (%s) unlinked from license %s", purchase, before.PO, lic), before, out)
	})
	return out, err
}

// purchasesAndLinks reads every purchase and link.
func (db *DB) purchasesAndLinks(ctx context.Context) (positions.Snapshot, error) {
	var s positions.Snapshot
	rows, err := db.r.QueryContext(ctx, `SELECT `+purchaseColumns+` FROM purchases ORDER BY id`)
	if err != nil {
		return s, fmt.Errorf("read purchases: %w", err)
	}
	for rows.Next() {
		p, err := scanPurchase(rows)
		if err != nil {
			rows.Close()
			return s, err
		}
		s.Purchases = append(s.Purchases, p)
	}
	rows.Close()
	rows, err = db.r.QueryContext(ctx, `SELECT purchase_id, license, quantity FROM purchase_links ORDER BY purchase_id, license`)
	if err != nil {
		return s, fmt.Errorf("read purchase links: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k positions.Link
		if err := rows.Scan(&k.Purchase, &k.License, &k.Quantity); err != nil {
			return s, err
		}
		s.Links = append(s.Links, k)
	}
	return s, rows.Err()
}

// PositionSnapshot implements store.SoftwareLicenses: software licenses
// with live consumption, Tally's product licenses with their grant and
// held seats, every purchase and link.
func (db *DB) PositionSnapshot(ctx context.Context) (positions.Snapshot, error) {
	s, err := db.purchasesAndLinks(ctx)
	if err != nil {
		return s, err
	}
	rows, err := db.r.QueryContext(ctx, `SELECT `+swLicenseColumns+` FROM sw_licenses l ORDER BY l.id`)
	if err != nil {
		return s, fmt.Errorf("read software licenses: %w", err)
	}
	idx := map[string]int{}
	for rows.Next() {
		l, err := scanSWLicense(rows)
		if err != nil {
			rows.Close()
			return s, err
		}
		idx[l.ID] = len(s.Licenses)
		s.Licenses = append(s.Licenses, l.License)
	}
	rows.Close()
	rows, err = db.r.QueryContext(ctx, `SELECT la.license_id, la.application_id, a.name, a.publisher FROM sw_license_applications la JOIN sw_applications a ON a.id = la.application_id ORDER BY la.license_id, a.name`)
	if err != nil {
		return s, err
	}
	apps := map[int][]int64{}
	for rows.Next() {
		var id, app int64
		var name, pub string
		if err := rows.Scan(&id, &app, &name, &pub); err != nil {
			rows.Close()
			return s, err
		}
		if i, ok := idx[swLicenseID(id)]; ok {
			l := &s.Licenses[i]
			if l.Product != "" {
				l.Product += ", "
			}
			l.Product += name
			if l.Publisher == "" {
				l.Publisher = pub
			}
			apps[i] = append(apps[i], app)
		}
	}
	rows.Close()
	// Consumption: computers (and installations) of each license's
	// applications, live.
	fleet, err := db.readFleetUse(ctx, slices.ContainsFunc(s.Licenses, func(l positions.License) bool { return l.Type == positions.TypeUser }))
	if err != nil {
		return s, err
	}
	allocs, err := db.allAllocations(ctx)
	if err != nil {
		return s, err
	}
	for i := range s.Licenses {
		row, _ := parseSWLicenseID(s.Licenses[i].ID)
		s.Licenses[i].Consumed, s.Licenses[i].Raw, s.Licenses[i].Reserved = fleet.license(s.Licenses[i].Type, apps[i], allocs[row])
	}
	pls, err := db.Licenses(ctx)
	if err != nil {
		return s, err
	}
	zone := db.engine.Zone()
	for _, pl := range pls {
		l := positions.License{ID: pl.ID, Kind: positions.KindProduct, Name: pl.ID, Product: pl.Product, Type: pl.Kind,
			Duration: pl.Duration, Status: "active", Consumed: pl.Held, Raw: pl.Held}
		if pl.ExpiresAt != nil {
			// The last day it is valid, in the server's time zone.
			l.Expiry = positions.DateOf(pl.ExpiresAt.In(zone).Add(-1))
		}
		if !pl.Expired {
			l.Granted = pl.Seats
		}
		s.Licenses = append(s.Licenses, l)
	}
	return s, nil
}
