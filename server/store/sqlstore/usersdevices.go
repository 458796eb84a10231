package sqlstore

import (
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/ledger"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/users"
)

// Where users come from (users.source).
const (
	sourceAgent     = "agent"
	sourceDirectory = "directory"
)

// Audit kind of device registrations.
const eventDevice = "user.device"

// agentUser finds or adds the user an agent names. A directory or domain
// account merges with the user of the same domain\name, whatever its
// source (a directory user keyed by its GUID included); a local account is
// the machine's own, keyed by computer so that the same name on two
// machines stays two users.
func agentUser(tx *Tx, computer int64, hostname string, u protocol.User, actor string) (int64, error) {
	domain, name := u.Domain, u.Name
	key := users.Key("", domain, name)
	if u.Local {
		domain = hostname
		key = "local:" + users.Key("", strconv.FormatInt(computer, 10), name)
	} else {
		var id int64
		err := tx.QueryRow(`SELECT id FROM users WHERE lower(name) = lower(?) AND lower(domain) = lower(?)
			ORDER BY CASE status WHEN 'Deleted' THEN 1 ELSE 0 END, id LIMIT 1`, name, domain).Scan(&id)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("find user: %w", err)
		}
	}
	// Users are not in the post cache: ExecUncached.
	res, err := tx.ExecUncached(`INSERT INTO users (key, domain, name, display, status, source, created_at, updated_at) VALUES (?, ?, ?, ?, 'Active', ?, ?, ?)
		ON CONFLICT (key) DO NOTHING`, key, domain, name, u.Display, sourceAgent, ms(tx.Now), ms(tx.Now))
	if err != nil {
		return 0, fmt.Errorf("add user: %w", err)
	}
	var id int64
	if err := tx.QueryRow(`SELECT id FROM users WHERE key = ?`, key).Scan(&id); err != nil {
		return 0, fmt.Errorf("read user back: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return id, nil // known by its key already
	}
	return id, addEvent(tx, store.Event{Actor: actor, Kind: eventUser, ComputerID: computer,
		Reason: fmt.Sprintf("added user %s, reported by computer %d", userName(domain, name), computer)})
}

// ReportUsers implements ledger.UsersTx.
func (t *ledgerTx) ReportUsers(computer int64, primary *protocol.User, logged []protocol.User, actor string) error {
	if primary == nil && len(logged) == 0 {
		_, err := t.ExecUncached(`DELETE FROM computer_users WHERE computer_id = ? AND role = 'logged-in'`, computer)
		return err
	}
	var hostname string
	if err := t.QueryRow(`SELECT hostname FROM computers WHERE id = ?`, computer).Scan(&hostname); err != nil {
		return fmt.Errorf("read computer: %w", err)
	}
	if primary != nil {
		id, err := agentUser(t.Tx, computer, hostname, *primary, actor)
		if err != nil {
			return err
		}
		var old sql.NullInt64
		if err := t.QueryRow(`SELECT MIN(user_id) FROM computer_users WHERE computer_id = ? AND role = 'primary'`, computer).Scan(&old); err != nil {
			return err
		}
		if !old.Valid || old.Int64 != id {
			if _, err := t.ExecUncached(`DELETE FROM computer_users WHERE computer_id = ? AND role = 'primary'`, computer); err != nil {
				return err
			}
			if err := addEvent(t.Tx, store.Event{Actor: actor, Kind: eventDevice, ComputerID: computer,
				Reason: fmt.Sprintf("primary user of computer %d (%s): %s", computer, hostname, userName(primary.Domain, primary.Name))}); err != nil {
				return err
			}
		}
		if _, err := t.ExecUncached(`INSERT INTO computer_users (computer_id, user_id, role, seen_at) VALUES (?, ?, 'primary', ?)
			ON CONFLICT (computer_id, role, user_id) DO UPDATE SET seen_at = excluded.seen_at`, computer, id, ms(t.Tx.Now)); err != nil {
			return fmt.Errorf("record primary user: %w", err)
		}
	}
	if _, err := t.ExecUncached(`DELETE FROM computer_users WHERE computer_id = ? AND role = 'logged-in'`, computer); err != nil {
		return err
	}
	for _, u := range logged {
		id, err := agentUser(t.Tx, computer, hostname, u, actor)
		if err != nil {
			return err
		}
		if _, err := t.ExecUncached(`INSERT INTO computer_users (computer_id, user_id, role, seen_at) VALUES (?, ?, 'logged-in', ?)
			ON CONFLICT (computer_id, role, user_id) DO NOTHING`, computer, id, ms(t.Tx.Now)); err != nil {
			return fmt.Errorf("record logged-in user: %w", err)
		}
	}
	return nil
}

