package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/mattn/go-sqlite3"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/engine"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
)

// damaged reports whether err is SQLite saying the file is malformed or
// not a database.
func damaged(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrCorrupt || se.Code == sqlite3.ErrNotADB)
}

// diskFull reports whether err is SQLite saying the disk is full.
func diskFull(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrFull
}

// pageCheck runs PRAGMA quick_check or integrity_check and returns its
// findings; none when the file is sound.
func pageCheck(ctx context.Context, db *sql.DB, pragma string) ([]string, error) {
	rows, err := db.QueryContext(ctx, "PRAGMA "+pragma+"(100)")
	if err != nil {
		if damaged(err) {
			return []string{err.Error()}, nil
		}
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return nil, err
		}
		if line != "ok" {
			out = append(out, line)
		}
	}
	if err := rows.Err(); err != nil {
		if damaged(err) {
			return append(out, err.Error()), nil
		}
		return nil, err
	}
	return out, nil
}

// DamagedError says that the database is damaged and how to restore it.
func DamagedError(file string, findings []string) error {
	shown := findings
	if len(shown) > 5 {
		shown = append(shown[:5:5], fmt.Sprintf("… %d more", len(findings)-5))
	}
	dir := filepath.Dir(file)
	return fmt.Errorf(`%w: %s failed its integrity check (%s). The server will not serve from a damaged database. To restore, with the server stopped:
  1. from a backup: put the backup's %s in its place (and remove %s-wal and %s-shm);
  2. or salvage what SQLite can still read: sqlite3 %s .recover | sqlite3 %s.recovered, move the damaged file (with its -wal and -shm) aside, rename %s.recovered to %s;
  then check it with 'tally-server check-db --data %s' and start the server again.
The data folder %s also holds the server's identity (server.key, quic-keys), the admin token, the enrollment secret, trusted-issuers and products.toml: these are not in the database; keep them, or agents must enroll again`,
		store.ErrDamaged, file, strings.Join(shown, "; "), filepath.Base(file), file, file, file, file, file, file, dir, dir)
}

// CheckReport is what CheckFile found.
type CheckReport struct {
	Integrity  []string // PRAGMA integrity_check findings
	Invariants []string // seat invariants broken, licenses that disagree with their files
}

// OK reports whether nothing was found.
func (r CheckReport) OK() bool { return len(r.Integrity) == 0 && len(r.Invariants) == 0 }

// CheckFile checks a database without changing it: PRAGMA integrity_check
// on every page, then, if the pages are sound, the seat invariants and the
// licenses against their signed files (verify; nil trusts the columns).
// It opens the file read-only, so it may run while a server serves from
// it (WAL readers do not block the writer): it then sees the last commit.
func CheckFile(ctx context.Context, file string, opts Options) (CheckReport, error) {
	var r CheckReport
	q := url.Values{}
	q.Set("mode", "ro")
	q.Set("_query_only", "1")
	q.Set("_busy_timeout", "10000")
	ro, err := sql.Open("sqlite3", "file:"+file+"?"+q.Encode())
	if err != nil {
		return r, err
	}
	defer ro.Close()
	ro.SetMaxOpenConns(1)
	if err := ro.PingContext(ctx); err != nil {
		if damaged(err) {
			r.Integrity = []string{err.Error()}
			return r, nil
		}
		return r, fmt.Errorf("open database %s: %w", file, err)
	}
	if r.Integrity, err = pageCheck(ctx, ro, "integrity_check"); err != nil || len(r.Integrity) > 0 {
		return r, err
	}
	conn, err := ro.Conn(ctx)
	if err != nil {
		return r, err
	}
	defer conn.Close()
	// One read transaction: the invariants of one commit.
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return r, err
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK") //nolint:errcheck // a read transaction
	r.Invariants, err = Invariants(ctx, conn, opts)
	return r, err
}

// Invariants checks the seat invariants and the licenses against their
// signed files (opts.VerifyLicense; nil trusts the columns) on conn, which
// must be inside a transaction: a SQLite connection, or a PostgreSQL one
// from pgsql.Open (which reads these statements in SQLite's spelling). It
// returns the findings, none when the seats agree.
func Invariants(ctx context.Context, conn *sql.Conn, opts Options) ([]string, error) {
	if opts.Engine == nil {
		cat, err := catalog.Builtin()
		if err != nil {
			return nil, err
		}
		opts.Engine = engine.New(cat)
	}
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	var out []string
	tx := &Tx{conn: conn, Now: opts.Clock.Now(), lic: &licenseCache{verify: opts.VerifyLicense}}
	s, err := snapshot(tx)
	if err != nil {
		return nil, fmt.Errorf("read the seats: %w", err)
	}
	for _, v := range opts.Engine.Check(s, tx.Now) {
		out = append(out, v.String())
	}
	nl, err := checkNodeLocked(tx)
	if err != nil {
		return nil, fmt.Errorf("read the activations: %w", err)
	}
	for _, v := range nl {
		out = append(out, v.String())
	}
	us, err := checkUserSeats(tx)
	if err != nil {
		return nil, fmt.Errorf("read the user seats: %w", err)
	}
	out = append(out, us...)
	grants, err := readGrants(tx, opts.VerifyLicense)
	if err != nil {
		return nil, err
	}
	for _, id := range sortedMapKeys(grants) {
		if p := grants[id].problem; p != "" {
			out = append(out, p)
		}
	}
	return out, nil
}

// checkUserSeats verifies that each user license's counter equals the
// users holding one of its seats, and that they fit in its signed grant.
// It runs after checkNodeLocked, which loads the grants.
func checkUserSeats(tx *Tx) ([]string, error) {
	rows, err := tx.Query(`SELECT l.id, l.seats, l.held, (SELECT COUNT(*) FROM user_seats u WHERE u.license_id = l.id)
		FROM licenses l WHERE l.kind = ? ORDER BY l.id`, license.KindUser)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		var seats, held, users int
		if err := rows.Scan(&id, &seats, &held, &users); err != nil {
			return nil, err
		}
		if held != users {
			out = append(out, fmt.Sprintf("user license %s counts %d seats, %d users hold one", id, held, users))
		}
		if seats = tx.lic.seatsOf(id, seats); users > seats {
			out = append(out, fmt.Sprintf("user license %s grants %d seats; %d users hold one", id, seats, users))
		}
	}
	return out, rows.Err()
}
