package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/tallyhq/tally/server/ledger"
	"github.com/tallyhq/tally/server/store"
)

// SetStatus implements store.Computers.
func (db *DB) SetStatus(ctx context.Context, id int64, status, actor string) (store.Change, error) {
	var ch store.Change
	err := db.write(ctx, func(tx *Tx) error {
		var canonical string
		err := tx.QueryRow(`SELECT name FROM statuses WHERE lower(name) = lower(?)`, status).Scan(&canonical)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: status %q does not exist (see 'tally-server statuses list', or add it with 'statuses add')", store.ErrInvalid, status)
		}
		if err != nil {
			return err
		}
		ch, err = db.ledger.SetStatus(db.lt(tx), id, canonical, actor)
		return err
	})
	return ch, err
}

// DeleteComputer implements store.Computers.
func (db *DB) DeleteComputer(ctx context.Context, id int64, block bool, actor string) (store.Change, error) {
	var ch store.Change
	err := db.write(ctx, func(tx *Tx) error {
		var err error
		ch, err = db.ledger.DeleteComputer(db.lt(tx), id, block, actor)
		return err
	})
	return ch, err
}

// RemoveComputer implements ledger.AdminTx.
func (t *ledgerTx) RemoveComputer(id int64, reason string, block bool) error {
	if _, err := t.Exec(`UPDATE nodes SET revoked_at = COALESCE(revoked_at, ?), revoked_reason = ? WHERE computer_id = ?`, ms(t.Tx.Now), reason, id); err != nil {
		return fmt.Errorf("revoke keys: %w", err)
	}
	if _, err := t.Exec(`DELETE FROM allocations WHERE computer_id = ?`, id); err != nil {
		return err
	}
	if _, err := t.Exec(`DELETE FROM duplicates WHERE computer_id = ? OR other_id = ?`, id, id); err != nil {
		return err
	}
	if _, err := t.Exec(`UPDATE computers SET deleted_at = ? WHERE id = ?`, ms(t.Tx.Now), id); err != nil {
		return fmt.Errorf("delete computer: %w", err)
	}
	if !block {
		return nil
	}
	if _, err := t.Exec(`INSERT INTO blocked (kind, value, computer_id, at)
		SELECT kind, value, computer_id, CAST(? AS BIGINT) FROM computer_hints WHERE computer_id = ? AND kind <> 'mac' ON CONFLICT DO NOTHING`, ms(t.Tx.Now), id); err != nil {
		return fmt.Errorf("block hints: %w", err)
	}
	if _, err := t.Exec(`INSERT INTO blocked (kind, value, computer_id, at)
		SELECT 'key', id, computer_id, CAST(? AS BIGINT) FROM nodes WHERE computer_id = ? ON CONFLICT DO NOTHING`, ms(t.Tx.Now), id); err != nil {
		return fmt.Errorf("block keys: %w", err)
	}
	return nil
}

// Hostnames implements ledger.AdminTx.
func (t *ledgerTx) Hostnames(changes []store.SeatChange) { hostnames(t.Tx, changes) }

// Statuses implements store.Computers.
func (db *DB) Statuses(ctx context.Context) ([]store.Status, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT s.name, s.description, s.builtin,
		(SELECT COUNT(*) FROM computers c WHERE c.status = s.name AND c.deleted_at IS NULL)
		FROM statuses s ORDER BY s.builtin DESC, s.name`)
	if err != nil {
		return nil, fmt.Errorf("list statuses: %w", err)
	}
	defer rows.Close()
	var out []store.Status
	for rows.Next() {
		var s store.Status
		if err := rows.Scan(&s.Name, &s.Description, &s.Builtin, &s.Computers); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// AddStatus implements store.Computers. Added statuses are non-Active:
// products whose rule is "any-non-active" are freed by them.
func (db *DB) AddStatus(ctx context.Context, name, description string) (store.Status, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 64 || strings.ContainsAny(name, ",\n\t") {
		return store.Status{}, fmt.Errorf("%w: a status name has 1 to 64 characters and no commas, tabs or new lines", store.ErrInvalid)
	}
	if len(description) > 500 {
		return store.Status{}, fmt.Errorf("%w: description too long", store.ErrInvalid)
	}
	err := db.write(ctx, func(tx *Tx) error {
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM statuses WHERE lower(name) = lower(?)`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: status %q already exists", store.ErrConflict, name)
		}
		if _, err := tx.Exec(`INSERT INTO statuses (name, builtin, description) VALUES (?, 0, ?)`, name, description); err != nil {
			return fmt.Errorf("add status: %w", err)
		}
		return addEvent(tx, store.Event{Actor: store.ActorOf(ctx), Kind: store.EventStatusAdded, Reason: name})
	})
	return store.Status{Name: name, Description: description}, err
}

// Why implements store.Computers.
func (db *DB) Why(ctx context.Context, id int64, product string) (store.Why, error) {
	w := store.Why{ComputerID: id, Product: product}
	p, ok := db.engine.Catalog().Product(product)
	if !ok {
		return w, fmt.Errorf("%w: product %q (see 'tally-server products list')", store.ErrNotFound, product)
	}
	var plugins string
	var deleted sql.NullInt64
	err := db.r.QueryRowContext(ctx, `SELECT hostname, status, plugins, deleted_at FROM computers WHERE id = ?`, id).
		Scan(&w.Hostname, &w.Status, &plugins, &deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return w, fmt.Errorf("computer %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return w, err
	}
	var h store.Holder
	var since int64
	err = db.r.QueryRowContext(ctx, `SELECT s.license_id, s.since, s.reason, EXISTS (SELECT 1 FROM allocations a WHERE a.computer_id = s.computer_id AND a.license_id = s.license_id)
		FROM seats s WHERE s.computer_id = ? AND s.product = ?`, id, product).Scan(&h.License, &since, &h.Reason, &h.Allocated)
	switch {
	case err == nil:
		h.ComputerID, h.Hostname, h.Since = id, w.Hostname, fromMS(since)
		w.Holds, w.Seat = true, &h
	case !errors.Is(err, sql.ErrNoRows):
		return w, err
	}
	if w.Events, err = db.Events(ctx, store.EventFilter{ComputerID: id, Product: product, Limit: 20}); err != nil {
		return w, err
	}
	f := ledger.WhyFacts{Deleted: deleted.Valid, Plugins: plugins}
	var r ledger.Refusal
	if err := db.r.QueryRowContext(ctx, `SELECT reason, count FROM discards WHERE computer_id = ? AND product = ? ORDER BY last_at DESC LIMIT 1`, id, product).Scan(&r.Reason, &r.Count); err == nil {
		f.Refusal = &r
	}
	db.ledger.Explain(&w, p, f)
	return w, nil
}