// SyncDevices implements ledger.UsersTx.
func (t *ledgerTx) SyncDevices(computer int64, actor, cause string) error {
	return t.db.syncDevices(t.Tx, computer, actor, cause)
}

type deviceKey struct {
	user    int64
	product string
}

// syncDevices registers the computer as a device of its primary user for
// each product of its plug-ins, ends the registrations that no longer
// hold (another primary user, a plug-in removed, the computer deleted or
// its agent uninstalled), and reconciles the seats of every user and
// product concerned, whose devices may also count differently because
// the computer's status changed.
func (db *DB) syncDevices(tx *Tx, computer int64, actor, cause string) error {
	var deleted, primary sql.NullInt64
	var flags, plugins, hostname string
	var registered bool
	// One query for the computer, its primary user and whether it has
	// registrations: most machines have neither, and stop here.
	if err := tx.QueryRow(`SELECT deleted_at, flags, plugins, hostname,
		(SELECT MIN(user_id) FROM computer_users WHERE computer_id = c.id AND role = 'primary'),
		EXISTS (SELECT 1 FROM user_devices WHERE computer_id = c.id)
		FROM computers c WHERE id = ?`, computer).Scan(&deleted, &flags, &plugins, &hostname, &primary, &registered); err != nil {
		return fmt.Errorf("read computer %d: %w", computer, err)
	}
	if !primary.Valid && !registered {
		return nil
	}
	want := map[string]int64{} // product → user
	if primary.Valid && !deleted.Valid && !slices.Contains(splitFlags(flags), store.FlagAgentUninstalled) {
		for _, pl := range ledger.DecodePlugins(plugins) {
			for _, p := range db.engine.Catalog().ForPlugin(pl.Name, pl.Version) {
				want[p.Name] = primary.Int64
			}
		}
	}
	have := map[string]int64{}
	rows, err := tx.Query(`SELECT product, user_id FROM user_devices WHERE computer_id = ?`, computer)
	if err != nil {
		return err
	}
	for rows.Next() {
		var p string
		var u int64
		if err := rows.Scan(&p, &u); err != nil {
			rows.Close()
			return err
		}
		have[p] = u
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	concerned := map[deviceKey]bool{}
	for p, u := range have {
		concerned[deviceKey{u, p}] = true
		if want[p] == u {
			continue
		}
		if _, err := tx.ExecUncached(`DELETE FROM user_devices WHERE computer_id = ? AND product = ?`, computer, p); err != nil {
			return fmt.Errorf("end device registration: %w", err)
		}
		if err := db.deviceEvent(tx, u, p, computer, hostname, actor, "no longer registered: "+cause); err != nil {
			return err
		}
	}
	for p, u := range want {
		concerned[deviceKey{u, p}] = true
		if have[p] == u {
			continue
		}
		if _, err := tx.ExecUncached(`INSERT INTO user_devices (computer_id, product, user_id, since) VALUES (?, ?, ?, ?)`, computer, p, u, ms(tx.Now)); err != nil {
			return fmt.Errorf("register device: %w", err)
		}
		if err := db.deviceEvent(tx, u, p, computer, hostname, actor, "registered: "+cause); err != nil {
			return err
		}
	}
	keys := make([]deviceKey, 0, len(concerned))
	for k := range concerned {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].user < keys[j].user || (keys[i].user == keys[j].user && keys[i].product < keys[j].product)
	})
	for _, k := range keys {
		if _, err := db.reconcileUser(tx, k.user, k.product, actor, fmt.Sprintf("device %d (%s): %s", computer, hostname, cause)); err != nil &&
			!errors.Is(err, store.ErrNoUserSeat) {
			// No seat free for a user who also holds credentials (its
			// license expired meanwhile): the post is not refused for it.
			return err
		}
	}
	return nil
}

