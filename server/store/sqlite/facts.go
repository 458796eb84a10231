package sqlite

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/engine"
	"github.com/tallyhq/tally/server/store"
)

// loadComputer reads what the engine needs of a computer inside tx.
func loadComputer(tx *Tx, id int64) (engine.Computer, string, error) {
	c := engine.Computer{ID: id, Seats: map[string]string{}, Allocations: map[string]string{}}
	var plugins, hostname string
	var deleted sql.NullInt64
	err := tx.QueryRow(`SELECT status, plugins, hostname, deleted_at FROM computers WHERE id = ?`, id).Scan(&c.Status, &plugins, &hostname, &deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return c, "", fmt.Errorf("computer %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return c, "", fmt.Errorf("read computer %d: %w", id, err)
	}
	if deleted.Valid {
		return c, hostname, fmt.Errorf("computer %d was deleted: %w", id, store.ErrNotFound)
	}
	if err := json.Unmarshal([]byte(plugins), &c.Plugins); err != nil {
		c.Plugins = nil
	}
	rows, err := tx.Query(`SELECT product, license_id FROM seats WHERE computer_id = ?`, id)
	if err != nil {
		return c, hostname, fmt.Errorf("read seats: %w", err)
	}
	for rows.Next() {
		var p, l string
		if err := rows.Scan(&p, &l); err != nil {
			rows.Close()
			return c, hostname, err
		}
		c.Seats[p] = l
	}
	rows.Close()
	rows, err = tx.Query(`SELECT product, license_id FROM allocations WHERE computer_id = ?`, id)
	if err != nil {
		return c, hostname, fmt.Errorf("read allocations: %w", err)
	}
	for rows.Next() {
		var p, l string
		if err := rows.Scan(&p, &l); err != nil {
			rows.Close()
			return c, hostname, err
		}
		c.Allocations[p] = l
	}
	rows.Close()
	return c, hostname, rows.Err()
}

// loadPool reads the licenses of products, with held and allocation counts.
func loadPool(tx *Tx, products []string) (engine.Pool, error) {
	pool := engine.Pool{}
	if len(products) == 0 {
		return pool, nil
	}
	ph := strings.TrimSuffix(strings.Repeat("?,", len(products)), ",")
	args := make([]any, len(products))
	for i, p := range products {
		args[i] = p
	}
	// Held is the number of seat rows, counted on the seats_license index
	// in this transaction: the licenses.held counter is a copy that a
	// damaged database may contradict, and a seat decided on it could be
	// one above the grant.
	rows, err := tx.Query(`SELECT l.id, l.product, l.seats, (SELECT COUNT(*) FROM seats s WHERE s.license_id = l.id), l.expires_at, l.upgrade_until,
			(SELECT COUNT(*) FROM allocations a WHERE a.license_id = l.id),
			(SELECT COUNT(*) FROM allocations a WHERE a.license_id = l.id
				AND EXISTS (SELECT 1 FROM seats s WHERE s.computer_id = a.computer_id AND s.product = a.product AND s.license_id = a.license_id))
		FROM licenses l WHERE l.product IN (`+ph+`) AND l.kind = 'node' ORDER BY l.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read licenses: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		l := &engine.License{}
		var exp, up sql.NullInt64
		if err := rows.Scan(&l.ID, &l.Product, &l.Seats, &l.Held, &exp, &up, &l.Allocated, &l.AllocatedHeld); err != nil {
			return nil, fmt.Errorf("read licenses: %w", err)
		}
		if exp.Valid {
			l.Expires = fromMS(exp.Int64)
		}
		if up.Valid {
			l.UpgradeUntil = fromMS(up.Int64)
		}
		pool[l.Product] = append(pool[l.Product], l)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	for _, ls := range pool {
		for _, l := range ls {
			if err := tx.lic.apply(tx, l); err != nil {
				return nil, err
			}
		}
	}
	return pool, nil
}

// productsOf lists the products a decision about c needs: those of its
// seats, allocations and the extra ones given, de-duplicated.
func productsOf(c engine.Computer, extra ...string) []string {
	set := map[string]bool{}
	for p := range c.Seats {
		set[p] = true
	}
	for p := range c.Allocations {
		set[p] = true
	}
	for _, p := range extra {
		set[p] = true
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// applyDecision writes the engine's effects: seats, license counters,
// allocations' view, discards and the audit log, all in tx. It re-checks
// every license it adds a seat to, so that a bug can never commit a count
// above what the license grants.
func applyDecision(tx *Tx, d engine.Decision, actor, nodeID string) ([]store.SeatChange, error) {
	var changes []store.SeatChange
	touchedLicenses := map[string]bool{}
	for _, e := range d.Effects {
		switch e.Kind {
		case engine.Consume:
			if _, err := tx.Exec(`INSERT INTO seats (computer_id, product, license_id, since, reason) VALUES (?, ?, ?, ?, ?)`,
				e.ComputerID, e.Product, e.License, ms(tx.Now), e.Reason); err != nil {
				return nil, fmt.Errorf("consume seat: %w", err)
			}
			if err := adjustHeld(tx, e.License, +1); err != nil {
				return nil, err
			}
			if _, err := tx.Exec(`DELETE FROM freed WHERE computer_id = ? AND product = ?`, e.ComputerID, e.Product); err != nil {
				return nil, err
			}
			touchedLicenses[e.License] = true
			changes = append(changes, store.SeatChange{Change: "consumed", ComputerID: e.ComputerID, Product: e.Product, License: e.License, Reason: e.Reason})
			if err := addEvent(tx, store.Event{Actor: actor, Kind: store.EventSeatConsumed, ComputerID: e.ComputerID, NodeID: nodeID,
				Product: e.Product, Reason: "license " + e.License + ": " + e.Reason}); err != nil {
				return nil, err
			}
		case engine.Free:
			res, err := tx.Exec(`DELETE FROM seats WHERE computer_id = ? AND product = ?`, e.ComputerID, e.Product)
			if err != nil {
				return nil, fmt.Errorf("free seat: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue // already free
			}
			if err := adjustHeld(tx, e.From, -1); err != nil {
				return nil, err
			}
			if _, err := tx.Exec(`INSERT INTO freed (computer_id, product, freed_at) VALUES (?, ?, ?)
				ON CONFLICT (computer_id, product) DO UPDATE SET freed_at = excluded.freed_at`, e.ComputerID, e.Product, ms(tx.Now)); err != nil {
				return nil, err
			}
			changes = append(changes, store.SeatChange{Change: "freed", ComputerID: e.ComputerID, Product: e.Product, License: e.From, Reason: e.Reason})
			if err := addEvent(tx, store.Event{Actor: actor, Kind: store.EventSeatFreed, ComputerID: e.ComputerID, NodeID: nodeID,
				Product: e.Product, Reason: "license " + e.From + ": " + e.Reason}); err != nil {
				return nil, err
			}
		case engine.Move:
			if _, err := tx.Exec(`UPDATE seats SET license_id = ? WHERE computer_id = ? AND product = ?`, e.License, e.ComputerID, e.Product); err != nil {
				return nil, fmt.Errorf("move seat: %w", err)
			}
			if err := adjustHeld(tx, e.From, -1); err != nil {
				return nil, err
			}
			if err := adjustHeld(tx, e.License, +1); err != nil {
				return nil, err
			}
			touchedLicenses[e.License] = true
			changes = append(changes, store.SeatChange{Change: "moved", ComputerID: e.ComputerID, Product: e.Product, License: e.License, From: e.From, Reason: e.Reason})
			if err := addEvent(tx, store.Event{Actor: actor, Kind: store.EventSeatMoved, ComputerID: e.ComputerID, NodeID: nodeID,
				Product: e.Product, Reason: e.Reason}); err != nil {
				return nil, err
			}
		case engine.Discard:
			if err := countDiscard(tx, e.ComputerID, e.Product, e.Verdict, e.Reason, nodeID, actor); err != nil {
				return nil, err
			}
		}
	}
	for id := range touchedLicenses {
		// The seat rows against the verified grant, not the counter
		// against the row's seats column.
		var seats, held, reserved int
		if err := tx.QueryRow(`SELECT l.seats, (SELECT COUNT(*) FROM seats s WHERE s.license_id = l.id), (SELECT COUNT(*) FROM allocations a WHERE a.license_id = l.id
				AND NOT EXISTS (SELECT 1 FROM seats s WHERE s.computer_id = a.computer_id AND s.product = a.product AND s.license_id = a.license_id))
			FROM licenses l WHERE l.id = ?`, id).Scan(&seats, &held, &reserved); err != nil {
			return nil, fmt.Errorf("check license %s: %w", id, err)
		}
		if g, ok, err := tx.lic.grantOf(tx, id); err != nil {
			return nil, err
		} else if ok {
			seats = g.seats
		}
		if held+reserved > seats {
			return nil, fmt.Errorf("refusing to commit: license %s would hold %d seats and reserve %d of %d", id, held, reserved, seats)
		}
	}
	return changes, nil
}

func adjustHeld(tx *Tx, license string, delta int) error {
	if license == "" {
		return nil
	}
	// The counter is a report's copy of the seat rows, kept within its
	// CHECK so that a damaged counter never fails the change that frees or
	// takes a seat: decisions count the rows, and maintenance repairs it.
	if _, err := tx.Exec(`UPDATE licenses SET held = MAX(0, MIN(seats, held + ?)) WHERE id = ?`, delta, license); err != nil {
		return fmt.Errorf("count seats of license %s: %w", license, err)
	}
	return nil
}

// countDiscard counts discarded product data (and requests refused) of
// node seats per computer, product and reason, and in the audit log in one
// event per hour, stamped with the time of its latest discard so that it
// sorts among the events around it.
func countDiscard(tx *Tx, computer int64, product string, v protocol.Verdict, why, nodeID, actor string) error {
	return countRefusal(tx, catalog.KindNode, computer, product, v, why, nodeID, actor)
}

// countLeaseRefusal counts a lease refused for want of a free concurrent
// seat, apart from the node seats' refusals.
func countLeaseRefusal(tx *Tx, computer int64, product string, v protocol.Verdict, why, nodeID, actor string) error {
	return countRefusal(tx, catalog.KindConcurrent, computer, product, v, why, nodeID, actor)
}

// countActivationRefusal counts an activation refused for want of a free
// seat of the Activation ID, in the node-locked pool, so that usage shows
// the machine waiting there.
func countActivationRefusal(tx *Tx, computer int64, product string, v protocol.Verdict, why, nodeID, actor string) error {
	return countRefusal(tx, catalog.KindNodeLocked, computer, product, v, why, nodeID, actor)
}

func countRefusal(tx *Tx, pool string, computer int64, product string, v protocol.Verdict, why, nodeID, actor string) error {
	reason := v.String()
	if _, err := tx.ExecUncached(`INSERT INTO discards (computer_id, product, pool, reason, count, first_at, last_at) VALUES (?, ?, ?, ?, 1, ?, ?)
		ON CONFLICT (computer_id, product, pool, reason) DO UPDATE SET count = count + 1, last_at = excluded.last_at`,
		computer, product, pool, reason, ms(tx.Now), ms(tx.Now)); err != nil {
		return fmt.Errorf("count discard: %w", err)
	}
	bucket := tx.Now.Unix() / 3600
	// The kind is written out, not bound: only then can SQLite use the
	// partial index on discard events (WHERE kind = 'data.discarded').
	res, err := tx.ExecUncached(`UPDATE events SET count = count + 1, at = ? WHERE kind = 'data.discarded' AND computer_id = ? AND product = ? AND reason = ? AND bucket = ?`,
		ms(tx.Now), computer, product, reason, bucket)
	if err != nil {
		return fmt.Errorf("audit discard: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	_ = why
	_, err = tx.ExecUncached(`INSERT INTO events (at, actor, kind, computer_id, node_id, product, reason, count, bucket) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)`,
		ms(tx.Now), actor, store.EventDiscarded, computer, nullStr(nodeID), product, reason, bucket)
	if err != nil {
		return fmt.Errorf("audit discard: %w", err)
	}
	return nil
}

// sweepExpired moves or frees the seats held on licenses of products that
// have expired by tx.Now. Posts call it for the products they touch, the
// scheduler and maintenance for all.
func (db *DB) sweepExpired(tx *Tx, products []string, actor string) ([]store.SeatChange, error) {
	q := `SELECT id, product FROM licenses l WHERE (held > 0 OR EXISTS (SELECT 1 FROM seats s WHERE s.license_id = l.id)) AND expires_at IS NOT NULL AND expires_at <= ?`
	args := []any{ms(tx.Now)}
	if products != nil {
		if len(products) == 0 {
			return nil, nil
		}
		q += ` AND product IN (` + strings.TrimSuffix(strings.Repeat("?,", len(products)), ",") + `)`
		for _, p := range products {
			args = append(args, p)
		}
	}
	rows, err := tx.Query(q, args...)
	if err != nil {
		return nil, fmt.Errorf("find expired licenses: %w", err)
	}
	byProduct := map[string][]string{}
	for rows.Next() {
		var id, p string
		if err := rows.Scan(&id, &p); err != nil {
			rows.Close()
			return nil, err
		}
		byProduct[p] = append(byProduct[p], id)
	}
	rows.Close()
	var changes []store.SeatChange
	for _, product := range sortedMapKeys(byProduct) {
		ch, err := db.rebalance(tx, product, byProduct[product], "", actor)
		if err != nil {
			return nil, err
		}
		changes = append(changes, ch...)
	}
	return changes, nil
}

// rebalance re-examines the seats held on the given licenses of a product
// (expired, or being removed: removing is excluded from the pool).
func (db *DB) rebalance(tx *Tx, product string, licenses []string, removing, actor string) ([]store.SeatChange, error) {
	pool, err := loadPool(tx, []string{product})
	if err != nil {
		return nil, err
	}
	if removing != "" {
		var keep []*engine.License
		for _, l := range pool[product] {
			if l.ID != removing {
				keep = append(keep, l)
			}
		}
		pool[product] = keep
	}
	var holders []engine.Holder
	for _, lic := range licenses {
		rows, err := tx.Query(`SELECT computer_id FROM seats WHERE license_id = ? ORDER BY since, computer_id`, lic)
		if err != nil {
			return nil, fmt.Errorf("read holders: %w", err)
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			ids = append(ids, id)
		}
		rows.Close()
		for _, id := range ids {
			c, _, err := loadComputer(tx, id)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			c.ID = id
			holders = append(holders, engine.Holder{Computer: c, Product: product, License: lic})
		}
	}
	d := db.engine.Rebalance(holders, pool, tx.Now)
	return applyDecision(tx, d, actor, "")
}

func sortedMapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// hostnames fills in the hostnames of seat changes.
func hostnames(tx *Tx, changes []store.SeatChange) {
	cache := map[int64]string{}
	for i := range changes {
		id := changes[i].ComputerID
		h, ok := cache[id]
		if !ok {
			_ = tx.QueryRow(`SELECT hostname FROM computers WHERE id = ?`, id).Scan(&h)
			cache[id] = h
		}
		changes[i].Hostname = h
	}
}

// pluginSet is a stored plug-in list decoded, with the products its
// plug-ins bring. It is shared through DB.pluginsOf: read it only.
type pluginSet struct {
	plugins  []protocol.Plugin
	products []string
}

// pluginsOf decodes a computer's stored plug-in list (JSON). A fleet has
// few distinct lists and each post needs its computer's: decoding it at
// each post cost a tenth of the writer's time, so decoded lists are kept,
// by their text, a few thousand at most.
func (db *DB) pluginsOf(js string) pluginSet {
	db.pluginMu.RLock()
	ps, ok := db.pluginSets[js]
	db.pluginMu.RUnlock()
	if ok {
		return ps
	}
	ps.plugins = pluginsFromJSON(js)
	ps.products = db.productsForPlugins(ps.plugins...)
	db.pluginMu.Lock()
	if len(db.pluginSets) >= 4096 {
		clear(db.pluginSets)
	}
	db.pluginSets[js] = ps
	db.pluginMu.Unlock()
	return ps
}

func pluginsFromJSON(s string) []protocol.Plugin {
	var out []protocol.Plugin
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil
	}
	return out
}
