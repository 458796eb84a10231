package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/dates"
	"github.com/tallyhq/tally/server/engine"
	"github.com/tallyhq/tally/server/ledger"
	"github.com/tallyhq/tally/server/store"
)

// licenseColumns reads a license with its seats held counted from the seat
// rows (node) or the live bindings (node-locked), not from the counter.
const licenseColumns = `l.id, l.product, l.kind, l.duration, l.seats,
	CASE l.kind WHEN 'node' THEN (SELECT COUNT(*) FROM seats s WHERE s.license_id = l.id)
		WHEN 'node-locked' THEN (SELECT COUNT(*) FROM activations b JOIN activation_ids i ON i.id = b.activation_id WHERE i.license_id = l.id AND b.ended_at IS NULL)
		WHEN 'user' THEN (SELECT COUNT(*) FROM user_seats u WHERE u.license_id = l.id)
		ELSE l.held END,
	(SELECT COUNT(*) FROM allocations a WHERE a.license_id = l.id),
	l.issued_at, l.expires_at, l.upgrade_until, l.customer, l.issuer, l.imported_at`

func scanLicense(sc interface{ Scan(...any) error }, now time.Time) (store.License, error) {
	var l store.License
	var issued, imported int64
	var exp, up sql.NullInt64
	if err := sc.Scan(&l.ID, &l.Product, &l.Kind, &l.Duration, &l.Seats, &l.Held, &l.Allocated, &issued, &exp, &up, &l.Customer, &l.Issuer, &imported); err != nil {
		return l, fmt.Errorf("read license: %w", err)
	}
	l.IssuedAt, l.ImportedAt = fromMS(issued), fromMS(imported)
	l.ExpiresAt, l.UpgradeUntil = fromNullMS(exp), fromNullMS(up)
	l.Expired = l.ExpiresAt != nil && !now.Before(*l.ExpiresAt)
	return l, nil
}

// applyGrant sets a license read from its row to its verified grant.
func applyGrant(l *store.License, g grant, now time.Time) {
	l.Product, l.Kind, l.Seats, l.Problem = g.product, g.kind, g.seats, g.problem
	l.ExpiresAt, l.UpgradeUntil = nil, nil
	if !g.expires.IsZero() {
		e := g.expires
		l.ExpiresAt = &e
	}
	if !g.upgrade.IsZero() {
		u := g.upgrade
		l.UpgradeUntil = &u
	}
	l.Expired = l.ExpiresAt != nil && !now.Before(*l.ExpiresAt)
}

