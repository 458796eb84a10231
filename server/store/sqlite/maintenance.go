package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/engine"
	"github.com/tallyhq/tally/server/store"
)

// snapshot reads the whole licensing state inside tx.
func snapshot(tx *Tx) (engine.Snapshot, error) {
	s := engine.Snapshot{Computers: map[int64]engine.ComputerFact{}}
	rows, err := tx.Query(`SELECT id, product, seats, held, expires_at, upgrade_until FROM licenses WHERE kind = 'node'`)
	if err != nil {
		return s, err
	}
	for rows.Next() {
		l := &engine.License{}
		var exp, up sql.NullInt64
		if err := rows.Scan(&l.ID, &l.Product, &l.Seats, &l.Held, &exp, &up); err != nil {
			rows.Close()
			return s, err
		}
		if exp.Valid {
			l.Expires = fromMS(exp.Int64)
		}
		if up.Valid {
			l.UpgradeUntil = fromMS(up.Int64)
		}
		s.Licenses = append(s.Licenses, l)
	}
	rows.Close()
	rows, err = tx.Query(`SELECT computer_id, product, license_id FROM seats`)
	if err != nil {
		return s, err
	}
	for rows.Next() {
		var f engine.SeatFact
		if err := rows.Scan(&f.ComputerID, &f.Product, &f.License); err != nil {
			rows.Close()
			return s, err
		}
		s.Seats = append(s.Seats, f)
	}
	rows.Close()
	rows, err = tx.Query(`SELECT id, status, deleted_at IS NOT NULL, plugins FROM computers`)
	if err != nil {
		return s, err
	}
	for rows.Next() {
		var id int64
		var f engine.ComputerFact
		var plugins string
		if err := rows.Scan(&id, &f.Status, &f.Deleted, &plugins); err != nil {
			rows.Close()
			return s, err
		}
		f.Plugins = pluginsFromJSON(plugins)
		s.Computers[id] = f
	}
	rows.Close()
	rows, err = tx.Query(`SELECT license_id, computer_id FROM allocations`)
	if err != nil {
		return s, err
	}
	for rows.Next() {
		var a engine.AllocationFact
		if err := rows.Scan(&a.License, &a.ComputerID); err != nil {
			rows.Close()
			return s, err
		}
		s.Allocations = append(s.Allocations, a)
	}
	rows.Close()
	return s, rows.Err()
}

// Check reads the state and returns every broken invariant (tests and
// maintenance use it).
func (db *DB) Check(ctx context.Context) ([]engine.Violation, error) {
	var v []engine.Violation
	err := db.write(ctx, func(tx *Tx) error {
		s, err := snapshot(tx)
		if err != nil {
			return err
		}
		v = db.engine.Check(s, tx.Now)
		nl, err := checkNodeLocked(tx)
		v = append(v, nl...)
		return err
	})
	return v, err
}

// RunMaintenance implements store.Maintenance: it does in one transaction
// what the older product needed a nightly job and service restarts for,
// except that no reclamation ever waits for it. It expires licenses,
// applies the stale-node policy, reconciles seat counts with the seats
// (reporting any drift it repairs; there should be none) and purges the
// product data of freed computers after each product's retention.
func (db *DB) RunMaintenance(ctx context.Context, o store.MaintenanceOptions) (store.MaintenanceReport, error) {
	start := time.Now()
	var r store.MaintenanceReport
	actor := o.Actor
	if actor == "" {
		actor = store.ActorSystem
	}
	err := db.write(ctx, func(tx *Tx) error {
		r = store.MaintenanceReport{At: tx.Now, Drift: []string{}, Repaired: []string{}, Expired: []store.SeatChange{}, Missing: []int64{}, Freed: []store.SeatChange{}}
		var err error
		if r.Expired, err = db.sweepExpired(tx, nil, actor); err != nil {
			return err
		}
		acts, err := expireActivations(tx, actor)
		if err != nil {
			return err
		}
		r.Expired = append(r.Expired, acts...)
		if r.Expired == nil {
			r.Expired = []store.SeatChange{}
		}
		if o.StaleAfter > 0 {
			if err := db.markStale(tx, o.StaleAfter, actor, &r); err != nil {
				return err
			}
		}
		if _, err := expireLeases(tx, actor); err != nil {
			return err
		}
		s, err := snapshot(tx)
		if err != nil {
			return err
		}
		violations := db.engine.Check(s, tx.Now)
		nl, err := checkNodeLocked(tx)
		if err != nil {
			return err
		}
		for _, v := range append(violations, nl...) {
			r.Drift = append(r.Drift, v.String())
			switch v.Kind {
			case "counter":
				if _, err := tx.Exec(`UPDATE licenses SET held = ? WHERE id = ?`, v.Held, v.License); err != nil {
					return err
				}
				r.Repaired = append(r.Repaired, fmt.Sprintf("license %s: seat counter set to %d", v.License, v.Held))
			}
		}
		if len(r.Repaired) > 0 {
			if err := addEvent(tx, store.Event{Actor: actor, Kind: store.EventDriftRepaired, Reason: strings.Join(r.Repaired, "; ")}); err != nil {
				return err
			}
		}
		if r.Purged, err = db.purge(tx, actor); err != nil {
			return err
		}
		hostnames(tx, r.Expired)
		hostnames(tx, r.Freed)
		summary := fmt.Sprintf("%d drift found, %d repaired, %d seats re-examined for expiry, %d computers set Missing, %d purged",
			len(r.Drift), len(r.Repaired), len(r.Expired), len(r.Missing), r.Purged)
		return addEvent(tx, store.Event{Actor: actor, Kind: store.EventMaintenance, Reason: summary})
	})
	r.Duration = time.Since(start).Round(time.Millisecond).String()
	return r, err
}

