package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/tallyhq/tally/server/engine"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
)

// leasePool reads the concurrent licenses of a product with their live
// leases counted, and the expiry of every live lease.
func leasePool(tx *Tx, product string) ([]*engine.License, []time.Time, error) {
	rows, err := tx.Query(`SELECT l.id, l.seats, l.expires_at, (SELECT COUNT(*) FROM leases s WHERE s.license_id = l.id AND s.expires_at > ?)
		FROM licenses l WHERE l.product = ? AND l.kind = ?`, ms(tx.Now), product, license.KindConcurrent)
	if err != nil {
		return nil, nil, err
	}
	var out []*engine.License
	for rows.Next() {
		l := &engine.License{Product: product}
		var exp sql.NullInt64
		if err := rows.Scan(&l.ID, &l.Seats, &exp, &l.Held); err != nil {
			rows.Close()
			return nil, nil, err
		}
		if exp.Valid {
			l.Expires = fromMS(exp.Int64)
		}
		out = append(out, l)
	}
	rows.Close()
	for _, l := range out {
		if err := tx.lic.apply(tx, l); err != nil {
			return nil, nil, err
		}
	}
	trows, err := tx.Query(`SELECT expires_at FROM leases WHERE product = ? AND expires_at > ?`, product, ms(tx.Now))
	if err != nil {
		return nil, nil, err
	}
	defer trows.Close()
	var ts []time.Time
	for trows.Next() {
		var v int64
		if err := trows.Scan(&v); err != nil {
			return nil, nil, err
		}
		ts = append(ts, fromMS(v))
	}
	return out, ts, trows.Err()
}

// Leases implements store.Activations: the live leases.
func (db *DB) Leases(ctx context.Context) ([]store.Lease, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT s.product, s.license_id, s.computer_id, c.hostname, s.granted_at, s.expires_at
		FROM leases s JOIN computers c ON c.id = s.computer_id WHERE s.expires_at > ? ORDER BY s.product, s.expires_at`, ms(db.clock.Now()))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.Lease{}
	for rows.Next() {
		var l store.Lease
		var g, e int64
		if err := rows.Scan(&l.Product, &l.License, &l.ComputerID, &l.Hostname, &g, &e); err != nil {
			return nil, err
		}
		l.GrantedAt, l.ExpiresAt = fromMS(g), fromMS(e)
		out = append(out, l)
	}
	return out, rows.Err()
}

// expireLeases removes leases whose time ran out, with an audit record:
// their seats were free from the moment they expired.
func expireLeases(tx *Tx, actor string) (int, error) {
	rows, err := tx.Query(`SELECT product, computer_id, node_id, expires_at FROM leases WHERE expires_at <= ?`, ms(tx.Now))
	if err != nil {
		return 0, err
	}
	type l struct {
		product string
		c       int64
		node    string
		exp     int64
	}
	var ls []l
	for rows.Next() {
		var x l
		if err := rows.Scan(&x.product, &x.c, &x.node, &x.exp); err != nil {
			rows.Close()
			return 0, err
		}
		ls = append(ls, x)
	}
	rows.Close()
	for _, x := range ls {
		if _, err := tx.Exec(`DELETE FROM leases WHERE product = ? AND computer_id = ? AND expires_at = ?`, x.product, x.c, x.exp); err != nil {
			return 0, err
		}
		if err := addEvent(tx, store.Event{At: fromMS(x.exp), Actor: actor, Kind: store.EventLeaseExpired, ComputerID: x.c, NodeID: x.node, Product: x.product,
			Reason: "no heartbeat within its time to live: the seat returned to the pool"}); err != nil {
			return 0, err
		}
	}
	return len(ls), nil
}
