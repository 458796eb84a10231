package sqlstore

import (
	"context"
	"fmt"

	"github.com/tallyhq/tally/server/store"
)

var _ store.AuditPages = (*DB)(nil)

// EventPage implements store.AuditPages.
func (db *DB) EventPage(ctx context.Context, f store.EventFilter, before int64) ([]store.Event, error) {
	where, args := eventWhere(f)
	if before > 0 {
		if where == "" {
			where = " WHERE id < ?"
		} else {
			where += " AND id < ?"
		}
		args = append(args, before)
	}
	limit := f.Limit
	if limit <= 0 || limit > store.MaxPageLimit {
		limit = store.DefaultPageLimit
	}
	rows, err := db.r.QueryContext(ctx, eventsSelect+where+` ORDER BY id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	out, err := scanEvents(rows)
	if err != nil {
		return nil, err
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}
