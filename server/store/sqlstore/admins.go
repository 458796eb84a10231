package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tallyhq/tally/server/store"
)

var _ store.Admins = (*DB)(nil)

// How often the last use of a token is written: often enough for the
// admins list, rarely enough that a script's requests cost no commit each.
const tokenTouchEvery = time.Minute

// EnsureFirstAdmin implements store.Admins.
func (db *DB) EnsureFirstAdmin(ctx context.Context, tokenHash string) (bool, error) {
	made := false
	err := db.write(ctx, func(tx *Tx) error {
		made = false
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM admins`).Scan(&n); err != nil {
			return fmt.Errorf("count admins: %w", err)
		}
		if n > 0 {
			// A new token file (the old one deleted to rotate it) replaces
			// the first admin's token, unless an admin revoked that token.
			if _, err := tx.Exec(`UPDATE admin_tokens SET hash = ?, last_used = NULL WHERE id = 't-first' AND revoked_at IS NULL AND hash <> ?`, tokenHash, tokenHash); err != nil {
				return fmt.Errorf("rotate the first admin's token: %w", err)
			}
			return nil
		}
		if _, err := tx.Exec(`INSERT INTO admins (name, role, created_at) VALUES (?, 'admin', ?)`, store.FirstAdmin, ms(tx.Now)); err != nil {
			return fmt.Errorf("add the first admin: %w", err)
		}
		if _, err := tx.Exec(`INSERT INTO admin_tokens (id, admin, hash, label, created_at) VALUES ('t-first', ?, ?, 'data folder admin-token', ?)`,
			store.FirstAdmin, tokenHash, ms(tx.Now)); err != nil {
			return fmt.Errorf("add the first admin's token: %w", err)
		}
		// No audit record: the first admin is the data folder's token,
		// there from the first start, not an admin's act.
		made = true
		return nil
	})
	return made, err
}

// AddAdmin implements store.Admins.
func (db *DB) AddAdmin(ctx context.Context, name, role, passwordHash, actor string) (store.AdminAccount, error) {
	var a store.AdminAccount
	err := db.write(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(`INSERT INTO admins (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)`, name, role, passwordHash, ms(tx.Now)); err != nil {
			if strings.Contains(err.Error(), "UNIQUE") || strings.Contains(err.Error(), "PRIMARY KEY") {
				return fmt.Errorf("%w: an admin named %q exists already: see 'tally-server admins list'", store.ErrConflict, name)
			}
			if strings.Contains(err.Error(), "CHECK") {
				return fmt.Errorf("%w: role %q: use viewer, operator or admin", store.ErrInvalid, role)
			}
			return fmt.Errorf("add admin: %w", err)
		}
		a = store.AdminAccount{Name: name, Role: role, HasPassword: passwordHash != "", CreatedAt: fromMS(ms(tx.Now))}
		return addEvent(tx, store.Event{Actor: actor, Kind: store.EventAdminAdded, Reason: name + " (" + role + ")"})
	})
	return a, err
}

const adminColumns = `a.name, a.role, a.password_hash, a.created_at, a.last_seen,
	(SELECT COUNT(*) FROM admin_tokens t WHERE t.admin = a.name AND t.revoked_at IS NULL)`

func scanAdmin(sc interface{ Scan(...any) error }) (store.AdminAccount, string, error) {
	var a store.AdminAccount
	var hash string
	var created int64
	var seen sql.NullInt64
	if err := sc.Scan(&a.Name, &a.Role, &hash, &created, &seen, &a.Tokens); err != nil {
		return a, "", err
	}
	a.HasPassword, a.CreatedAt, a.LastSeen = hash != "", fromMS(created), fromNullMS(seen)
	return a, hash, nil
}

// ListAdmins implements store.Admins.
func (db *DB) ListAdmins(ctx context.Context) ([]store.AdminAccount, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+adminColumns+` FROM admins a ORDER BY a.name`)
	if err != nil {
		return nil, fmt.Errorf("list admins: %w", err)
	}
	defer rows.Close()
	out := []store.AdminAccount{}
	for rows.Next() {
		a, _, err := scanAdmin(rows)
		if err != nil {
			return nil, fmt.Errorf("list admins: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// AdminLogin implements store.Admins.
func (db *DB) AdminLogin(ctx context.Context, name string) (store.AdminAccount, string, error) {
	a, hash, err := scanAdmin(db.r.QueryRowContext(ctx, `SELECT `+adminColumns+` FROM admins a WHERE a.name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return a, "", fmt.Errorf("no admin named %q (see 'tally-server admins list'): %w", name, store.ErrNotFound)
	}
	if err != nil {
		return a, "", fmt.Errorf("read admin: %w", err)
	}
	return a, hash, nil
}

// RemoveAdmin implements store.Admins.
func (db *DB) RemoveAdmin(ctx context.Context, name, actor string) error {
	return db.write(ctx, func(tx *Tx) error {
		var role string
		err := tx.QueryRow(`SELECT role FROM admins WHERE name = ?`, name).Scan(&role)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("no admin named %q (see 'tally-server admins list'): %w", name, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("remove admin: %w", err)
		}
		if role == "admin" {
			var n int
			if err := tx.QueryRow(`SELECT COUNT(*) FROM admins WHERE role = 'admin'`).Scan(&n); err != nil {
				return fmt.Errorf("remove admin: %w", err)
			}
			if n <= 1 {
				return fmt.Errorf("%w: %s is the last admin of role admin: add another one first ('tally-server admins add NAME --role admin')", store.ErrConflict, name)
			}
		}
		// Sessions and tokens go with the admin (ON DELETE CASCADE).
		if _, err := tx.Exec(`DELETE FROM admins WHERE name = ?`, name); err != nil {
			return fmt.Errorf("remove admin: %w", err)
		}
		return addEvent(tx, store.Event{Actor: actor, Kind: store.EventAdminRemoved, Reason: name + " (" + role + "): its tokens revoked and sessions ended"})
	})
}

// SetAdminPassword implements store.Admins.
func (db *DB) SetAdminPassword(ctx context.Context, name, passwordHash, actor string) error {
	return db.write(ctx, func(tx *Tx) error {
		res, err := tx.Exec(`UPDATE admins SET password_hash = ? WHERE name = ?`, passwordHash, name)
		if err != nil {
			return fmt.Errorf("set password: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("no admin named %q (see 'tally-server admins list'): %w", name, store.ErrNotFound)
		}
		if _, err := tx.Exec(`DELETE FROM admin_sessions WHERE admin = ?`, name); err != nil {
			return fmt.Errorf("end sessions: %w", err)
		}
		return addEvent(tx, store.Event{Actor: actor, Kind: store.EventAdminPassword, Reason: name + ": its console sessions ended"})
	})
}

const tokenColumns = `id, admin, label, created_at, last_used, revoked_at`

func scanToken(sc interface{ Scan(...any) error }) (store.AdminToken, error) {
	var t store.AdminToken
	var created int64
	var used, revoked sql.NullInt64
	if err := sc.Scan(&t.ID, &t.Admin, &t.Label, &created, &used, &revoked); err != nil {
		return t, err
	}
	t.CreatedAt, t.LastUsed, t.RevokedAt = fromMS(created), fromNullMS(used), fromNullMS(revoked)
	return t, nil
}

// IssueToken implements store.Admins.
func (db *DB) IssueToken(ctx context.Context, admin, id, tokenHash, label, actor string) (store.AdminToken, error) {
	var t store.AdminToken
	err := db.write(ctx, func(tx *Tx) error {
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM admins WHERE name = ?`, admin).Scan(&n); err != nil {
			return fmt.Errorf("issue token: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("no admin named %q (see 'tally-server admins list'): %w", admin, store.ErrNotFound)
		}
		if _, err := tx.Exec(`INSERT INTO admin_tokens (id, admin, hash, label, created_at) VALUES (?, ?, ?, ?, ?)`, id, admin, tokenHash, label, ms(tx.Now)); err != nil {
			return fmt.Errorf("issue token: %w", err)
		}
		t = store.AdminToken{ID: id, Admin: admin, Label: label, CreatedAt: fromMS(ms(tx.Now))}
		return addEvent(tx, store.Event{Actor: actor, Kind: store.EventTokenIssued, Reason: "token " + id + " for " + admin})
	})
	return t, err
}

// RevokeToken implements store.Admins.
func (db *DB) RevokeToken(ctx context.Context, id, actor string) (store.AdminToken, error) {
	var t store.AdminToken
	err := db.write(ctx, func(tx *Tx) error {
		res, err := tx.Exec(`UPDATE admin_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, ms(tx.Now), id)
		if err != nil {
			return fmt.Errorf("revoke token: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("no token with ID %q (see 'tally-server admins list --tokens'): %w", id, store.ErrNotFound)
		}
		if t, err = scanToken(tx.QueryRow(`SELECT `+tokenColumns+` FROM admin_tokens WHERE id = ?`, id)); err != nil {
			return fmt.Errorf("revoke token: %w", err)
		}
		return addEvent(tx, store.Event{Actor: actor, Kind: store.EventTokenRevoked, Reason: "token " + id + " of " + t.Admin})
	})
	return t, err
}

// AdminTokens implements store.Admins.
func (db *DB) AdminTokens(ctx context.Context, admin string) ([]store.AdminToken, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+tokenColumns+` FROM admin_tokens WHERE ? = '' OR admin = ? ORDER BY admin, created_at, id`, admin, admin)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	out := []store.AdminToken{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// TokenAdmin implements store.Admins.
func (db *DB) TokenAdmin(ctx context.Context, tokenHash string) (store.AdminAccount, store.AdminToken, error) {
	t, err := scanToken(db.r.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM admin_tokens WHERE hash = ? AND revoked_at IS NULL`, tokenHash))
	if errors.Is(err, sql.ErrNoRows) {
		return store.AdminAccount{}, t, fmt.Errorf("token: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.AdminAccount{}, t, fmt.Errorf("read token: %w", err)
	}
	a, _, err := db.AdminLogin(ctx, t.Admin)
	if err != nil {
		return a, t, err
	}
	now := db.clock.Now()
	if t.LastUsed == nil || now.Sub(*t.LastUsed) >= tokenTouchEvery {
		err := db.write(ctx, func(tx *Tx) error {
			if _, err := tx.Exec(`UPDATE admin_tokens SET last_used = ? WHERE id = ?`, ms(tx.Now), t.ID); err != nil {
				return err
			}
			_, err := tx.Exec(`UPDATE admins SET last_seen = ? WHERE name = ?`, ms(tx.Now), t.Admin)
			return err
		})
		if err != nil {
			return a, t, fmt.Errorf("note token use: %w", err)
		}
	}
	return a, t, nil
}

// CreateSession implements store.Admins.
func (db *DB) CreateSession(ctx context.Context, sessionHash, admin string) (store.AdminSession, error) {
	var s store.AdminSession
	err := db.write(ctx, func(tx *Tx) error {
		if err := tx.QueryRow(`SELECT role FROM admins WHERE name = ?`, admin).Scan(&s.Role); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("no admin named %q: %w", admin, store.ErrNotFound)
			}
			return fmt.Errorf("create session: %w", err)
		}
		if _, err := tx.Exec(`INSERT INTO admin_sessions (hash, admin, created_at, last_seen) VALUES (?, ?, ?, ?)`, sessionHash, admin, ms(tx.Now), ms(tx.Now)); err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		if _, err := tx.Exec(`UPDATE admins SET last_seen = ? WHERE name = ?`, ms(tx.Now), admin); err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		s.Admin, s.CreatedAt, s.LastSeen = admin, fromMS(ms(tx.Now)), fromMS(ms(tx.Now))
		return addEvent(tx, store.Event{Actor: admin, Kind: store.EventSignedIn, Reason: "console session"})
	})
	return s, err
}

// Session implements store.Admins.
func (db *DB) Session(ctx context.Context, sessionHash string) (store.AdminSession, error) {
	var s store.AdminSession
	var created, seen int64
	err := db.r.QueryRowContext(ctx, `SELECT s.admin, a.role, s.created_at, s.last_seen FROM admin_sessions s JOIN admins a ON a.name = s.admin WHERE s.hash = ?`,
		sessionHash).Scan(&s.Admin, &s.Role, &created, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("session: %w", store.ErrNotFound)
	}
	if err != nil {
		return s, fmt.Errorf("read session: %w", err)
	}
	s.CreatedAt, s.LastSeen = fromMS(created), fromMS(seen)
	return s, nil
}

// TouchSession implements store.Admins.
func (db *DB) TouchSession(ctx context.Context, sessionHash string) error {
	return db.write(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(`UPDATE admin_sessions SET last_seen = ? WHERE hash = ?`, ms(tx.Now), sessionHash); err != nil {
			return fmt.Errorf("note session use: %w", err)
		}
		if _, err := tx.Exec(`UPDATE admins SET last_seen = ? WHERE name = (SELECT admin FROM admin_sessions WHERE hash = ?)`, ms(tx.Now), sessionHash); err != nil {
			return fmt.Errorf("note session use: %w", err)
		}
		return nil
	})
}

// DeleteSession implements store.Admins.
func (db *DB) DeleteSession(ctx context.Context, sessionHash string) error {
	return db.write(ctx, func(tx *Tx) error {
		var admin string
		err := tx.QueryRow(`DELETE FROM admin_sessions WHERE hash = ? RETURNING admin`, sessionHash).Scan(&admin)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("end session: %w", err)
		}
		return addEvent(tx, store.Event{Actor: admin, Kind: store.EventSignedOut, Reason: "console session"})
	})
}

// DeleteSessionsBefore implements store.Admins.
func (db *DB) DeleteSessionsBefore(ctx context.Context, created, idle time.Time) (int, error) {
	var n int64
	err := db.write(ctx, func(tx *Tx) error {
		res, err := tx.Exec(`DELETE FROM admin_sessions WHERE created_at < ? OR last_seen < ?`, ms(created), ms(idle))
		if err != nil {
			return fmt.Errorf("delete expired sessions: %w", err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return int(n), err
}
