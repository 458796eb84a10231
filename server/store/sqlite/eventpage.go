package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/tallyhq/tally/server/store"
)

var _ store.AuditPages = (*DB)(nil)

// EventPage implements store.AuditPages.
func (db *DB) EventPage(ctx context.Context, f store.EventFilter, before int64) ([]store.Event, error) {
	var where []string
	var args []any
	if before > 0 {
		where = append(where, "id < ?")
		args = append(args, before)
	}
	if !f.Since.IsZero() {
		where = append(where, "at >= ?")
		args = append(args, ms(f.Since))
	}
	if f.ComputerID != 0 {
		where = append(where, "computer_id = ?")
		args = append(args, f.ComputerID)
	}
	if f.Product != "" {
		where = append(where, "product = ?")
		args = append(args, f.Product)
	}
	if f.Kind != "" {
		where = append(where, "kind = ?")
		args = append(args, f.Kind)
	}
	limit := f.Limit
	if limit <= 0 || limit > store.MaxPageLimit {
		limit = store.DefaultPageLimit
	}
	q := `SELECT id, at, actor, kind, COALESCE(computer_id, 0), COALESCE(node_id, ''), COALESCE(product, ''), reason, count FROM events`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
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
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}
