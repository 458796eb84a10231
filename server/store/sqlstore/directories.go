package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/users"
)

const directoryColumns = `id, name, url, base_dn, bind_dn, password_file, filter, group_filter, domain, start_tls, interval_s, last_sync_at, last_result`

func scanDirectory(sc interface{ Scan(...any) error }) (store.Directory, error) {
	var d store.Directory
	var secs int64
	var last sql.NullInt64
	if err := sc.Scan(&d.ID, &d.Name, &d.URL, &d.BaseDN, &d.BindDN, &d.PasswordFile, &d.Filter, &d.GroupFilter, &d.Domain, &d.StartTLS, &secs, &last, &d.LastResult); err != nil {
		return d, fmt.Errorf("read directory: %w", err)
	}
	d.Interval = time.Duration(secs) * time.Second
	d.LastSyncAt = fromNullMS(last)
	return d, nil
}

// AddDirectory implements store.Users; the caller has validated d.
func (db *DB) AddDirectory(ctx context.Context, d store.Directory, actor string) (store.Directory, error) {
	var out store.Directory
	err := db.write(ctx, func(tx *Tx) error {
		res, err := tx.Exec(`INSERT INTO directories (name, url, base_dn, bind_dn, password_file, filter, group_filter, domain, start_tls, interval_s, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
			d.Name, d.URL, d.BaseDN, d.BindDN, d.PasswordFile, d.Filter, d.GroupFilter, d.Domain, d.StartTLS, int64(d.Interval/time.Second), ms(tx.Now))
		if err != nil {
			return fmt.Errorf("add directory: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: directory %s already exists", store.ErrConflict, d.Name)
		}
		if out, err = scanDirectory(tx.QueryRow(`SELECT `+directoryColumns+` FROM directories WHERE name = ?`, d.Name)); err != nil {
			return err
		}
		return addEvent(tx, store.Event{Actor: actor, Kind: eventUser, Reason: fmt.Sprintf("added directory %s (%s, base %s)", d.Name, d.URL, d.BaseDN)})
	})
	return out, err
}

// Directories implements store.Users.
func (db *DB) Directories(ctx context.Context) ([]store.Directory, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+directoryColumns+` FROM directories ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list directories: %w", err)
	}
	defer rows.Close()
	out := []store.Directory{}
	for rows.Next() {
		d, err := scanDirectory(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// RecordSyncFailure implements store.Users.
func (db *DB) RecordSyncFailure(ctx context.Context, dir, why string) error {
	return db.write(ctx, func(tx *Tx) error {
		_, err := tx.Exec(`UPDATE directories SET last_sync_at = ?, last_result = ? WHERE name = ?`, ms(tx.Now), "failed: "+why, dir)
		return err
	})
}

// SyncDirectory implements store.Users: one transaction merges the whole
// listing, so a user gone from the directory frees its seats in the same
// commit that marks it deleted.
func (db *DB) SyncDirectory(ctx context.Context, dir string, entries []store.DirectoryEntry, actor string) (store.SyncResult, error) {
	for i := range entries {
		e := &entries[i]
		if err := users.CheckName("user name", e.Name); err != nil {
			return store.SyncResult{}, fmt.Errorf("%w: directory entry %q: %w", store.ErrInvalid, e.DN, err)
		}
		switch e.External {
		case users.ExtActive, users.ExtDisabled:
		default:
			return store.SyncResult{}, fmt.Errorf("%w: directory entry %q: external status %q", store.ErrInvalid, e.DN, e.External)
		}
	}
	var r store.SyncResult
	err := db.write(ctx, func(tx *Tx) error {
		r = store.SyncResult{Seen: len(entries)}
		var dirID int64
		var domain string
		if err := tx.QueryRow(`SELECT id, domain FROM directories WHERE name = ?`, dir).Scan(&dirID, &domain); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("directory %s: %w (see 'tally-server directory list')", dir, store.ErrNotFound)
		} else if err != nil {
			return err
		}
		if _, err := tx.Exec(`CREATE TEMP TABLE IF NOT EXISTS sync_seen (id BIGINT PRIMARY KEY)`); err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM temp.sync_seen`); err != nil {
			return err
		}
		now := ms(tx.Now)
		for _, e := range entries {
			d := e.Domain
			if d == "" {
				d = domain
			}
			key := users.Key(e.GUID, d, e.Name)
			groups := strings.Join(e.Groups, "\n")
			var id int64
			var oldStatus, oldExt, oldName, oldGroups, oldOU, oldDisplay, oldDN string
			byKey := func() error {
				return tx.QueryRow(`SELECT id, status, external, name, groups, ou, display, dn FROM users WHERE key = ?`, key).Scan(&id, &oldStatus, &oldExt, &oldName, &oldGroups, &oldOU, &oldDisplay, &oldDN)
			}
			err := byKey()
			if errors.Is(err, sql.ErrNoRows) {
				if adopted, aerr := adoptAgentUser(tx, key, d, e.Name); aerr != nil {
					return aerr
				} else if adopted {
					err = byKey()
				}
			}
			switch {
			case errors.Is(err, sql.ErrNoRows):
				id, err = tx.ExecID(`INSERT INTO users (key, directory_id, domain, name, display, dn, ou, groups, status, external, external_why, created_at, updated_at)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'Active', ?, ?, ?, ?) RETURNING id`, key, dirID, d, e.Name, e.Display, e.DN, e.OU, groups, e.External, e.ExternalWhy, now, now)
				if err != nil {
					return fmt.Errorf("add directory user %s: %w", e.DN, err)
				}
				r.Added++
			case err != nil:
				return err
			default:
				if oldExt == e.External && oldName == e.Name && oldGroups == groups && oldOU == e.OU && oldDisplay == e.Display && oldDN == e.DN && oldStatus != users.Deleted {
					break
				}
				status := oldStatus
				if status == users.Deleted {
					status = users.Active // back in the directory: a user again, with no credentials
				}
				if _, err := tx.Exec(`UPDATE users SET directory_id = ?, domain = ?, name = ?, display = ?, dn = ?, ou = ?, groups = ?, status = ?, external = ?, external_why = ?, updated_at = ? WHERE id = ?`,
					dirID, d, e.Name, e.Display, e.DN, e.OU, groups, status, e.External, e.ExternalWhy, now, id); err != nil {
					return err
				}
				if oldStatus == users.Deleted {
					if err := db.relisted(tx, id, dir, actor); err != nil {
						return err
					}
				}
				r.Updated++
			}
			if _, err := tx.Exec(`INSERT INTO temp.sync_seen (id) VALUES (?) ON CONFLICT DO NOTHING`, id); err != nil {
				return err
			}
		}
		gone, err := idsOf(tx, `SELECT id FROM users WHERE directory_id = ? AND status <> 'Deleted' AND id NOT IN (SELECT id FROM temp.sync_seen)`, dirID)
		if err != nil {
			return err
		}
		for _, id := range gone {
			n, err := db.deleteDirectoryUser(tx, id, actor)
			if err != nil {
				return err
			}
			r.Deleted++
			r.SeatsFreed += n
		}
		msg := fmt.Sprintf("synced directory %s: %d users seen, %d added, %d updated, %d deleted from the directory, %d seats freed", dir, r.Seen, r.Added, r.Updated, r.Deleted, r.SeatsFreed)
		if _, err := tx.Exec(`UPDATE directories SET last_sync_at = ?, last_result = ? WHERE id = ?`, now, msg, dirID); err != nil {
			return err
		}
		return addEvent(tx, store.Event{Actor: actor, Kind: eventSync, Reason: msg})
	})
	return r, err
}

// deleteDirectoryUser marks a user gone from its directory (keeping its
// last known name for the report), ends its credentials and frees its
// seats: seed 003's "clear deleted LDAP users", at the sync that finds it.
func (db *DB) deleteDirectoryUser(tx *Tx, id int64, actor string) (int, error) {
	if _, err := tx.Exec(`UPDATE users SET status = 'Deleted', external = 'deleted', external_why = 'deleted from directory', updated_at = ? WHERE id = ?`, ms(tx.Now), id); err != nil {
		return 0, err
	}
	creds, err := idsOf(tx, `SELECT id FROM user_credentials WHERE user_id = ? AND ended_at IS NULL`, id)
	if err != nil {
		return 0, err
	}
	n, err := db.endCredentials(tx, creds, "user deleted from directory", actor)
	if err != nil {
		return 0, err
	}
	m, err := db.reconcileUser(tx, id, "", actor, "user deleted from directory")
	return n + m, err
}

func idsOf(tx *Tx, q string, args ...any) ([]int64, error) {
	rows, err := tx.Query(q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