func (db *DB) markStale(tx *Tx, after time.Duration, actor string, r *store.MaintenanceReport) error {
	var exists int
	if err := tx.QueryRow(`SELECT COUNT(*) FROM statuses WHERE name = ?`, StatusMissing).Scan(&exists); err != nil || exists == 0 {
		return fmt.Errorf("the stale-node policy needs the status %s: %w", StatusMissing, err)
	}
	rows, err := tx.Query(`SELECT id FROM computers WHERE deleted_at IS NULL AND status = 'Active' AND last_seen < ? ORDER BY id`, ms(tx.Now.Add(-after)))
	if err != nil {
		return err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		c, _, err := loadComputer(tx, id)
		if err != nil {
			return err
		}
		d := db.engine.StatusChange(c, StatusMissing)
		freed, err := applyDecision(tx, d, actor, "")
		if err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE computers SET status = ? WHERE id = ?`, StatusMissing, id); err != nil {
			return err
		}
		r.Missing = append(r.Missing, id)
		r.Freed = append(r.Freed, freed...)
		if err := addEvent(tx, store.Event{Actor: actor, Kind: store.EventStatus, ComputerID: id,
			Reason: fmt.Sprintf("Active → Missing: not seen for %s (stale-node policy); %s", after, d.Summary())}); err != nil {
			return err
		}
	}
	return nil
}

// purge deletes the product data of seats freed longer ago than their
// product's retention.
func (db *DB) purge(tx *Tx, actor string) (int, error) {
	rows, err := tx.Query(`SELECT computer_id, product, freed_at FROM freed ORDER BY freed_at`)
	if err != nil {
		return 0, err
	}
	type freedRow struct {
		computer int64
		product  string
		at       int64
	}
	var fs []freedRow
	for rows.Next() {
		var f freedRow
		if err := rows.Scan(&f.computer, &f.product, &f.at); err != nil {
			rows.Close()
			return 0, err
		}
		fs = append(fs, f)
	}
	rows.Close()
	n := 0
	for _, f := range fs {
		p, ok := db.engine.Catalog().Product(f.product)
		if ok && (p.PurgeAfterDays < 0 || tx.Now.Sub(fromMS(f.at)) < time.Duration(p.PurgeAfterDays)*24*time.Hour) {
			continue
		}
		if _, err := tx.Exec(`DELETE FROM product_data WHERE computer_id = ? AND product = ?`, f.computer, f.product); err != nil {
			return n, err
		}
		if !ok || p.Plugin == catalog.SoftwarePlugin {
			// Software inventory belongs to the inventory products: keep it
			// while the computer holds any of them.
			var still int
			if err := tx.QueryRow(`SELECT COUNT(*) FROM seats WHERE computer_id = ? AND product IN (`+db.softwareProducts()+`)`, f.computer).Scan(&still); err != nil {
				return n, err
			}
			if still == 0 {
				if _, err := tx.Exec(`DELETE FROM computer_software_sets WHERE computer_id = ?`, f.computer); err != nil {
					return n, err
				}
				if _, err := tx.Exec(`UPDATE computers SET sw_generation = 0, sw_hash = '', sw_count = 0 WHERE id = ?`, f.computer); err != nil {
					return n, err
				}
			}
		}
		if _, err := tx.Exec(`DELETE FROM freed WHERE computer_id = ? AND product = ?`, f.computer, f.product); err != nil {
			return n, err
		}
		if err := addEvent(tx, store.Event{Actor: actor, Kind: store.EventPurged, ComputerID: f.computer, Product: f.product,
			Reason: "product data of a freed seat purged after its retention"}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// softwareProducts is an SQL list of the products whose data is software
// inventory.
func (db *DB) softwareProducts() string {
	var q []string
	for _, p := range db.engine.Catalog().ForPluginName(catalog.SoftwarePlugin) {
		q = append(q, "'"+strings.ReplaceAll(p.Name, "'", "''")+"'")
	}
	if len(q) == 0 {
		return "''"
	}
	return strings.Join(q, ",")
}
