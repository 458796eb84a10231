package sqlstore

import (
	"context"
	"fmt"

	"github.com/tallyhq/tally/server/metrics"
)

// SeatCounts returns, per product, the seats held and the seats granted by
// licenses valid now (all kinds; a concurrent license's held seats are its
// live leases).
func (db *DB) SeatCounts(ctx context.Context) ([]metrics.SeatCount, error) {
	now := ms(db.clock.Now())
	rows, err := db.r.QueryContext(ctx, `SELECT product,
			SUM(CASE WHEN expires_at IS NULL OR expires_at > ? THEN seats ELSE 0 END),
			SUM(CASE WHEN kind = 'concurrent' THEN (SELECT COUNT(*) FROM leases s WHERE s.license_id = l.id AND s.expires_at > ?) ELSE held END)
		FROM licenses l GROUP BY product ORDER BY product`, now, now)
	if err != nil {
		return nil, fmt.Errorf("count seats: %w", err)
	}
	defer rows.Close()
	var out []metrics.SeatCount
	for rows.Next() {
		var s metrics.SeatCount
		if err := rows.Scan(&s.Product, &s.Granted, &s.Held); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Backlog returns the sum and maximum of the spool backlogs live agents
// last reported.
func (db *DB) Backlog(ctx context.Context) (sum, max int64, err error) {
	err = db.r.QueryRowContext(ctx, `SELECT COALESCE(SUM(backlog), 0), COALESCE(MAX(backlog), 0) FROM computers WHERE deleted_at IS NULL`).Scan(&sum, &max)
	return sum, max, err
}
