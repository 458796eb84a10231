package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/dates"
	"github.com/tallyhq/tally/server/ledger"
	"github.com/tallyhq/tally/server/store"
)

// SetStatus implements store.Computers.
func (db *DB) SetStatus(ctx context.Context, id int64, status, actor string) (store.Change, error) {
	var ch store.Change
	err := db.write(ctx, func(tx *Tx) error {
		ch = store.Change{} // a job may run twice (see runBatch)
		var canonical string
		err := tx.QueryRow(`SELECT name FROM statuses WHERE lower(name) = lower(?)`, status).Scan(&canonical)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: status %q does not exist (see 'tally-server statuses list', or add it with 'statuses add')", store.ErrInvalid, status)
		}
		if err != nil {
			return err
		}
		c, hostname, err := loadComputer(tx, id)
		if err != nil {
			return err
		}
		if c.Status == canonical {
			ch.Message = fmt.Sprintf("computer %d (%s) is already %s; nothing changed", id, hostname, canonical)
			return nil
		}
		d := db.engine.StatusChange(c, canonical)
		if ch.Seats, err = ledger.ApplyDecision(db.lt(tx), d, actor, ""); err != nil {
			return err
		}
		if canonical != catalog.StatusActive {
			more, err := db.endComputerSeats(tx, id, canonical, "status set to "+canonical, actor)
			if err != nil {
				return err
			}
			ch.Seats = append(ch.Seats, more...)
		}
		if _, err := tx.Exec(`UPDATE computers SET status = ? WHERE id = ?`, canonical, id); err != nil {
			return fmt.Errorf("set status: %w", err)
		}
		hostnames(tx, ch.Seats)
		reason := fmt.Sprintf("%s → %s; %s", c.Status, canonical, store.SeatSummary(ch.Seats))
		ch.Message = fmt.Sprintf("computer %d (%s): %s", id, hostname, reason)
		return addEvent(tx, store.Event{Actor: actor, Kind: store.EventStatus, ComputerID: id, Reason: reason})
	})
	return ch, err
}

// DeleteComputer implements store.Computers.
func (db *DB) DeleteComputer(ctx context.Context, id int64, block bool, actor string) (store.Change, error) {
	var ch store.Change
	err := db.write(ctx, func(tx *Tx) error {
		ch = store.Change{} // a job may run twice (see runBatch)
		c, hostname, err := loadComputer(tx, id)
		if err != nil {
			return err
		}
		d := db.engine.Delete(c)
		if ch.Seats, err = ledger.ApplyDecision(db.lt(tx), d, actor, ""); err != nil {
			return err
		}
		more, err := db.endComputerSeats(tx, id, "", "computer deleted", actor)
		if err != nil {
			return err
		}
		ch.Seats = append(ch.Seats, more...)
		reason := store.RevokedDeleted
		if block {
			reason = store.RevokedBlocked
		}
		if _, err := tx.Exec(`UPDATE nodes SET revoked_at = COALESCE(revoked_at, ?), revoked_reason = ? WHERE computer_id = ?`, ms(tx.Now), reason, id); err != nil {
			return fmt.Errorf("revoke keys: %w", err)
		}
		if _, err := tx.Exec(`DELETE FROM allocations WHERE computer_id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM duplicates WHERE computer_id = ? OR other_id = ?`, id, id); err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE computers SET deleted_at = ? WHERE id = ?`, ms(tx.Now), id); err != nil {
			return fmt.Errorf("delete computer: %w", err)
		}
		if block {
			if _, err := tx.Exec(`INSERT OR IGNORE INTO blocked (kind, value, computer_id, at)
				SELECT kind, value, computer_id, ? FROM computer_hints WHERE computer_id = ? AND kind <> 'mac'`, ms(tx.Now), id); err != nil {
				return fmt.Errorf("block hints: %w", err)
			}
			if _, err := tx.Exec(`INSERT OR IGNORE INTO blocked (kind, value, computer_id, at)
				SELECT 'key', id, computer_id, ? FROM nodes WHERE computer_id = ?`, ms(tx.Now), id); err != nil {
				return fmt.Errorf("block keys: %w", err)
			}
		}
		hostnames(tx, ch.Seats)
		what := "deleted"
		if block {
			what = "deleted and blocked from enrolling again (until 'tally-server computers unblock')"
		}
		ch.Message = fmt.Sprintf("computer %d (%s) %s; %s", id, hostname, what, store.SeatSummary(ch.Seats))
		return addEvent(tx, store.Event{Actor: actor, Kind: store.EventDeleted, ComputerID: id, Reason: what + "; " + store.SeatSummary(ch.Seats)})
	})
	return ch, err
}

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
		return addEvent(tx, store.Event{Actor: store.ActorAdmin, Kind: store.EventStatusAdded, Reason: name})
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
	for _, pl := range ledger.DecodePlugins(plugins) {
		if p.Matches(pl.Name, pl.Version) {
			w.Plugin = pl.Name + " " + pl.Version
		}
	}
	if w.Events, err = db.Events(ctx, store.EventFilter{ComputerID: id, Product: product, Limit: 20}); err != nil {
		return w, err
	}
	switch {
	case deleted.Valid:
		w.Answer = "The computer was deleted: it holds nothing."
	case w.Holds:
		w.Answer = fmt.Sprintf("It holds a seat of %s on license %s since %s: %s.", product, h.License, dates.Instant(h.Since, db.engine.Zone()), h.Reason)
		if h.Allocated {
			w.Answer += " The seat is allocated to it."
		}
		if w.Status != catalog.StatusActive {
			w.Answer += fmt.Sprintf(" Its status %s does not free %s (freed by: %s).", w.Status, product, p.FreedByText())
		}
	case w.Status != catalog.StatusActive:
		w.Answer = fmt.Sprintf("It holds no seat of %s: its status is %s, and computers that are not Active consume nothing until set Active.", product, w.Status)
	case w.Plugin == "" && (p.RequiresPlugin || p.Qualifies(catalog.TriggerPluginPresence)):
		w.Answer = fmt.Sprintf("It holds no seat of %s: plug-in %s (%s) is not in its basic inventory.", product, p.Plugin, p.PluginVersions)
	default:
		w.Answer = fmt.Sprintf("It holds no seat of %s.", product)
		var reason string
		var count int64
		if err := db.r.QueryRowContext(ctx, `SELECT reason, count FROM discards WHERE computer_id = ? AND product = ? ORDER BY last_at DESC LIMIT 1`, id, product).Scan(&reason, &count); err == nil {
			w.Answer += fmt.Sprintf(" Its %s data was refused %d times, last as %s.", product, count, reason)
		} else {
			w.Answer += fmt.Sprintf(" It has made no qualifying post yet (%s consumes on: %s).", product, triggersText(p))
		}
	}
	return w, nil
}

func triggersText(p *catalog.Product) string {
	s := make([]string, len(p.Qualifying))
	for i, t := range p.Qualifying {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}
