package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/engine"
	"github.com/tallyhq/tally/server/ledger"
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
	for _, l := range s.Licenses {
		if err := tx.lic.apply(tx, l); err != nil {
			return s, err
		}
	}
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
		f.Plugins = ledger.DecodePlugins(plugins)
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

// RunMaintenance implements store.Maintenance: it does what the older
// product needed a nightly job and service restarts for, except that no
// reclamation ever waits for it. It expires licenses, applies the
// stale-node policy, reconciles the licenses with their signed files and
// the seat counters with the seats (reporting and repairing any drift: a
// damaged or edited database) and purges the product data of freed
// computers after each product's retention. Each step commits on its own:
// one that fails is reported in the report's Errors and the others still
// run.
func (db *DB) RunMaintenance(ctx context.Context, o store.MaintenanceOptions) (store.MaintenanceReport, error) {
	start := time.Now()
	actor := o.Actor
	if actor == "" {
		actor = store.ActorSystem
	}
	r := store.MaintenanceReport{At: db.clock.Now(), Drift: []string{}, Repaired: []string{}, Expired: []store.SeatChange{}, Missing: []int64{}, Freed: []store.SeatChange{}}
	step := func(name string, fn func(tx *Tx) error) {
		if err := db.write(ctx, fn); err != nil {
			db.log.Error("maintenance step failed", "step", name, "err", err)
			r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", name, err))
		}
	}
	step("expire licenses", func(tx *Tx) error {
		expired, err := db.ledger.SweepExpired(db.lt(tx), nil, actor)
		if err != nil {
			return err
		}
		acts, err := expireActivations(tx, actor)
		if err != nil {
			return err
		}
		expired = append(expired, acts...)
		hostnames(tx, expired)
		tx.OnCommit(func() { r.Expired = append(r.Expired, expired...) })
		return nil
	})
	if o.StaleAfter > 0 {
		step("stale-node policy", func(tx *Tx) error {
			var part store.MaintenanceReport
			if err := db.markStale(tx, o.StaleAfter, actor, &part); err != nil {
				return err
			}
			hostnames(tx, part.Freed)
			tx.OnCommit(func() {
				r.Missing = append(r.Missing, part.Missing...)
				r.Freed = append(r.Freed, part.Freed...)
			})
			return nil
		})
	}
	step("expire leases", func(tx *Tx) error {
		_, err := expireLeases(tx, actor)
		return err
	})
	step("seat counts", func(tx *Tx) error {
		drift, repaired, freed, err := db.repairDrift(tx, actor)
		if err != nil {
			return err
		}
		if len(drift) > 0 {
			if err := addEvent(tx, store.Event{Actor: actor, Kind: store.EventDriftFound, Reason: strings.Join(drift, "; ")}); err != nil {
				return err
			}
		}
		hostnames(tx, freed)
		tx.OnCommit(func() {
			r.Drift = append(r.Drift, drift...)
			r.Repaired = append(r.Repaired, repaired...)
			r.Freed = append(r.Freed, freed...)
		})
		return nil
	})
	step("purge", func(tx *Tx) error {
		n, err := db.purge(tx, actor)
		if err != nil {
			return err
		}
		tx.OnCommit(func() { r.Purged = n })
		return nil
	})
	summary := fmt.Sprintf("%d drift found, %d repaired, %d seats re-examined for expiry, %d computers set Missing, %d purged",
		len(r.Drift), len(r.Repaired), len(r.Expired), len(r.Missing), r.Purged)
	if len(r.Errors) > 0 {
		summary += fmt.Sprintf("; %d steps failed: %s", len(r.Errors), strings.Join(r.Errors, "; "))
	}
	if err := db.write(ctx, func(tx *Tx) error {
		return addEvent(tx, store.Event{Actor: actor, Kind: store.EventMaintenance, Reason: summary})
	}); err != nil {
		r.Errors = append(r.Errors, fmt.Sprintf("audit: %v", err))
	}
	r.Duration = time.Since(start).Round(time.Millisecond).String()
	return r, nil
}