func (db *DB) deviceEvent(tx *Tx, user int64, product string, computer int64, hostname, actor, what string) error {
	var domain, name string
	if err := tx.QueryRow(`SELECT domain, name FROM users WHERE id = ?`, user).Scan(&domain, &name); err != nil {
		return fmt.Errorf("read user %d: %w", user, err)
	}
	return addEvent(tx, store.Event{Actor: actor, Kind: eventDevice, ComputerID: computer, Product: product,
		Reason: fmt.Sprintf("user %s: computer %d (%s) as a device of %s %s", userName(domain, name), computer, hostname, product, what)})
}

// devices counts the user's devices of product that count now (see
// catalog.Product.DeviceCounts).
func (db *DB) devices(q rowsQuerier, user int64, product string) (int, error) {
	p, ok := db.engine.Catalog().Product(product)
	if !ok {
		return 0, nil
	}
	rows, err := q.Query(`SELECT c.status FROM user_devices d JOIN computers c ON c.id = d.computer_id
		WHERE d.user_id = ? AND d.product = ? AND c.deleted_at IS NULL`, user, product)
	if err != nil {
		return 0, fmt.Errorf("read devices: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var status string
		if err := rows.Scan(&status); err != nil {
			return 0, err
		}
		if p.DeviceCounts(status) {
			n++
		}
	}
	return n, rows.Err()
}

// seatWaiting gives a seat of product just freed to the user who has
// waited longest with devices alone (see reconcileUser), if any is
// waiting: so that no Active user with a counting device goes without a
// seat while one is free.
func (db *DB) seatWaiting(tx *Tx, product, actor string) error {
	p, ok := db.engine.Catalog().Product(product)
	if !ok {
		return nil
	}
	anyStatus := 0
	if p.InactiveDevicesConsume {
		anyStatus = 1
	}
	var id int64
	var status, domain, name string
	err := tx.QueryRow(`SELECT d.user_id, u.status, u.domain, u.name FROM user_devices d
		JOIN users u ON u.id = d.user_id JOIN computers c ON c.id = d.computer_id
		WHERE d.product = ? AND u.status = 'Active' AND c.deleted_at IS NULL AND (c.status = 'Active' OR 1 = ?)
		AND NOT EXISTS (SELECT 1 FROM user_seats s WHERE s.user_id = d.user_id AND s.product = d.product)
		ORDER BY d.since, d.user_id LIMIT 1`, product, anyStatus).Scan(&id, &status, &domain, &name)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find users waiting for a seat: %w", err)
	}
	h, err := db.holding(tx, id, status, product)
	if err != nil {
		return err
	}
	d := users.Decide(h, tx.Now)
	if !d.Consumes {
		return nil
	}
	err = db.takeUserSeat(tx, id, product, userName(domain, name), d.Reason+", waited for a seat", actor, "")
	if errors.Is(err, store.ErrNoUserSeat) {
		return nil
	}
	return err
}

// adoptAgentUser gives the directory's key to the user an agent reported
// under the same domain\name before the directory listed it, so that the
// sync updates that user rather than add a second one. It reports whether
// it did.
func adoptAgentUser(tx *Tx, key, domain, name string) (bool, error) {
	res, err := tx.ExecUncached(`UPDATE users SET key = ? WHERE id = (SELECT id FROM users
		WHERE source = 'agent' AND directory_id IS NULL AND lower(name) = lower(?) AND lower(domain) = lower(?) ORDER BY id LIMIT 1)`, key, name, domain)
	if err != nil {
		return false, fmt.Errorf("adopt user %s: %w", userName(domain, name), err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// relisted takes the seats a user listed again by its directory needs
// for its devices (its credentials ended when it was deleted); with no
// seat free it waits like any user with devices alone.
func (db *DB) relisted(tx *Tx, user int64, dir, actor string) error {
	if _, err := db.reconcileUser(tx, user, "", actor, "listed again by directory "+dir); err != nil && !errors.Is(err, store.ErrNoUserSeat) {
		return err
	}
	return nil
}
