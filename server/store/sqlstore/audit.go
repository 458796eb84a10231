package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/store"
)

// eventsSelect reads the events the filter names; EventPage and Events
// add their own order and limit.
const eventsSelect = `SELECT id, at, actor, kind, COALESCE(computer_id, 0), COALESCE(node_id, ''), COALESCE(product, ''), reason, count FROM events`

// eventWhere is the WHERE clause of an event filter, with its arguments.
func eventWhere(f store.EventFilter) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	if !f.Since.IsZero() {
		add("at >= ?", ms(f.Since))
	}
	if f.ComputerID != 0 {
		add("computer_id = ?", f.ComputerID)
	}
	if f.Product != "" {
		add("product = ?", f.Product)
	}
	if f.Kind != "" {
		add("kind = ?", f.Kind)
	}
	if !f.Until.IsZero() {
		add("at < ?", ms(f.Until))
	}
	if f.Actor != "" {
		add("actor = ?", f.Actor)
	}
	if f.Before.ID != 0 {
		at := ms(f.Before.At)
		add("(at < ? OR (at = ? AND id < ?))", at, at, f.Before.ID)
	}
	if len(where) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// scanEvents reads the rows of eventsSelect.
func scanEvents(rows *sql.Rows) ([]store.Event, error) {
	defer rows.Close()
	out := []store.Event{}
	for rows.Next() {
		var e store.Event
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Kind, &e.ComputerID, &e.NodeID, &e.Product, &e.Reason, &e.Count); err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		e.At = fromMS(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}

// Events implements store.Audit, newest last.
func (db *DB) Events(ctx context.Context, f store.EventFilter) ([]store.Event, error) {
	where, args := eventWhere(f)
	limit := f.Limit
	if limit <= 0 || limit > 100000 {
		limit = 100000
	}
	// The newest `limit` events, returned oldest first, in time order: an
	// aggregated discard event is stamped with its latest discard.
	q := `SELECT * FROM (` + eventsSelect + where + ` ORDER BY at DESC, id DESC LIMIT ?) newest ORDER BY at, id`
	rows, err := db.r.QueryContext(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return scanEvents(rows)
}

func addEvent(tx *Tx, e store.Event) error {
	if e.Count == 0 {
		e.Count = 1
	}
	at := e.At
	if at.IsZero() {
		at = tx.Now
	}
	_, err := tx.ExecUncached(`INSERT INTO events (at, actor, kind, computer_id, node_id, product, reason, count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		ms(at), e.Actor, e.Kind, nullInt(e.ComputerID), nullStr(e.NodeID), nullStr(e.Product), e.Reason, e.Count)
	if err != nil {
		return fmt.Errorf("write audit event: %w", err)
	}
	return nil
}

func nullInt(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

func nullStr(v string) any {
	if v == "" {
		return nil
	}
	return v
}

// countRefusal counts refused product data, requests, activations and
// leases per computer, product, pool and reason, and in the audit log in
// one event per hour, stamped with the time of its latest refusal so that
// it sorts among the events around it.
func countRefusal(tx *Tx, pool string, computer int64, product string, v protocol.Verdict, nodeID, actor string) error {
	reason := v.String()
	if _, err := tx.ExecUncached(`INSERT INTO discards (computer_id, product, pool, reason, count, first_at, last_at) VALUES (?, ?, ?, ?, 1, ?, ?)
		ON CONFLICT (computer_id, product, pool, reason) DO UPDATE SET count = discards.count + 1, last_at = excluded.last_at`,
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
	_, err = tx.ExecUncached(`INSERT INTO events (at, actor, kind, computer_id, node_id, product, reason, count, bucket) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)`,
		ms(tx.Now), actor, store.EventDiscarded, computer, nullStr(nodeID), product, reason, bucket)
	if err != nil {
		return fmt.Errorf("audit discard: %w", err)
	}
	return nil
}

// HourlyCounts implements store.Audit.
func (db *DB) HourlyCounts(ctx context.Context, kinds []string, since time.Time) ([]store.HourCount, error) {
	out := []store.HourCount{}
	if len(kinds) == 0 {
		return out, nil
	}
	args := []any{}
	for _, k := range kinds {
		args = append(args, k)
	}
	args = append(args, ms(since))
	rows, err := db.r.QueryContext(ctx, `SELECT kind, at / 3600000, SUM(count) FROM events
		WHERE kind IN (?`+strings.Repeat(", ?", len(kinds)-1)+`) AND at >= ? GROUP BY kind, at / 3600000 ORDER BY 2, 1`, args...)
	if err != nil {
		return nil, fmt.Errorf("count events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c store.HourCount
		var hour int64
		if err := rows.Scan(&c.Kind, &hour, &c.Count); err != nil {
			return nil, fmt.Errorf("count events: %w", err)
		}
		c.Hour = time.UnixMilli(hour * 3600000).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}
