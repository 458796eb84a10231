package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/store"
)

const computerColumns = `c.id, c.hostname, c.os, c.platform, c.platform_version, c.arch, c.status, c.first_seen, c.last_seen,
	c.flags, c.deleted_at IS NOT NULL,
	COALESCE((SELECT n.id FROM nodes n WHERE n.computer_id = c.id AND n.revoked_at IS NULL ORDER BY n.enrolled_at DESC LIMIT 1), ''),
	COALESCE((SELECT GROUP_CONCAT(d.other_id) FROM duplicates d WHERE d.computer_id = c.id), '')`

func scanComputer(sc interface{ Scan(...any) error }, extra ...any) (store.Computer, error) {
	var c store.Computer
	var first, last int64
	var flags, dups string
	dest := append([]any{&c.ID, &c.Hostname, &c.OS, &c.Platform, &c.PlatformVersion, &c.Arch, &c.Status, &first, &last,
		&flags, &c.Deleted, &c.NodeID, &dups}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return c, err
	}
	c.FirstSeen, c.LastSeen = fromMS(first), fromMS(last)
	c.Flags = splitFlags(flags)
	for _, d := range splitFlags(dups) {
		var id int64
		if _, err := fmt.Sscan(d, &id); err == nil {
			c.DuplicateOf = append(c.DuplicateOf, id)
		}
	}
	return c, nil
}

// ListComputers implements store.Computers: live computers by hostname.
func (db *DB) ListComputers(ctx context.Context) ([]store.Computer, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+computerColumns+` FROM computers c WHERE c.deleted_at IS NULL ORDER BY c.hostname, c.id`)
	if err != nil {
		return nil, fmt.Errorf("list computers: %w", err)
	}
	defer rows.Close()
	out := []store.Computer{}
	for rows.Next() {
		c, err := scanComputer(rows)
		if err != nil {
			return nil, fmt.Errorf("list computers: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Computer implements store.Computers.
func (db *DB) Computer(ctx context.Context, id int64) (store.Computer, error) {
	var blob []byte
	c, err := scanComputer(db.r.QueryRowContext(ctx, `SELECT `+computerColumns+`, (SELECT b.blob FROM basic_inventory b WHERE b.computer_id = c.id) FROM computers c WHERE c.id = ?`, id), &blob)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Computer{}, fmt.Errorf("computer %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Computer{}, fmt.Errorf("read computer %d: %w", id, err)
	}
	if len(blob) > 0 {
		var b protocol.BasicInventory
		if err := protocol.Unmarshal(blob, &b); err != nil {
			return c, fmt.Errorf("computer %d: stored inventory: %w", id, err)
		}
		c.Basic = &b
	}
	return c, nil
}

var secretEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewSecretValue returns a fresh random enrollment secret (160 bits).
func NewSecretValue() (string, error) {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	return secretEncoding.EncodeToString(b), nil
}

// CreateSecret implements store.Secrets. An empty value draws a random one.
func (db *DB) CreateSecret(ctx context.Context, name, value string, expires *time.Time) (store.Secret, error) {
	if value == "" {
		v, err := NewSecretValue()
		if err != nil {
			return store.Secret{}, err
		}
		value = v
	}
	if len(value) < 16 || len(value) > 128 {
		return store.Secret{}, fmt.Errorf("%w: a secret must have 16 to 128 characters", store.ErrInvalid)
	}
	if len(name) > 200 {
		return store.Secret{}, fmt.Errorf("%w: the name is longer than 200 characters", store.ErrInvalid)
	}
	idb := make([]byte, 5)
	if _, err := rand.Read(idb); err != nil {
		return store.Secret{}, err
	}
	s := store.Secret{ID: "s-" + secretEncoding.EncodeToString(idb), Name: name, Value: value, ExpiresAt: expires}
	err := db.write(ctx, func(tx *Tx) error {
		s.CreatedAt = tx.Now.Truncate(time.Millisecond).UTC()
		var exp any
		if expires != nil {
			exp = ms(*expires)
		}
		if _, err := tx.Exec(`INSERT INTO secrets (id, name, value, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			s.ID, name, value, ms(tx.Now), exp); err != nil {
			if strings.Contains(err.Error(), "UNIQUE") {
				return fmt.Errorf("%w: that secret already exists", store.ErrConflict)
			}
			return fmt.Errorf("create secret: %w", err)
		}
		return addEvent(tx, store.Event{Actor: store.ActorAdmin, Kind: store.EventSecretCreated, Reason: "secret " + s.ID + " " + name})
	})
	if err != nil {
		return store.Secret{}, err
	}
	return s, nil
}

// ListSecrets implements store.Secrets.
func (db *DB) ListSecrets(ctx context.Context) ([]store.Secret, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, name, value, created_at, expires_at, revoked_at, uses, last_used FROM secrets ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	defer rows.Close()
	out := []store.Secret{}
	for rows.Next() {
		s, err := scanSecret(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func scanSecret(sc interface{ Scan(...any) error }) (store.Secret, error) {
	var s store.Secret
	var created int64
	var exp, rev, last sql.NullInt64
	if err := sc.Scan(&s.ID, &s.Name, &s.Value, &created, &exp, &rev, &s.Uses, &last); err != nil {
		return s, fmt.Errorf("read secret: %w", err)
	}
	s.CreatedAt = fromMS(created)
	s.ExpiresAt, s.RevokedAt, s.LastUsed = fromNullMS(exp), fromNullMS(rev), fromNullMS(last)
	return s, nil
}

// RevokeSecret implements store.Secrets. Revoking twice is not an error.
func (db *DB) RevokeSecret(ctx context.Context, id string) (store.Secret, error) {
	var s store.Secret
	err := db.write(ctx, func(tx *Tx) error {
		res, err := tx.Exec(`UPDATE secrets SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, ms(tx.Now), id)
		if err != nil {
			return fmt.Errorf("revoke secret: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("secret %q: %w", id, store.ErrNotFound)
		}
		if s, err = scanSecret(tx.QueryRow(`SELECT id, name, value, created_at, expires_at, revoked_at, uses, last_used FROM secrets WHERE id = ?`, id)); err != nil {
			return err
		}
		return addEvent(tx, store.Event{Actor: store.ActorAdmin, Kind: store.EventSecretRevoked, Reason: "secret " + id})
	})
	return s, err
}

// Events implements store.Audit, newest last.
func (db *DB) Events(ctx context.Context, f store.EventFilter) ([]store.Event, error) {
	var where []string
	var args []any
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
	q := `SELECT id, at, actor, kind, COALESCE(computer_id, 0), COALESCE(node_id, ''), COALESCE(product, ''), reason, count FROM events`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 || limit > 100000 {
		limit = 100000
	}
	// The newest `limit` events, returned oldest first, in time order: an
	// aggregated discard event is stamped with its latest discard.
	q = `SELECT * FROM (` + q + ` ORDER BY at DESC, id DESC LIMIT ?) ORDER BY at, id`
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
	return out, rows.Err()
}
