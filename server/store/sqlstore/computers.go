package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

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

// ListComputers implements store.Computers: one page of live computers by
// ID. Status, product and flag filters read an index; hostname, plug-in
// and last-seen filters are checked row by row in ID order, which stops as
// soon as the page is full.
func (db *DB) ListComputers(ctx context.Context, f store.ComputerFilter) (store.ComputerPage, error) {
	page := store.ComputerPage{Computers: []store.Computer{}}
	limit := f.Limit
	switch {
	case limit == 0:
		limit = store.DefaultComputerLimit
	case limit < 0 || limit > store.MaxComputerLimit:
		return page, fmt.Errorf("%w: limit %d: ask for 1 to %d computers a page", store.ErrInvalid, limit, store.MaxComputerLimit)
	}
	// "+" keeps SQLite from taking computers_live for the live rows (nearly
	// all of them), which would sort every row to return a page.
	where := []string{"+c.deleted_at IS NULL"}
	var args []any
	if f.After < 0 {
		return page, fmt.Errorf("%w: after %d: pass the ID the previous page ended with", store.ErrInvalid, f.After)
	}
	if f.After > 0 {
		if f.Desc {
			where, args = append(where, "c.id < ?"), append(args, f.After)
		} else {
			where, args = append(where, "c.id > ?"), append(args, f.After)
		}
	}
	if f.Hostname != "" {
		where, args = append(where, `c.hostname LIKE ? ESCAPE '\'`), append(args, hostnamePattern(f.Hostname))
	}
	if s := strings.TrimSpace(f.Search); s != "" {
		where = append(where, `(c.hostname LIKE ? ESCAPE '\' OR c.id IN (SELECT h.computer_id FROM computer_hints h WHERE h.kind IN (?, ?, ?, ?, ?) AND h.value = ?))`)
		args = append(append(append(args, hostnamePattern(s)), findHintKinds...), s)
	}
	if f.OS != "" {
		where, args = append(where, "(lower(c.os) = lower(?) OR lower(c.platform) = lower(?))"), append(args, f.OS, f.OS)
	}
	if f.Status != "" {
		var canonical string
		err := db.r.QueryRowContext(ctx, `SELECT name FROM statuses WHERE lower(name) = lower(?)`, f.Status).Scan(&canonical)
		if errors.Is(err, sql.ErrNoRows) {
			return page, fmt.Errorf("%w: status %q does not exist (see 'tally-server statuses list')", store.ErrInvalid, f.Status)
		}
		if err != nil {
			return page, fmt.Errorf("read statuses: %w", err)
		}
		where, args = append(where, "c.status = ?"), append(args, canonical)
	}
	if f.Product != "" {
		if _, ok := db.engine.Catalog().Product(f.Product); !ok {
			return page, fmt.Errorf("%w: product %q does not exist (see 'tally-server products list')", store.ErrInvalid, f.Product)
		}
		where = append(where, `c.id IN (SELECT s.computer_id FROM seats s WHERE s.product = ?
			UNION SELECT b.computer_id FROM activations b JOIN activation_ids a ON a.id = b.activation_id WHERE a.product = ? AND b.ended_at IS NULL
			UNION SELECT l.computer_id FROM leases l WHERE l.product = ? AND l.expires_at > ?)`)
		args = append(args, f.Product, f.Product, f.Product, ms(db.clock.Now()))
	}
	if f.Plugin != "" {
		plugins := slices.DeleteFunc(db.engine.Catalog().Plugins(), func(p string) bool { return p == "" })
		if !slices.Contains(plugins, f.Plugin) {
			return page, fmt.Errorf("%w: no product uses a plug-in named %q (plug-ins: %s)", store.ErrInvalid, f.Plugin, strings.Join(plugins, ", "))
		}
		// The plug-in list is stored as JSON; plug-in names are [a-z0-9-].
		where, args = append(where, "c.plugins LIKE ?"), append(args, `%"name":"`+f.Plugin+`"%`)
	}
	if !f.NotSeenSince.IsZero() {
		where, args = append(where, "c.last_seen < ?"), append(args, ms(f.NotSeenSince))
	}
	if f.Flag != "" {
		if !slices.Contains(store.Flags, f.Flag) {
			return page, fmt.Errorf("%w: flag %q does not exist (flags: %s)", store.ErrInvalid, f.Flag, strings.Join(store.Flags, ", "))
		}
		where, args = append(where, `c.flags <> '' AND (',' || c.flags || ',') LIKE ?`), append(args, "%,"+f.Flag+",%")
	}
	order := "c.id"
	if f.Desc {
		order = "c.id DESC"
	}
	q := `SELECT ` + computerColumns + ` FROM computers c WHERE ` + strings.Join(where, " AND ") + ` ORDER BY ` + order + ` LIMIT ?`
	rows, err := db.r.QueryContext(ctx, q, append(args, limit+1)...)
	if err != nil {
		return page, fmt.Errorf("list computers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		c, err := scanComputer(rows)
		if err != nil {
			return page, fmt.Errorf("list computers: %w", err)
		}
		page.Computers = append(page.Computers, c)
	}
	if err := rows.Err(); err != nil {
		return page, fmt.Errorf("list computers: %w", err)
	}
	if len(page.Computers) > limit {
		page.Computers = page.Computers[:limit]
		page.Next = page.Computers[limit-1].ID
	}
	return page, nil
}

// hostnamePattern turns a hostname filter into a LIKE pattern: a glob
// (with * or ?) matches the whole name, anything else a substring.
func hostnamePattern(s string) string {
	var b strings.Builder
	glob := strings.ContainsAny(s, "*?")
	if !glob {
		b.WriteByte('%')
	}
	for _, r := range s {
		switch r {
		case '%', '_', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '*':
			b.WriteByte('%')
		case '?':
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	if !glob {
		b.WriteByte('%')
	}
	return b.String()
}

// Identity hints a computer can be named by (all but the blocked-only key).
var findHintKinds = []any{hintInstance, hintUUID, hintSerial, hintMachineID, hintMAC}

// FindComputers implements store.Computers.
func (db *DB) FindComputers(ctx context.Context, ref string) ([]store.Computer, error) {
	out := []store.Computer{}
	if strings.TrimSpace(ref) == "" {
		return out, nil
	}
	seen := map[int64]bool{}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`SELECT ` + computerColumns + ` FROM computers c WHERE c.deleted_at IS NULL AND lower(c.hostname) = lower(?) ORDER BY c.id`, []any{ref}},
		{`SELECT ` + computerColumns + ` FROM computers c WHERE c.deleted_at IS NULL AND c.id IN
			(SELECT h.computer_id FROM computer_hints h WHERE h.kind IN (?, ?, ?, ?, ?) AND h.value = ?) ORDER BY c.id`, append(append([]any{}, findHintKinds...), ref)},
	} {
		rows, err := db.r.QueryContext(ctx, q.sql, q.args...)
		if err != nil {
			return nil, fmt.Errorf("find computer: %w", err)
		}
		for rows.Next() {
			c, err := scanComputer(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("find computer: %w", err)
			}
			if !seen[c.ID] {
				seen[c.ID] = true
				out = append(out, c)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("find computer: %w", err)
		}
	}
	return out, nil
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
	if c.Seats, err = db.heldSeats(ctx, id); err != nil {
		return c, fmt.Errorf("computer %d: %w", id, err)
	}
	return c, nil
}

// heldSeats lists a computer's node seats, Activation ID seats and leases.
func (db *DB) heldSeats(ctx context.Context, id int64) ([]store.HeldSeat, error) {
	rows, err := db.r.QueryContext(ctx, `
		SELECT product, 'node', license_id, since, reason FROM seats WHERE computer_id = ?
		UNION ALL
		SELECT a.product, 'node-locked', a.license_id, b.activated_at, 'Activation ID ' || a.id FROM activations b JOIN activation_ids a ON a.id = b.activation_id
			WHERE b.computer_id = ? AND b.ended_at IS NULL
		UNION ALL
		SELECT product, 'concurrent', license_id, granted_at, 'lease' FROM leases WHERE computer_id = ? AND expires_at > ?
		ORDER BY 1, 2`, id, id, id, ms(db.clock.Now()))
	if err != nil {
		return nil, fmt.Errorf("read seats: %w", err)
	}
	defer rows.Close()
	var out []store.HeldSeat
	for rows.Next() {
		var h store.HeldSeat
		var since int64
		if err := rows.Scan(&h.Product, &h.Kind, &h.License, &since, &h.Reason); err != nil {
			return nil, fmt.Errorf("read seats: %w", err)
		}
		h.Since = fromMS(since)
		out = append(out, h)
	}
	return out, rows.Err()
}

// BlockedMachines implements store.Computers.
func (db *DB) BlockedMachines(ctx context.Context) ([]store.Blocked, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT b.computer_id, COALESCE(c.hostname, ''), b.at, b.kind, b.value,
		COALESCE((SELECT e.actor FROM events e WHERE e.computer_id = b.computer_id AND e.kind = ? ORDER BY e.at DESC, e.id DESC LIMIT 1), '')
		FROM blocked b LEFT JOIN computers c ON c.id = b.computer_id
		ORDER BY b.computer_id, b.kind = 'key' DESC, b.kind, b.value`, store.EventDeleted)
	if err != nil {
		return nil, fmt.Errorf("list blocked machines: %w", err)
	}
	defer rows.Close()
	out := []store.Blocked{}
	for rows.Next() {
		var id sql.NullInt64
		var host, kind, value, by string
		var at int64
		if err := rows.Scan(&id, &host, &at, &kind, &value, &by); err != nil {
			return nil, fmt.Errorf("list blocked machines: %w", err)
		}
		if n := len(out); n == 0 || out[n-1].ComputerID != id.Int64 {
			out = append(out, store.Blocked{ComputerID: id.Int64, Hostname: host, At: fromMS(at), By: by})
		}
		b := &out[len(out)-1]
		if t := fromMS(at); t.Before(b.At) {
			b.At = t
		}
		b.Hints = append(b.Hints, store.BlockedHint{Kind: kind, Value: value})
	}
	return out, rows.Err()
}

// Unblock implements store.Computers. The machine's keys, revoked when it
// was blocked, may enroll again as a new computer.
func (db *DB) Unblock(ctx context.Context, computerID int64, actor string) (store.Blocked, error) {
	var b store.Blocked
	err := db.write(ctx, func(tx *Tx) error {
		b = store.Blocked{ComputerID: computerID} // a job may run twice (see runBatch)
		rows, err := tx.Query(`SELECT kind, value, at FROM blocked WHERE computer_id = ? ORDER BY kind = 'key' DESC, kind, value`, computerID)
		if err != nil {
			return fmt.Errorf("read block list: %w", err)
		}
		for rows.Next() {
			var h store.BlockedHint
			var at int64
			if err := rows.Scan(&h.Kind, &h.Value, &at); err != nil {
				rows.Close()
				return err
			}
			b.Hints, b.At = append(b.Hints, h), fromMS(at)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(b.Hints) == 0 {
			return fmt.Errorf("computer %d is not blocked (see 'tally-server computers blocked'): %w", computerID, store.ErrNotFound)
		}
		_ = tx.QueryRow(`SELECT hostname FROM computers WHERE id = ?`, computerID).Scan(&b.Hostname)
		if _, err := tx.Exec(`DELETE FROM blocked WHERE computer_id = ?`, computerID); err != nil {
			return fmt.Errorf("unblock: %w", err)
		}
		if _, err := tx.Exec(`UPDATE nodes SET revoked_reason = ? WHERE computer_id = ? AND revoked_reason = ?`,
			store.RevokedUnblocked, computerID, store.RevokedBlocked); err != nil {
			return fmt.Errorf("unblock keys: %w", err)
		}
		kinds := make([]string, len(b.Hints))
		for i, h := range b.Hints {
			kinds[i] = h.Kind
		}
		return addEvent(tx, store.Event{Actor: actor, Kind: store.EventUnblocked, ComputerID: computerID,
			Reason: fmt.Sprintf("unblocked %s (%s): the machine may enroll again, as a new computer", b.Hostname, strings.Join(kinds, ", "))})
	})
	return b, err
}

// setFlag adds or clears a computer's flag and audits a change (unless
// actor is empty: the caller audits the cause).
func setFlag(tx *Tx, id int64, flag string, on bool, actor, why string) error {
	var flags string
	if err := tx.QueryRow(`SELECT flags FROM computers WHERE id = ?`, id).Scan(&flags); err != nil {
		return fmt.Errorf("read flags: %w", err)
	}
	fs := splitFlags(flags)
	if slices.Contains(fs, flag) == on {
		return nil
	}
	kind := store.EventFlagged
	if on {
		fs = append(fs, flag)
	} else {
		fs = slices.DeleteFunc(fs, func(f string) bool { return f == flag })
		kind = store.EventUnflagged
	}
	if _, err := tx.ExecComputer(id, `UPDATE computers SET flags = ? WHERE id = ?`, strings.Join(fs, ","), id); err != nil {
		return fmt.Errorf("set flag: %w", err)
	}
	if actor == "" {
		return nil
	}
	return addEvent(tx, store.Event{Actor: actor, Kind: kind, ComputerID: id, Reason: flag + ": " + why})
}
