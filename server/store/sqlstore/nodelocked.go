package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"time"

	"github.com/tallyhq/tally/server/dates"
	"github.com/tallyhq/tally/server/engine"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
)

// newActivationID draws an unguessable Activation ID: 160 random bits.
func newActivationID() (string, error) {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	s := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)
	return "ACT-" + s[0:8] + "-" + s[8:16] + "-" + s[16:24] + "-" + s[24:32], nil
}

// CreateActivation implements store.Activations: the ID draws its quantity
// from a valid node-locked license of the product with that much room.
func (db *DB) CreateActivation(ctx context.Context, product string, quantity int, expires *time.Time, actor string) (store.Activation, error) {
	if _, ok := db.engine.Catalog().Product(product); !ok {
		return store.Activation{}, fmt.Errorf("%w: product %q (see 'tally-server products list')", store.ErrNotFound, product)
	}
	if quantity <= 0 || quantity > 1_000_000 {
		return store.Activation{}, fmt.Errorf("%w: quantity must be between 1 and 1,000,000", store.ErrInvalid)
	}
	id, err := newActivationID()
	if err != nil {
		return store.Activation{}, err
	}
	err = db.write(ctx, func(tx *Tx) error {
		if expires != nil && !expires.After(tx.Now) {
			return fmt.Errorf("%w: the expiry is in the past", store.ErrInvalid)
		}
		if _, _, err := tx.lic.grantOf(tx, ""); err != nil { // the grants, for seatsOf below
			return err
		}
		rows, err := tx.Query(`SELECT l.id, l.seats, l.expires_at,
				COALESCE((SELECT SUM(a.quantity) FROM activation_ids a WHERE a.license_id = l.id AND a.active = 1), 0)
			FROM licenses l WHERE l.product = ? AND l.kind = ? AND (l.expires_at IS NULL OR l.expires_at > ?)
			ORDER BY l.expires_at IS NULL, l.expires_at, l.id`, product, license.KindNodeLocked, ms(tx.Now))
		if err != nil {
			return err
		}
		var lic string
		var licExp sql.NullInt64
		free := 0
		for rows.Next() {
			var lid string
			var seats, used int
			var exp sql.NullInt64
			if err := rows.Scan(&lid, &seats, &exp, &used); err != nil {
				rows.Close()
				return err
			}
			seats = tx.lic.seatsOf(lid, seats)
			if lic == "" && seats-used >= quantity {
				lic, licExp = lid, exp
			}
			free += seats - used
		}
		rows.Close()
		if lic == "" {
			return fmt.Errorf("%w: no valid node-locked license of %s has %d seats left for a new Activation ID (%d free in all): import one with 'tally-server license issue --kind node-locked' and 'license import'",
				store.ErrConflict, product, quantity, free)
		}
		var exp any
		if expires != nil {
			exp = ms(*expires)
		}
		if licExp.Valid && (expires == nil || licExp.Int64 < ms(*expires)) {
			exp = licExp.Int64
		}
		if _, err := tx.Exec(`INSERT INTO activation_ids (id, product, license_id, quantity, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			id, product, lic, quantity, exp, ms(tx.Now)); err != nil {
			return fmt.Errorf("create Activation ID: %w", err)
		}
		return addEvent(tx, store.Event{Actor: actor, Kind: store.EventActCreated, Product: product,
			Reason: fmt.Sprintf("%s: %d seats from license %s", id, quantity, lic)})
	})
	if err != nil {
		return store.Activation{}, err
	}
	return db.Activation(ctx, id)
}

func (db *DB) scanActivations(ctx context.Context, where string, args ...any) ([]store.Activation, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT a.id, a.product, a.license_id, a.quantity, a.active, a.expires_at, a.created_at,
			(SELECT COUNT(*) FROM activations b WHERE b.activation_id = a.id AND b.ended_at IS NULL),
			(SELECT l.expires_at FROM licenses l WHERE l.id = a.license_id)
		FROM activation_ids a `+where+` ORDER BY a.created_at, a.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list Activation IDs: %w", err)
	}
	now := db.clock.Now()
	out := []store.Activation{}
	for rows.Next() {
		var a store.Activation
		var active bool
		var exp, licExp sql.NullInt64
		var created int64
		if err := rows.Scan(&a.ID, &a.Product, &a.License, &a.Quantity, &active, &exp, &created, &a.InUse, &licExp); err != nil {
			rows.Close()
			return nil, err
		}
		a.ExpiresAt, a.CreatedAt = fromNullMS(exp), fromMS(created)
		switch {
		case !active:
			a.Status = "inactive"
		case a.ExpiresAt != nil && !now.Before(*a.ExpiresAt), licExp.Valid && ms(now) >= licExp.Int64:
			a.Status = "expired"
		default:
			a.Status = "active"
		}
		a.Holders = []store.ActivationHolder{}
		out = append(out, a)
	}
	rows.Close()
	for i := range out {
		hs, err := db.r.QueryContext(ctx, `SELECT b.computer_id, c.hostname, b.node_id, b.activated_at FROM activations b JOIN computers c ON c.id = b.computer_id
			WHERE b.activation_id = ? AND b.ended_at IS NULL ORDER BY b.activated_at`, out[i].ID)
		if err != nil {
			return nil, err
		}
		for hs.Next() {
			var h store.ActivationHolder
			var at int64
			if err := hs.Scan(&h.ComputerID, &h.Hostname, &h.NodeID, &at); err != nil {
				hs.Close()
				return nil, err
			}
			h.ActivatedAt = fromMS(at)
			out[i].Holders = append(out[i].Holders, h)
		}
		hs.Close()
	}
	return out, rows.Err()
}

// ActivationList implements store.Activations.
func (db *DB) ActivationList(ctx context.Context) ([]store.Activation, error) {
	if err := db.settleExpiredActivations(ctx); err != nil {
		return nil, err
	}
	return db.scanActivations(ctx, "")
}

// Activation implements store.Activations.
func (db *DB) Activation(ctx context.Context, id string) (store.Activation, error) {
	if err := db.settleExpiredActivations(ctx); err != nil {
		return store.Activation{}, err
	}
	as, err := db.scanActivations(ctx, "WHERE a.id = ?", id)
	if err != nil {
		return store.Activation{}, err
	}
	if len(as) == 0 {
		return store.Activation{}, fmt.Errorf("Activation ID %s: %w", id, store.ErrNotFound)
	}
	return as[0], nil
}

// loadActivationID reads an ID's facts inside tx; nil when unknown.
func loadActivationID(tx *Tx, id string) (*engine.ActivationID, error) {
	a := &engine.ActivationID{ID: id}
	var lic string
	var exp sql.NullInt64
	err := tx.QueryRow(`SELECT product, license_id, quantity, expires_at, active,
		(SELECT COUNT(*) FROM activations b WHERE b.activation_id = a.id AND b.ended_at IS NULL)
		FROM activation_ids a WHERE a.id = ?`, id).Scan(&a.Product, &lic, &a.Quantity, &exp, &a.Active, &a.Live)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read Activation ID: %w", err)
	}
	if exp.Valid {
		a.Expires = fromMS(exp.Int64)
	}
	l := &engine.License{ID: lic}
	var lexp sql.NullInt64
	// Held counts the live bindings, not the counter; seats are the
	// verified grant (see loadPool).
	err = tx.QueryRow(`SELECT seats, (SELECT COUNT(*) FROM activations b JOIN activation_ids i ON i.id = b.activation_id
		WHERE i.license_id = l.id AND b.ended_at IS NULL), expires_at FROM licenses l WHERE id = ?`, lic).Scan(&l.Seats, &l.Held, &lexp)
	if err == nil {
		if lexp.Valid {
			l.Expires = fromMS(lexp.Int64)
		}
		if err := tx.lic.apply(tx, l); err != nil {
			return nil, err
		}
		a.License = l
	} else if !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	return a, nil
}

// endActivation ends a live binding and gives its seat back, once.
func endActivation(tx *Tx, bindingID int64, license, reason string) error {
	res, err := tx.Exec(`UPDATE activations SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL`, ms(tx.Now), reason, bindingID)
	if err != nil {
		return fmt.Errorf("end activation: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return adjustHeld(tx, license, -1)
	}
	return nil
}

// expireActivations ends the live bindings of the Activation IDs that have
// expired (by their own date, their license's, or their license removed)
// and gives their seats back, with an audit record each: an expired ID
// grants nothing, so a seat left bound would be consumed with no holder.
// The machines' records are revoked at their next contact (see
// ActivationStatus). Every transaction that notices the expiry calls it:
// the expiry sweep, maintenance, the node-locked requests and the reads.
func expireActivations(tx *Tx, actor string) ([]store.SeatChange, error) {
	now := ms(tx.Now)
	rows, err := tx.Query(`SELECT b.id, b.computer_id, a.id, a.product, a.license_id, a.expires_at, l.expires_at, l.id IS NULL
		FROM activations b JOIN activation_ids a ON a.id = b.activation_id LEFT JOIN licenses l ON l.id = a.license_id
		WHERE b.ended_at IS NULL AND (a.expires_at <= ? OR l.expires_at <= ? OR l.id IS NULL)
		ORDER BY b.id`, now, now)
	if err != nil {
		return nil, fmt.Errorf("find expired activations: %w", err)
	}
	type binding struct {
		id, computer        int64
		actID, product, lic string
		why                 string
	}
	var bs []binding
	for rows.Next() {
		var b binding
		var exp, licExp sql.NullInt64
		var removed bool
		if err := rows.Scan(&b.id, &b.computer, &b.actID, &b.product, &b.lic, &exp, &licExp, &removed); err != nil {
			rows.Close()
			return nil, err
		}
		switch {
		case exp.Valid && exp.Int64 <= now:
			b.why = "the Activation ID expired on " + dates.Text(fromMS(exp.Int64), tx.zone)
		case removed:
			b.why = "the Activation ID's license " + b.lic + " was removed"
		default:
			b.why = "the Activation ID's license " + b.lic + " expired on " + dates.Text(fromMS(licExp.Int64), tx.zone)
		}
		b.why += ": the seat returned to the pool; the record on the machine is revoked at its next contact"
		bs = append(bs, b)
	}
	rows.Close()
	var out []store.SeatChange
	for _, b := range bs {
		if err := endActivation(tx, b.id, b.lic, b.why); err != nil {
			return nil, err
		}
		out = append(out, store.SeatChange{Change: "freed", ComputerID: b.computer, Product: b.product, License: b.lic, Reason: b.actID + ": " + b.why})
		if err := addEvent(tx, store.Event{Actor: actor, Kind: store.EventActRevoked, ComputerID: b.computer, Product: b.product,
			Reason: b.actID + ": " + b.why}); err != nil {
			return nil, err
		}
	}
	hostnames(tx, out)
	return out, nil
}

// settleExpiredActivations gives back, before a read, the seats of
// Activation IDs that expired since the last sweep, so that no report shows
// a seat an expired ID no longer grants. The check is one read; the write
// happens only when there is something to return.
func (db *DB) settleExpiredActivations(ctx context.Context) error {
	now := ms(db.clock.Now())
	var due bool
	if err := db.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM activations b JOIN activation_ids a ON a.id = b.activation_id
		LEFT JOIN licenses l ON l.id = a.license_id
		WHERE b.ended_at IS NULL AND (a.expires_at <= ? OR l.expires_at <= ? OR l.id IS NULL))`, now, now).Scan(&due); err != nil {
		return fmt.Errorf("look for expired activations: %w", err)
	}
	if !due {
		return nil
	}
	return db.write(ctx, func(tx *Tx) error {
		_, err := expireActivations(tx, store.ActorSystem)
		return err
	})
}

// ReturnActivation implements store.Activations.
func (db *DB) ReturnActivation(ctx context.Context, id string, computer int64, actor string) (store.Change, error) {
	var ch store.Change
	err := db.write(ctx, func(tx *Tx) error {
		ch = store.Change{} // a job may run twice (see runBatch)
		var bid int64
		var product, lic string
		err := tx.QueryRow(`SELECT b.id, a.product, a.license_id FROM activations b JOIN activation_ids a ON a.id = b.activation_id
			WHERE b.activation_id = ? AND b.computer_id = ? AND b.ended_at IS NULL`, id, computer).Scan(&bid, &product, &lic)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: computer %d holds no seat of %s", store.ErrNotFound, computer, id)
		}
		if err != nil {
			return err
		}
		reason := "returned by an administrator (rehost): the record on that machine is revoked at its next contact"
		if err := endActivation(tx, bid, lic, reason); err != nil {
			return err
		}
		ch.Seats = []store.SeatChange{{Change: "freed", ComputerID: computer, Product: product, License: lic, Reason: id + ": " + reason}}
		hostnames(tx, ch.Seats)
		ch.Message = fmt.Sprintf("returned the seat of %s held by computer %d", id, computer)
		return addEvent(tx, store.Event{Actor: actor, Kind: store.EventActReturned, ComputerID: computer, Product: product, Reason: id + ": " + reason})
	})
	return ch, err
}

// DeactivateActivation implements store.Activations.
func (db *DB) DeactivateActivation(ctx context.Context, id, actor string) (store.Change, error) {
	var ch store.Change
	err := db.write(ctx, func(tx *Tx) error {
		ch = store.Change{} // a job may run twice (see runBatch)
		var product, lic string
		var active bool
		err := tx.QueryRow(`SELECT product, license_id, active FROM activation_ids WHERE id = ?`, id).Scan(&product, &lic, &active)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("Activation ID %s: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if !active {
			ch.Message = id + " is already inactive; nothing changed"
			return nil
		}
		if _, err := tx.Exec(`UPDATE activation_ids SET active = 0, deactivated_at = ? WHERE id = ?`, ms(tx.Now), id); err != nil {
			return err
		}
		rows, err := tx.Query(`SELECT id, computer_id FROM activations WHERE activation_id = ? AND ended_at IS NULL`, id)
		if err != nil {
			return err
		}
		type binding struct{ id, computer int64 }
		var bs []binding
		for rows.Next() {
			var b binding
			if err := rows.Scan(&b.id, &b.computer); err != nil {
				rows.Close()
				return err
			}
			bs = append(bs, b)
		}
		rows.Close()
		reason := "the Activation ID was deactivated by an administrator"
		for _, b := range bs {
			if err := endActivation(tx, b.id, lic, reason); err != nil {
				return err
			}
			ch.Seats = append(ch.Seats, store.SeatChange{Change: "freed", ComputerID: b.computer, Product: product, License: lic, Reason: id + ": " + reason})
			if err := addEvent(tx, store.Event{Actor: actor, Kind: store.EventActRevoked, ComputerID: b.computer, Product: product, Reason: id + ": " + reason}); err != nil {
				return err
			}
		}
		hostnames(tx, ch.Seats)
		ch.Message = fmt.Sprintf("%s is inactive: no new activations; %d seats returned (their records are revoked at each machine's next contact). Create a new ID with 'tally-server activation create'.", id, len(bs))
		return addEvent(tx, store.Event{Actor: actor, Kind: store.EventActDeactivate, Product: product, Reason: ch.Message})
	})
	return ch, err
}

// checkNodeLocked verifies the node-locked and concurrent counts: a
// node-locked license's counter equals its live bindings, no Activation ID
// has more live bindings than its quantity, the quantities of a license's
// active IDs fit in its seats, and no concurrent license has more live
// leases than seats.
func checkNodeLocked(tx *Tx) ([]engine.Violation, error) {
	var out []engine.Violation
	if _, _, err := tx.lic.grantOf(tx, ""); err != nil { // the grants, for seatsOf below
		return nil, err
	}
	rows, err := tx.Query(`SELECT l.id, l.seats, l.held,
			(SELECT COUNT(*) FROM activations b JOIN activation_ids a ON a.id = b.activation_id WHERE a.license_id = l.id AND b.ended_at IS NULL),
			COALESCE((SELECT SUM(a.quantity) FROM activation_ids a WHERE a.license_id = l.id AND a.active = 1), 0)
		FROM licenses l WHERE l.kind = ?`, license.KindNodeLocked)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var seats, held, live, quantities int
		if err := rows.Scan(&id, &seats, &held, &live, &quantities); err != nil {
			rows.Close()
			return nil, err
		}
		seats = tx.lic.seatsOf(id, seats)
		if held != live {
			out = append(out, engine.Violation{Kind: "counter", License: id, Held: live, Detail: fmt.Sprintf("node-locked license %s counts %d seats, %d machines are bound", id, held, live)})
		}
		if live > seats || quantities > seats {
			out = append(out, engine.Violation{Kind: "oversubscribed", Detail: fmt.Sprintf("node-locked license %s grants %d seats; %d bound, %d promised to active IDs", id, seats, live, quantities)})
		}
	}
	rows.Close()
	rows, err = tx.Query(`SELECT a.id, a.quantity, (SELECT COUNT(*) FROM activations b WHERE b.activation_id = a.id AND b.ended_at IS NULL) FROM activation_ids a`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var q, live int
		if err := rows.Scan(&id, &q, &live); err != nil {
			rows.Close()
			return nil, err
		}
		if live > q {
			out = append(out, engine.Violation{Kind: "oversubscribed", Detail: fmt.Sprintf("Activation ID %s has %d machines bound for %d seats", id, live, q)})
		}
	}
	rows.Close()
	rows, err = tx.Query(`SELECT l.id, l.seats, (SELECT COUNT(*) FROM leases s WHERE s.license_id = l.id AND s.expires_at > ?) FROM licenses l WHERE l.kind = ?`,
		ms(tx.Now), license.KindConcurrent)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var seats, live int
		if err := rows.Scan(&id, &seats, &live); err != nil {
			return nil, err
		}
		seats = tx.lic.seatsOf(id, seats)
		if live > seats {
			out = append(out, engine.Violation{Kind: "oversubscribed", Detail: fmt.Sprintf("concurrent license %s grants %d seats; %d leases are live", id, seats, live)})
		}
	}
	return out, rows.Err()
}