// repairDrift reconciles every license with its verified signed file and
// its seat counter with the seat rows. A license holding more seats than
// its file grants gives up the newest ones (each freed seat audited); a
// row whose columns disagree with its file takes the file's values; a
// counter that disagrees with the rows is set to them. It returns what it
// found (the invariants broken before the repair) and what it repaired.
func (db *DB) repairDrift(tx *Tx, actor string) (drift, repaired []string, freed []store.SeatChange, err error) {
	s, err := snapshot(tx)
	if err != nil {
		return nil, nil, nil, err
	}
	violations := db.engine.Check(s, tx.Now)
	nl, err := checkNodeLocked(tx)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, v := range append(violations, nl...) {
		drift = append(drift, v.String())
	}
	grants, err := readGrants(tx, db.licenses.verify)
	if err != nil {
		return nil, nil, nil, err
	}
	type row struct {
		id, kind    string
		seats, held int
		rows        int
	}
	rs, err := tx.Query(`SELECT l.id, l.kind, l.seats, l.held,
			CASE l.kind WHEN 'node' THEN (SELECT COUNT(*) FROM seats s WHERE s.license_id = l.id)
				WHEN 'node-locked' THEN (SELECT COUNT(*) FROM activations b JOIN activation_ids i ON i.id = b.activation_id WHERE i.license_id = l.id AND b.ended_at IS NULL)
				WHEN 'user' THEN (SELECT COUNT(*) FROM user_seats u WHERE u.license_id = l.id)
				ELSE l.held END
		FROM licenses l ORDER BY l.id`)
	if err != nil {
		return nil, nil, nil, err
	}
	var ls []row
	for rs.Next() {
		var x row
		if err := rs.Scan(&x.id, &x.kind, &x.seats, &x.held, &x.rows); err != nil {
			rs.Close()
			return nil, nil, nil, err
		}
		ls = append(ls, x)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, nil, nil, err
	}
	changed := false
	for _, l := range ls {
		g, ok := grants[l.id]
		if !ok {
			continue
		}
		if g.problem != "" {
			drift = append(drift, g.problem)
		}
		if g.verified && l.kind == catalog.KindNode && l.rows > g.seats {
			drift = append(drift, fmt.Sprintf("license %s holds %d seats; its signed file grants %d", l.id, l.rows, g.seats))
			f, err := db.freeExcess(tx, l.id, l.rows-g.seats, g.seats, actor)
			if err != nil {
				return nil, nil, nil, err
			}
			freed = append(freed, f...)
			l.rows -= len(f)
			repaired = append(repaired, fmt.Sprintf("license %s: freed the %d newest seats above the %d its signed file grants", l.id, len(f), g.seats))
		}
		held := l.rows
		if g.verified && g.problem != "" {
			seats := g.seats
			if held > seats {
				held = seats // node-locked bindings above the grant: reported above, returned by the admin
			}
			var exp, up any
			if !g.expires.IsZero() {
				exp = ms(g.expires)
			}
			if !g.upgrade.IsZero() {
				up = ms(g.upgrade)
			}
			if _, err := tx.Exec(`UPDATE licenses SET product = ?, kind = ?, seats = ?, expires_at = ?, upgrade_until = ?, held = ? WHERE id = ?`,
				g.product, g.kind, seats, exp, up, held, l.id); err != nil {
				return nil, nil, nil, fmt.Errorf("repair license %s: %w", l.id, err)
			}
			changed = true
			repaired = append(repaired, fmt.Sprintf("license %s: the row now says what its signed file says (%d seats)", l.id, seats))
			l.seats = seats
		}
		if held > l.seats {
			held = l.seats
		}
		if held != l.held && l.kind != catalog.KindConcurrent {
			if _, err := tx.Exec(`UPDATE licenses SET held = ? WHERE id = ?`, held, l.id); err != nil {
				return nil, nil, nil, fmt.Errorf("repair the seat counter of license %s: %w", l.id, err)
			}
			changed = true
			repaired = append(repaired, fmt.Sprintf("license %s: seat counter set to %d (was %d)", l.id, held, l.held))
		}
	}
	if changed {
		db.licenses.invalidate(tx)
	}
	if len(repaired) > 0 {
		if err := addEvent(tx, store.Event{Actor: actor, Kind: store.EventDriftRepaired, Reason: strings.Join(repaired, "; ")}); err != nil {
			return nil, nil, nil, err
		}
	}
	if drift == nil {
		drift = []string{}
	}
	if repaired == nil {
		repaired = []string{}
	}
	return drift, repaired, freed, nil
}

// freeExcess frees the n newest seats of a license (ledger.FreeExcess).
func (db *DB) freeExcess(tx *Tx, id string, n, granted int, actor string) ([]store.SeatChange, error) {
	rows, err := tx.Query(`SELECT computer_id, product FROM seats WHERE license_id = ? ORDER BY since DESC, computer_id DESC LIMIT ?`, id, n)
	if err != nil {
		return nil, err
	}
	var seats []ledger.SeatRef
	for rows.Next() {
		var r ledger.SeatRef
		if err := rows.Scan(&r.ComputerID, &r.Product); err != nil {
			rows.Close()
			return nil, err
		}
		seats = append(seats, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return ledger.FreeExcess(db.lt(tx), id, seats, granted, actor)
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
		freed, err := db.ledger.MarkMissing(db.lt(tx), id, after, actor)
		if err != nil {
			return err
		}
		r.Missing = append(r.Missing, id)
		r.Freed = append(r.Freed, freed...)
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
		if _, err := tx.ExecUncached(`DELETE FROM product_data WHERE computer_id = ? AND product = ?`, f.computer, f.product); err != nil {
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
				if _, err := tx.ExecUncached(`DELETE FROM computer_software_sets WHERE computer_id = ?`, f.computer); err != nil {
					return n, err
				}
				if _, err := tx.ExecComputer(f.computer, `UPDATE computers SET sw_generation = 0, sw_hash = '', sw_count = 0 WHERE id = ?`, f.computer); err != nil {
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
