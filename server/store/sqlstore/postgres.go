package sqlstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/tallyhq/tally/common/buildinfo"
	"github.com/tallyhq/tally/server/store/pgsql"
)

//go:embed pgmigrations/*.sql
var pgMigrationFS embed.FS

// pgState is what the writer knows of a PostgreSQL store: the generation
// of the last write it committed.
type pgState struct {
	where string // the server's address, without a password
	gen   int64
}

// Lock keys of the store's PostgreSQL advisory locks.
const pgMigrateLock = 0x7a11_0001

// IsPostgresURL reports whether a --store value names a PostgreSQL
// database rather than a SQLite file.
func IsPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// OpenPostgres opens the PostgreSQL database at addr (a postgres:// URL),
// applies pending migrations (pgmigrations/) and starts the writer.
//
// Several servers may open the same database (replicas). Every write
// transaction begins by updating the one row of writer_generation, which
// serializes writers across them as BEGIN IMMEDIATE does on SQLite, so the
// ledger's reads and writes see every seat committed before them; the
// generation it returns tells the writer whether another replica wrote
// since its last commit, and its caches (post cache, licenses,
// application rules) are then dropped and its application products read
// again.
func OpenPostgres(ctx context.Context, addr string, opts Options) (*DB, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	where := redactURL(addr)
	w, err := pgsql.Open(ctx, addr, 2)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", where, err)
	}
	db := newDB(opts, w)
	db.pg = &pgState{where: where, gen: -1}
	db.file = where
	if err := db.migratePostgres(ctx); err != nil {
		w.Close()
		return nil, err
	}
	if err := db.loadApplications(); err != nil {
		w.Close()
		return nil, err
	}
	r, err := pgsql.Open(ctx, addr, opts.Readers)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s for reading: %w", where, err)
	}
	db.r = r
	go db.writer()
	return db, nil
}

// begin opens the writer's transaction. On PostgreSQL it returns the
// generation the transaction will commit.
func (db *DB) begin(ctx context.Context) (int64, error) {
	if db.pg == nil {
		_, err := db.wc.ExecContext(ctx, "BEGIN IMMEDIATE")
		return 0, err
	}
	if _, err := db.wc.ExecContext(ctx, "BEGIN"); err != nil {
		return 0, err
	}
	var gen int64
	if err := db.wc.QueryRowContext(ctx, `UPDATE writer_generation SET gen = gen + 1 RETURNING gen`).Scan(&gen); err != nil {
		_, _ = db.wc.ExecContext(ctx, "ROLLBACK")
		return 0, fmt.Errorf("take the writer's lock: %w", err)
	}
	if gen != db.pg.gen+1 {
		// Another replica wrote since this one last committed.
		db.hot.clear()
		db.licenses.reset()
		db.recog.invalidate()
		if err := db.syncApplications(ctx); err != nil {
			_, _ = db.wc.ExecContext(ctx, "ROLLBACK")
			return 0, err
		}
	}
	return gen, nil
}

// migratePostgres applies the PostgreSQL migrations not yet recorded, all
// in one transaction under an advisory lock, so that replicas starting
// together apply each once.
func (db *DB) migratePostgres(ctx context.Context) error {
	migs, err := listMigrations(pgMigrationFS, "pgmigrations")
	if err != nil {
		return err
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", db.pg.where, err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`SELECT pg_advisory_xact_lock(?)`, pgMigrateLock); err != nil {
		return fmt.Errorf("migrate %s: %w", db.pg.where, err)
	}
	if _, err := tx.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
		version BIGINT PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at BIGINT NOT NULL,
		program_version TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var current int
	if err := tx.QueryRow(`SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if len(migs) > 0 && current > migs[len(migs)-1].version {
		return fmt.Errorf("database schema version %d is newer than this tally-server (%s) knows (%d): run a newer tally-server",
			current, buildinfo.Version(), migs[len(migs)-1].version)
	}
	applied := 0
	for _, m := range migs {
		if m.version <= current {
			continue
		}
		body, err := pgMigrationFS.ReadFile(path.Join("pgmigrations", m.name))
		if err != nil {
			return fmt.Errorf("read migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(string(body)); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(`INSERT INTO schema_migrations(version, name, applied_at, program_version) VALUES (?, ?, ?, ?)`,
			m.version, m.name, ms(db.clock.Now()), buildinfo.Version()); err != nil {
			return fmt.Errorf("record migration %s: %w", m.name, err)
		}
		applied++
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit migrations: %w", err)
	}
	if applied > 0 {
		db.log.Info("applied database migrations", "count", applied, "database", db.pg.where)
	}
	return nil
}

type migration struct {
	version int
	name    string
}

// listMigrations lists the migrations of dir in fsys in the order of their
// numeric prefix.
func listMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var migs []migration
	for _, e := range entries {
		v, _, ok := strings.Cut(e.Name(), "_")
		n, err := strconv.Atoi(v)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and '_'", e.Name())
		}
		migs = append(migs, migration{n, e.Name()})
	}
	sort.Slice(migs, func(i, j int) bool { return migs[i].version < migs[j].version })
	return migs, nil
}

// redactURL returns addr with its password replaced, for messages.
func redactURL(addr string) string {
	u, err := url.Parse(addr)
	if err != nil {
		return "the PostgreSQL database"
	}
	return u.Redacted()
}

// Refresh brings this replica's caches and application products up to
// what the database holds, by running an empty write transaction (its
// beginning compares the generations). On SQLite there is nothing to do.
func (db *DB) Refresh(ctx context.Context) error {
	if db.pg == nil {
		return nil
	}
	return db.write(ctx, func(*Tx) error { return nil })
}

// PostgresSchemaVersion is the number of the newest PostgreSQL migration
// this program carries: a SQLite database moves to PostgreSQL only at the
// same number, as the two backends number their migrations alike.
func PostgresSchemaVersion() (int, error) {
	migs, err := listMigrations(pgMigrationFS, "pgmigrations")
	if err != nil {
		return 0, err
	}
	if len(migs) == 0 {
		return 0, fmt.Errorf("this tally-server carries no PostgreSQL migrations")
	}
	return migs[len(migs)-1].version, nil
}