// ImportLicenses implements store.Licensing: all the files or none. A file
// already imported unchanged is not an error; the same ID with other
// content is.
func (db *DB) ImportLicenses(ctx context.Context, ls []store.LicenseImport, actor string) ([]store.License, error) {
	var out []store.License
	err := db.write(ctx, func(tx *Tx) error {
		out = out[:0]
		db.licenses.invalidate(tx)
		for _, li := range ls {
			l := li.License
			var file []byte
			err := tx.QueryRow(`SELECT file FROM licenses WHERE id = ?`, l.ID).Scan(&file)
			switch {
			case err == nil && bytes.Equal(file, li.File):
				continue // already imported
			case err == nil:
				return fmt.Errorf("%w: a different license with ID %s is already imported; remove it first", store.ErrConflict, l.ID)
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
			p, ok := db.engine.Catalog().Product(l.Product)
			if !ok {
				return fmt.Errorf("%w: license %s is for unknown product %q: add it first with 'tally-server products add %s --kinds node-locked,concurrent' (see 'tally-server products list')",
					store.ErrInvalid, l.ID, l.Product, l.Product)
			}
			if err := p.Takes(l.Kind); err != nil {
				return fmt.Errorf("%w: license %s: %w", store.ErrInvalid, l.ID, err)
			}
			var exp, up any
			if l.ExpiresAt != nil {
				exp = ms(*l.ExpiresAt)
			}
			if l.UpgradeUntil != nil {
				up = ms(*l.UpgradeUntil)
			}
			if _, err := tx.Exec(`INSERT INTO licenses (id, product, kind, duration, seats, issued_at, expires_at, upgrade_until, customer, issuer, imported_at, file)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, l.ID, l.Product, l.Kind, l.Duration, l.Seats, ms(l.IssuedAt), exp, up, l.Customer, l.Issuer, ms(tx.Now), li.File); err != nil {
				return fmt.Errorf("store license %s: %w", l.ID, err)
			}
			if err := addEvent(tx, store.Event{Actor: actor, Kind: store.EventLicenseImport, Product: l.Product,
				Reason: fmt.Sprintf("license %s: %d %s seats, %s", l.ID, l.Seats, l.Kind, l.Duration)}); err != nil {
				return err
			}
			sl, err := scanLicense(tx.QueryRow(`SELECT `+licenseColumns+` FROM licenses l WHERE l.id = ?`, l.ID), tx.Now)
			if err != nil {
				return err
			}
			out = append(out, sl)
		}
		return nil
	})
	return out, err
}

// Licenses implements store.Licensing.
func (db *DB) Licenses(ctx context.Context) ([]store.License, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+licenseColumns+` FROM licenses l ORDER BY l.product, l.expires_at IS NULL, l.expires_at, l.id`)
	if err != nil {
		return nil, fmt.Errorf("list licenses: %w", err)
	}
	defer rows.Close()
	now := db.clock.Now()
	out := []store.License{}
	for rows.Next() {
		l, err := scanLicense(rows, now)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	// What a license grants is what its verified file says.
	grants, err := readGrants(db.r, db.licenses.verify)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if g, ok := grants[out[i].ID]; ok {
			applyGrant(&out[i], g, now)
		}
	}
	// A concurrent license's seats are its live leases: counted, not kept.
	for i := range out {
		if out[i].Kind == "concurrent" {
			if err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM leases WHERE license_id = ? AND expires_at > ?`, out[i].ID, ms(now)).Scan(&out[i].Held); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// RemoveLicense implements store.Licensing.
func (db *DB) RemoveLicense(ctx context.Context, id, actor string) (store.Change, error) {
	var ch store.Change
	err := db.write(ctx, func(tx *Tx) error {
		ch = store.Change{} // a job may run twice (see runBatch)
		var product string
		err := tx.QueryRow(`SELECT product FROM licenses WHERE id = ?`, id).Scan(&product)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("license %s: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM allocations WHERE license_id = ?`, id); err != nil {
			return err
		}
		db.licenses.invalidate(tx)
		if ch.Seats, err = db.ledger.Rebalance(db.lt(tx), product, []string{id}, id, actor); err != nil {
			return err
		}
		users, err := db.moveUserSeatsOff(tx, id, actor)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM licenses WHERE id = ?`, id); err != nil {
			return fmt.Errorf("remove license: %w", err)
		}
		hostnames(tx, ch.Seats)
		moved, freed := countChanges(ch.Seats)
		moved += len(users.Items) - users.SeatsFreed
		freed += users.SeatsFreed
		ch.Message = fmt.Sprintf("removed license %s of %s: %d seats moved to other licenses, %d freed", id, product, moved, freed)
		return addEvent(tx, store.Event{Actor: actor, Kind: store.EventLicenseRemove, Product: product, Reason: ch.Message})
	})
	return ch, err
}

func countChanges(cs []store.SeatChange) (moved, freed int) {
	for _, c := range cs {
		switch c.Change {
		case "moved":
			moved++
		case "freed":
			freed++
		}
	}
	return moved, freed
}

// Allocate implements store.Licensing: the computer gets a reserved seat
// on the license; if it holds the product's seat on another license, the
// seat moves here.
func (db *DB) Allocate(ctx context.Context, licenseID string, computerID int64, actor string) (store.Change, error) {
	var ch store.Change
	err := db.write(ctx, func(tx *Tx) error {
		ch = store.Change{} // a job may run twice (see runBatch)
		var product, kind string
		var exp sql.NullInt64
		err := tx.QueryRow(`SELECT product, kind, expires_at FROM licenses WHERE id = ?`, licenseID).Scan(&product, &kind, &exp)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("license %s: %w", licenseID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if exp.Valid && exp.Int64 <= ms(tx.Now) {
			return fmt.Errorf("%w: license %s has expired", store.ErrInvalid, licenseID)
		}
		c, hostname, err := loadComputer(tx, computerID)
		if err != nil {
			return err
		}
		if cur := c.Allocations[product]; cur == licenseID {
			ch.Message = fmt.Sprintf("computer %d already has a seat of %s allocated on license %s; nothing changed", computerID, product, licenseID)
			return nil
		} else if cur != "" {
			return fmt.Errorf("%w: computer %d already has a seat of %s allocated on license %s; deallocate it first", store.ErrConflict, computerID, product, cur)
		}
		pool, err := loadPool(tx, []string{product})
		if err != nil {
			return err
		}
		l := pool.License(licenseID)
		if l == nil {
			return fmt.Errorf("%w: license %s is a %s license: only node licenses take allocations", store.ErrInvalid, licenseID, kind)
		}
		holdsHere := c.Seats[product] == licenseID
		if !holdsHere && l.FreeForOthers() < 1 {
			return fmt.Errorf("%w: license %s has no free seat to allocate (%d held, %d reserved of %d): free one first", store.ErrConflict,
				licenseID, l.Held, l.Reserved(), l.Seats)
		}
		if _, err := tx.Exec(`INSERT INTO allocations (license_id, computer_id, product, at) VALUES (?, ?, ?, ?)`, licenseID, computerID, product, ms(tx.Now)); err != nil {
			return fmt.Errorf("allocate: %w", err)
		}
		if from := c.Seats[product]; from != "" && from != licenseID {
			d := engine.Decision{Effects: []engine.Effect{{Kind: engine.Move, ComputerID: computerID, Product: product, From: from, License: licenseID,
				Reason: "allocated to license " + licenseID}}}
			if ch.Seats, err = ledger.ApplyDecision(db.lt(tx), d, actor, ""); err != nil {
				return err
			}
		}
		hostnames(tx, ch.Seats)
		ch.Message = fmt.Sprintf("allocated a seat of %s on license %s to computer %d (%s)", product, licenseID, computerID, hostname)
		return addEvent(tx, store.Event{Actor: actor, Kind: store.EventAllocated, ComputerID: computerID, Product: product, Reason: ch.Message})
	})
	return ch, err
}

// Deallocate implements store.Licensing. The computer keeps any seat it
// holds; only the reservation ends.
func (db *DB) Deallocate(ctx context.Context, licenseID string, computerID int64, actor string) (store.Change, error) {
	var ch store.Change
	err := db.write(ctx, func(tx *Tx) error {
		ch = store.Change{} // a job may run twice (see runBatch)
		var product string
		err := tx.QueryRow(`SELECT product FROM allocations WHERE license_id = ? AND computer_id = ?`, licenseID, computerID).Scan(&product)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: computer %d has no allocation on license %s", store.ErrNotFound, computerID, licenseID)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM allocations WHERE license_id = ? AND computer_id = ?`, licenseID, computerID); err != nil {
			return err
		}
		ch.Message = fmt.Sprintf("removed the allocation of license %s to computer %d; a seat it holds stays", licenseID, computerID)
		return addEvent(tx, store.Event{Actor: actor, Kind: store.EventDeallocated, ComputerID: computerID, Product: product, Reason: ch.Message})
	})
	return ch, err
}

// ExpireLicenses implements store.Licensing.
func (db *DB) ExpireLicenses(ctx context.Context) (store.Change, error) {
	var ch store.Change
	err := db.write(ctx, func(tx *Tx) error {
		ch = store.Change{} // a job may run twice (see runBatch)
		var err error
		if ch.Seats, err = db.ledger.SweepExpired(db.lt(tx), nil, store.ActorSystem); err != nil {
			return err
		}
		acts, err := expireActivations(tx, store.ActorSystem)
		if err != nil {
			return err
		}
		ch.Seats = append(ch.Seats, acts...)
		if _, err := expireLeases(tx, store.ActorSystem); err != nil {
			return err
		}
		hostnames(tx, ch.Seats)
		return nil
	})
	return ch, err
}

// NextExpiry implements store.Licensing.
func (db *DB) NextExpiry(ctx context.Context) (time.Time, error) {
	var v sql.NullInt64
	if err := db.r.QueryRowContext(ctx, `SELECT MIN(expires_at) FROM licenses WHERE expires_at IS NOT NULL AND expires_at > ?`, ms(db.clock.Now())).Scan(&v); err != nil {
		return time.Time{}, err
	}
	if !v.Valid {
		return time.Time{}, nil
	}
	return fromMS(v.Int64), nil
}

// poolKinds is the order of a product's pools in usage reports.
var poolKinds = []string{catalog.KindNode, catalog.KindNodeLocked, catalog.KindConcurrent, catalog.KindUser}

// Usage implements store.Licensing: per product and pool (license kind:
// node seats, Activation IDs, leases), the seats granted by licenses valid
// now, consumed, reserved by allocations, the computers waiting for a
// seat, what is left (negative: a shortfall), discards by reason, each
// license, and the holders. Pools never add up: a machine refused a lease
// is short of a concurrent seat whatever node-locked seats are free.
func (db *DB) Usage(ctx context.Context, product string) ([]store.Usage, error) {
	return db.usage(ctx, product, true)
}

// UsageTotals implements store.Licensing.
func (db *DB) UsageTotals(ctx context.Context, product string) ([]store.Usage, error) {
	return db.usage(ctx, product, false)
}

func (db *DB) usage(ctx context.Context, product string, holders bool) ([]store.Usage, error) {
	if err := db.settleExpiredActivations(ctx); err != nil {
		return nil, err
	}
	now := db.clock.Now()
	var products []*catalog.Product
	if product != "" {
		p, ok := db.engine.Catalog().Product(product)
		if !ok {
			return nil, fmt.Errorf("%w: product %q (see 'tally-server products list')", store.ErrNotFound, product)
		}
		products = []*catalog.Product{p}
	} else {
		products = db.engine.Catalog().Products()
	}
	lics, err := db.Licenses(ctx)
	if err != nil {
		return nil, err
	}
	var uc *usageCounts
	if product == "" {
		if uc, err = db.readUsageCounts(ctx, now); err != nil {
			return nil, err
		}
	}
	var out []store.Usage
	for _, p := range products {
		pools := map[string]bool{}
		if !p.Application {
			pools[catalog.KindNode] = true
		}
		for _, k := range p.Kinds {
			pools[k] = true
		}
		for _, l := range lics {
			if l.Product == p.Name {
				pools[l.Kind] = true
			}
		}
		for _, kind := range poolKinds {
			if !pools[kind] {
				continue
			}
			u, err := db.poolUsage(ctx, p, kind, lics, now, holders, uc)
			if err != nil {
				return nil, err
			}
			out = append(out, u)
		}
	}
	return out, nil
}

// poolUsage reports one pool of a product.
// usageCounts are the discards, waiting computers and reservations of
// every pool, each read in one query, so that the usage of hundreds of
// products is a handful of queries rather than several per pool.
type usageCounts struct {
	discards map[[2]string]map[string]int64 // (product, pool) → reason → count
	waiting  map[[2]string]int              // (product, pool) → computers
	reserved map[string]int                 // license → allocations not yet consumed
}

// The waiting computers of each pool, as poolUsage counts them for one
// product, grouped by product. CROSS JOIN keeps SQLite reading the few
// discards first rather than walking every live computer.
const (
	waitingNodeByProduct = `SELECT d.product, COUNT(DISTINCT d.computer_id) FROM discards d CROSS JOIN computers c ON c.id = d.computer_id
		WHERE d.pool = 'node' AND d.reason IN ('discarded:no-seat', 'denied:no-seat') AND c.deleted_at IS NULL AND c.status = 'Active'
		AND NOT EXISTS (SELECT 1 FROM seats s WHERE s.computer_id = d.computer_id AND s.product = d.product) GROUP BY d.product`
	waitingConcurrentByProduct = `SELECT d.product, COUNT(DISTINCT d.computer_id) FROM discards d CROSS JOIN computers c ON c.id = d.computer_id
		WHERE d.pool = 'concurrent' AND c.deleted_at IS NULL AND c.status = 'Active'
		AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.computer_id = d.computer_id AND l.product = d.product AND l.expires_at > ?)
		AND NOT EXISTS (SELECT 1 FROM events e WHERE e.computer_id = d.computer_id AND e.product = d.product AND e.kind = ? AND e.at >= d.last_at) GROUP BY d.product`
	waitingNodeLockedByProduct = `SELECT d.product, COUNT(DISTINCT d.computer_id) FROM discards d CROSS JOIN computers c ON c.id = d.computer_id
		WHERE d.pool = 'node-locked' AND c.deleted_at IS NULL AND c.status = 'Active'
		AND NOT EXISTS (SELECT 1 FROM activations b JOIN activation_ids a ON a.id = b.activation_id
			WHERE b.computer_id = d.computer_id AND a.product = d.product AND b.ended_at IS NULL)
		AND NOT EXISTS (SELECT 1 FROM events e WHERE e.computer_id = d.computer_id AND e.product = d.product AND e.kind = ? AND e.at >= d.last_at) GROUP BY d.product`
)

func (db *DB) readUsageCounts(ctx context.Context, now time.Time) (*usageCounts, error) {
	uc := &usageCounts{discards: map[[2]string]map[string]int64{}, waiting: map[[2]string]int{}, reserved: map[string]int{}}
	scan := func(what, q string, row func(*sql.Rows) error, args ...any) error {
		rows, err := db.r.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("read %s: %w", what, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := row(rows); err != nil {
				return fmt.Errorf("read %s: %w", what, err)
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read %s: %w", what, err)
		}
		return nil
	}
	err := scan("discards", `SELECT product, pool, reason, SUM(count) FROM discards GROUP BY product, pool, reason`, func(rows *sql.Rows) error {
		var product, pool, reason string
		var n int64
		if err := rows.Scan(&product, &pool, &reason, &n); err != nil {
			return err
		}
		k := [2]string{product, pool}
		if uc.discards[k] == nil {
			uc.discards[k] = map[string]int64{}
		}
		uc.discards[k][reason] = n
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, w := range []struct {
		pool, q string
		args    []any
	}{
		{catalog.KindNode, waitingNodeByProduct, nil},
		{catalog.KindConcurrent, waitingConcurrentByProduct, []any{ms(now), store.EventLeaseOut}},
		{catalog.KindNodeLocked, waitingNodeLockedByProduct, []any{store.EventActivated}},
	} {
		err := scan("waiting computers", w.q, func(rows *sql.Rows) error {
			var product string
			var n int
			if err := rows.Scan(&product, &n); err != nil {
				return err
			}
			uc.waiting[[2]string{product, w.pool}] = n
			return nil
		}, w.args...)
		if err != nil {
			return nil, err
		}
	}
	err = scan("reservations", `SELECT a.license_id, COUNT(*) FROM allocations a
		WHERE NOT EXISTS (SELECT 1 FROM seats s WHERE s.computer_id = a.computer_id AND s.product = a.product AND s.license_id = a.license_id)
		GROUP BY a.license_id`, func(rows *sql.Rows) error {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return err
		}
		uc.reserved[id] = n
		return nil
	})
	if err != nil {
		return nil, err
	}
	return uc, nil
}

// poolUsage reports one pool of a product, from uc when given.
func (db *DB) poolUsage(ctx context.Context, p *catalog.Product, kind string, lics []store.License, now time.Time, holders bool, uc *usageCounts) (store.Usage, error) {
	u := store.Usage{Product: p.Name, Title: p.Title, Kind: kind, Discards: map[string]int64{}, Licenses: []store.LicenseUsage{}, Holders: []store.Holder{}}
	for _, l := range lics {
		if l.Product != p.Name || l.Kind != kind {
			continue
		}
		var reserved int
		var err error
		if uc != nil {
			reserved = uc.reserved[l.ID]
		} else if reserved, err = db.reserved(ctx, l.ID); err != nil {
			return u, err
		}
		lu := store.LicenseUsage{License: l}
		if !l.Expired {
			u.Granted += l.Seats
			u.Reserved += reserved
			lu.Available = l.Seats - l.Held - reserved
		}
		u.Consumed += l.Held
		u.Licenses = append(u.Licenses, lu)
	}
	if uc != nil {
		k := [2]string{p.Name, kind}
		for r, n := range uc.discards[k] {
			u.Discards[r] = n
		}
		u.Waiting = uc.waiting[k]
	} else if err := db.poolCounts(ctx, &u, p.Name, kind, now); err != nil {
		return u, err
	}
	if holders {
		var err error
		if u.Holders, err = db.poolHolders(ctx, p.Name, kind, now); err != nil {
			return u, err
		}
	}
	u.Available = u.Granted - u.Consumed - u.Reserved - u.Waiting
	u.Compliant = u.Available >= 0
	return u, nil
}

// poolCounts reads one pool's discards and waiting computers.
func (db *DB) poolCounts(ctx context.Context, u *store.Usage, product, kind string, now time.Time) error {
	rows, err := db.r.QueryContext(ctx, `SELECT reason, SUM(count) FROM discards WHERE product = ? AND pool = ? GROUP BY reason`, product, kind)
	if err != nil {
		return err
	}
	for rows.Next() {
		var r string
		var n int64
		if err := rows.Scan(&r, &n); err != nil {
			rows.Close()
			return err
		}
		u.Discards[r] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	switch kind {
	case catalog.KindNode:
		// Live Active computers refused a seat (no-seat) that hold none.
		err = db.r.QueryRowContext(ctx, `SELECT COUNT(DISTINCT d.computer_id) FROM discards d JOIN computers c ON c.id = d.computer_id
			WHERE d.product = ? AND d.pool = 'node' AND d.reason IN ('discarded:no-seat', 'denied:no-seat') AND c.deleted_at IS NULL AND c.status = 'Active'
			AND NOT EXISTS (SELECT 1 FROM seats s WHERE s.computer_id = d.computer_id AND s.product = d.product)`, product).Scan(&u.Waiting)
	case catalog.KindConcurrent:
		// Live Active computers refused a lease that hold none and were
		// granted none since.
		err = db.r.QueryRowContext(ctx, `SELECT COUNT(DISTINCT d.computer_id) FROM discards d JOIN computers c ON c.id = d.computer_id
			WHERE d.product = ? AND d.pool = 'concurrent' AND c.deleted_at IS NULL AND c.status = 'Active'
			AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.computer_id = d.computer_id AND l.product = d.product AND l.expires_at > ?)
			AND NOT EXISTS (SELECT 1 FROM events e WHERE e.computer_id = d.computer_id AND e.product = d.product AND e.kind = ? AND e.at >= d.last_at)`,
			product, ms(now), store.EventLeaseOut).Scan(&u.Waiting)
	case catalog.KindNodeLocked:
		// Live Active computers refused an activation that hold no seat
		// of the product's Activation IDs and were granted none since.
		err = db.r.QueryRowContext(ctx, `SELECT COUNT(DISTINCT d.computer_id) FROM discards d JOIN computers c ON c.id = d.computer_id
			WHERE d.product = ? AND d.pool = 'node-locked' AND c.deleted_at IS NULL AND c.status = 'Active'
			AND NOT EXISTS (SELECT 1 FROM activations b JOIN activation_ids a ON a.id = b.activation_id
				WHERE b.computer_id = d.computer_id AND a.product = d.product AND b.ended_at IS NULL)
			AND NOT EXISTS (SELECT 1 FROM events e WHERE e.computer_id = d.computer_id AND e.product = d.product AND e.kind = ? AND e.at >= d.last_at)`,
			product, store.EventActivated).Scan(&u.Waiting)
	}
	if err != nil {
		return fmt.Errorf("count waiting computers: %w", err)
	}
	return nil
}

// poolHolders lists who holds a pool's seats: computers holding node
// seats, machines bound to an Activation ID, machines holding a lease.
func (db *DB) poolHolders(ctx context.Context, product, kind string, now time.Time) ([]store.Holder, error) {
	var q string
	args := []any{product}
	switch kind {
	case catalog.KindNode:
		q = `SELECT s.computer_id, c.hostname, s.license_id, s.since, s.reason, '', 0,
			EXISTS (SELECT 1 FROM allocations a WHERE a.computer_id = s.computer_id AND a.license_id = s.license_id)
			FROM seats s JOIN computers c ON c.id = s.computer_id WHERE s.product = ? ORDER BY s.since, s.computer_id`
	case catalog.KindNodeLocked:
		q = `SELECT b.computer_id, c.hostname, a.license_id, b.activated_at, 'activated with ' || a.id, a.id, 0, 0
			FROM activations b JOIN activation_ids a ON a.id = b.activation_id JOIN computers c ON c.id = b.computer_id
			WHERE a.product = ? AND b.ended_at IS NULL ORDER BY b.activated_at, b.computer_id`
	case catalog.KindConcurrent:
		q = `SELECT l.computer_id, c.hostname, l.license_id, l.granted_at, 'lease', '', l.expires_at, 0
			FROM leases l JOIN computers c ON c.id = l.computer_id WHERE l.product = ? AND l.expires_at > ? ORDER BY l.granted_at, l.computer_id`
		args = append(args, ms(now))
	default:
		return []store.Holder{}, nil
	}
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read holders: %w", err)
	}
	defer rows.Close()
	out := []store.Holder{}
	for rows.Next() {
		var h store.Holder
		var since, expires int64
		if err := rows.Scan(&h.ComputerID, &h.Hostname, &h.License, &since, &h.Reason, &h.ActivationID, &expires, &h.Allocated); err != nil {
			return nil, fmt.Errorf("read holders: %w", err)
		}
		h.Since = fromMS(since)
		if expires != 0 {
			e := fromMS(expires)
			h.Expires = &e
			h.Reason = "lease until " + dates.Instant(e, db.engine.Zone())
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

func (db *DB) reserved(ctx context.Context, license string) (int, error) {
	var n int
	err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM allocations a WHERE a.license_id = ?
		AND NOT EXISTS (SELECT 1 FROM seats s WHERE s.computer_id = a.computer_id AND s.product = a.product AND s.license_id = a.license_id)`, license).Scan(&n)
	return n, err
}
