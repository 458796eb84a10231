package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"fmt"
	"strings"
	"time"

	"github.com/tallyhq/tally/server/store"
)

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
		return addEvent(tx, store.Event{Actor: store.ActorOf(ctx), Kind: store.EventSecretCreated, Reason: "secret " + s.ID + " " + name})
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
		return addEvent(tx, store.Event{Actor: store.ActorOf(ctx), Kind: store.EventSecretRevoked, Reason: "secret " + id})
	})
	return s, err
}
