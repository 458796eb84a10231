package sqlstore

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

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
