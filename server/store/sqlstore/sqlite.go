// Package sqlstore is the server's store: the same SQL on two backends.
// SQLite, the embedded default, is one file in WAL mode with
// synchronous=FULL, written by a single connection whose transactions begin
// IMMEDIATE, read through a pool of read-only connections. PostgreSQL
// (postgres.go), for replicas, runs the same statements through
// server/store/pgsql, its writers serialized across replicas by one row.
//
// Writes go through one writer goroutine that batches concurrent jobs into
// one durable commit (group commit). A failing job rolls back alone (the
// batch is run again job by job), and each caller is answered only after
// the commit that holds its job has returned: the server commits before it
// acknowledges, at the cost of one fsync per batch instead of per request.
//
// What a node's request does (apply once, decide, answer) is the ledger's
// (server/ledger): this package runs it in those transactions and provides
// their reads and writes (ledgertx.go), and stores its answers as opaque
// bytes.
package sqlstore

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	_ "github.com/mattn/go-sqlite3" // the database/sql driver "sqlite3"

	"github.com/tallyhq/tally/common/buildinfo"
	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/engine"
	"github.com/tallyhq/tally/server/ledger"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Options tune a DB. Zero values take the defaults.
type Options struct {
	Clock  clock.Clock
	Logger *slog.Logger
	// MaxBatch bounds how many jobs share one commit (default 256).
	MaxBatch int
	// Readers is the size of the read pool (default 4).
	Readers int
	// CommitObserver, when set, is told the duration and size of every
	// batch commit (for metrics).
	CommitObserver func(d time.Duration, jobs int)
	// Engine decides licenses; default: the built-in catalog.
	Engine *engine.Engine
	// OnVerdicts, when set, is told the verdicts of every committed post
	// (for metrics).
	OnVerdicts func([]protocol.ProductVerdict)
	// RecordKey signs node-locked activation records (the server's key).
	RecordKey ed25519.PrivateKey
	// NoPostCache turns the writer's post cache off (hot.go): every post
	// reads its node and computer. For tests that compare the two.
	NoPostCache bool
	// VerifyLicense verifies a license row's signed file and returns what
	// it grants: seat decisions, usage and maintenance take the grant from
	// it, never from the row's columns. Nil trusts the columns (tests of
	// logic that import unsigned licenses).
	VerifyLicense func(file []byte) (license.Payload, error)
	// MaxPackages caps a computer's stored software set (default
	// DefaultMaxPackages): a full inventory or a delta that would pass it
	// is not stored, and the post says why.
	MaxPackages int
	// SkipQuickCheck skips PRAGMA quick_check at open, which reads every
	// page of the file (see docs/PERFORMANCE.md for its cost).
	SkipQuickCheck bool
	// NoSync turns off fsync (synchronous=OFF). Only for tests of logic,
	// never of durability: the server always runs with synchronous=FULL.
	NoSync bool
}

// DefaultMaxPackages is the default cap of a computer's stored software
// set: as many packages as one full inventory may carry.
const DefaultMaxPackages = 65_536

// DB is the SQLite store.
type DB struct {
	file   string
	engine *engine.Engine
	w      *sql.DB
	r      *sql.DB
	clock  clock.Clock
	log    *slog.Logger
	opts   Options
	jobs   chan *job
	quit   chan struct{}
	done   chan struct{}
	closed sync.Once
	mu     sync.RWMutex // guards isClosed against sends on jobs
	isShut bool

	pkgMu    sync.RWMutex
	pkgCache map[string]int64 // interned package IDs, filled after commit

	ledger *ledger.Ledger // what a node's request does; this package stores it

	licenses licenseCache
	ws       swScratch // the writer goroutine's buffers for software sets
	hot      *hotCache // the writer goroutine's post cache (hot.go)
	wc       *sql.Conn // the writer goroutine's connection, held for good

	// recog recognises applications in software sets (recognitions.go).
	recog recognizer

	// pg is set when the store is PostgreSQL (postgres.go).
	pg *pgState
}

var _ store.Store = (*DB)(nil)

// Tx is a write transaction as a job sees it: the writer's connection,
// inside its transaction, and the one "now" the job stamps on everything
// it writes.
//
// The writer runs BEGIN and COMMIT itself on a connection it holds, rather
// than through sql.Tx, because database/sql starts a goroutine for every
// query made in an sql.Tx (to close its rows should the transaction's
// context end), which the single writer paid for.
type Tx struct {
	conn     *sql.Conn
	Now      time.Time
	onCommit []func()
	// zone is the server's time zone, the engine's, in which the
	// sentences a transaction stores write their dates.
	zone *time.Location

	// The post cache (hot.go): a job of the post path has a scope, whose
	// statements are classified; any other job only records that it
	// wrote.
	cache *hotCache
	hot   *hotScope
	wrote bool

	lic *licenseCache
}

// Exec runs a statement that may change what the post cache holds
// (seats, allocations, licenses, nodes, any computer's row): the cache
// empties when the job commits. It is the default, so that a new kind of
// write costs at worst a re-read, never a stale answer.
func (tx *Tx) Exec(query string, args ...any) (sql.Result, error) {
	tx.changed(hotClear, 0)
	return tx.conn.ExecContext(context.Background(), query, args...)
}

// ExecComputer runs a statement that changes the row of computer id only:
// a post of that computer drops it from the post cache.
func (tx *Tx) ExecComputer(id int64, query string, args ...any) (sql.Result, error) {
	tx.changed(hotDropComputer, id)
	return tx.conn.ExecContext(context.Background(), query, args...)
}

// ExecUncached runs a statement that writes only what the post cache holds
// nothing of (applied records, audit, discards, product data, tasks,
// software sets, hints, a computer's last_seen and backlog, a node's
// max_seq).
func (tx *Tx) ExecUncached(query string, args ...any) (sql.Result, error) {
	tx.changed(hotNone, 0)
	return tx.conn.ExecContext(context.Background(), query, args...)
}

// ExecID runs an INSERT … RETURNING id that may change what the post cache
// holds (as Exec) and returns the new row's ID.
func (tx *Tx) ExecID(query string, args ...any) (int64, error) {
	tx.changed(hotClear, 0)
	return tx.insertID(query, args)
}

// ExecUncachedID is ExecID for a row the post cache holds nothing of (as
// ExecUncached).
func (tx *Tx) ExecUncachedID(query string, args ...any) (int64, error) {
	tx.changed(hotNone, 0)
	return tx.insertID(query, args)
}

// insertID reads the ID an INSERT returns: RETURNING is spelt the same on
// both backends, where LastInsertId exists only on SQLite.
func (tx *Tx) insertID(query string, args []any) (int64, error) {
	var id int64
	err := tx.conn.QueryRowContext(context.Background(), query, args...).Scan(&id)
	return id, err
}

// changed tells the post cache what a write changes (hot.go).
func (tx *Tx) changed(e hotEffect, computer int64) {
	if tx.hot == nil {
		tx.wrote = true
		return
	}
	tx.hot.note(e, computer)
}

// Query runs a read in the transaction (writes go through the Exec
// methods, which tell the post cache what they change).
func (tx *Tx) Query(query string, args ...any) (*sql.Rows, error) {
	return tx.conn.QueryContext(context.Background(), query, args...)
}

// QueryRow runs a read of at most one row in the transaction.
func (tx *Tx) QueryRow(query string, args ...any) *sql.Row {
	return tx.conn.QueryRowContext(context.Background(), query, args...)
}

// QueryRowContext is QueryRow, for code shared with the read pool.
func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return tx.conn.QueryRowContext(ctx, query, args...)
}

// OnCommit registers f to run after the transaction holding this job has
// committed (for in-memory caches that must not see uncommitted state).
func (tx *Tx) OnCommit(f func()) { tx.onCommit = append(tx.onCommit, f) }

type job struct {
	fn   func(*Tx) error
	done chan error
	hook []func()
}

// Open opens (creating if needed) the database at file, applies pending
// migrations and starts the writer.
func Open(file string, opts Options) (*DB, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	// The file must exist with restrictive permissions before SQLite
	// creates it with the process umask.
	if f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("open database %s: %w", file, err)
	} else {
		f.Close()
	}
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	if opts.NoSync {
		q.Set("_synchronous", "OFF")
	}
	q.Set("_busy_timeout", "10000")
	q.Set("_foreign_keys", "on")
	q.Set("_txlock", "immediate")
	q.Set("_stmt_cache_size", "256") // re-preparing each statement was a large part of a post's CPU
	// The writer's page cache is 32 MiB instead of SQLite's 2 MiB because
	// posts read their nodes' and computers' pages at random across the
	// fleet, which the small cache sent to the operating system
	// (docs/PERFORMANCE.md has the figures, and the resident memory it
	// costs outside --memory-limit).
	q.Set("_cache_size", "-32768")
	w, err := sql.Open("sqlite3", "file:"+file+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", file, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := w.Ping(); err != nil {
		w.Close()
		if damaged(err) {
			return nil, DamagedError(file, []string{err.Error()})
		}
		return nil, fmt.Errorf("open database %s: %w", file, err)
	}
	// A damaged file is refused before anything is served from it (or
	// written to it): errors would otherwise appear only on the damaged
	// path, as internal errors, long after.
	if !opts.SkipQuickCheck {
		findings, err := pageCheck(context.Background(), w, "quick_check")
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("check database %s: %w", file, err)
		}
		if len(findings) > 0 {
			w.Close()
			return nil, DamagedError(file, findings)
		}
	}
	db := newDB(opts, w)
	db.file = file
	// The writer checkpoints the WAL ten times less often than SQLite's
	// default, so that a page every post dirties is copied once for many
	// posts; the WAL is fsynced at every commit whatever its size, so
	// durability does not change. (The setting is the connection's; the
	// writer keeps its one connection for good.)
	if _, err := w.Exec(`PRAGMA wal_autocheckpoint = 10000`); err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s: %w", file, err)
	}
	if err := db.migrate(math.MaxInt); err != nil {
		w.Close()
		if damaged(err) {
			return nil, DamagedError(file, []string{err.Error()})
		}
		return nil, err
	}
	if err := db.loadApplications(); err != nil {
		w.Close()
		return nil, err
	}
	rq := url.Values{}
	rq.Set("mode", "ro")
	rq.Set("_query_only", "1")
	rq.Set("_busy_timeout", "10000")
	rq.Set("_foreign_keys", "on")
	rq.Set("_stmt_cache_size", "64")
	r, err := sql.Open("sqlite3", "file:"+file+"?"+rq.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s for reading: %w", file, err)
	}
	r.SetMaxOpenConns(opts.Readers)
	r.SetMaxIdleConns(opts.Readers)
	db.r = r
	go db.writer()
	return db, nil
}

// fill sets the defaults of the zero fields.
func (opts *Options) fill() error {
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.Readers <= 0 {
		opts.Readers = 4
	}
	if opts.MaxPackages <= 0 {
		opts.MaxPackages = DefaultMaxPackages
	}
	if opts.Engine == nil {
		cat, err := catalog.Builtin()
		if err != nil {
			return err
		}
		opts.Engine = engine.New(cat)
	}
	return nil
}

// newDB makes the store around its writer's handle w; the caller opens
// the read pool and starts the writer.
func newDB(opts Options, w *sql.DB) *DB {
	db := &DB{engine: opts.Engine, pkgCache: map[string]int64{}, w: w, clock: opts.Clock, log: opts.Logger, opts: opts,
		hot:      newHotCache(opts.NoPostCache),
		licenses: licenseCache{verify: opts.VerifyLicense},
		jobs:     make(chan *job, opts.MaxBatch*4), quit: make(chan struct{}), done: make(chan struct{})}
	db.ledger = ledger.New(opts.Engine, ledgerBackend{db}, ledger.Options{Logger: opts.Logger, OnVerdicts: opts.OnVerdicts, RecordKey: opts.RecordKey})
	return db
}

// Close stops accepting writes, finishes the queued ones, and closes the
// database. It is safe to call more than once.
func (db *DB) Close() error {
	var err error
	db.closed.Do(func() {
		db.mu.Lock()
		db.isShut = true
		close(db.quit)
		db.mu.Unlock()
		<-db.done
		err = errors.Join(db.r.Close(), db.w.Close())
	})
	return err
}

// write runs fn in a write transaction shared with other concurrent jobs and
// returns once that transaction has committed (or failed). A job that
// returns an error is rolled back alone.
func (db *DB) write(ctx context.Context, fn func(*Tx) error) error {
	j := &job{fn: fn, done: make(chan error, 1)}
	db.mu.RLock()
	if db.isShut {
		db.mu.RUnlock()
		return store.ErrClosed
	}
	select {
	case db.jobs <- j:
		db.mu.RUnlock()
	case <-ctx.Done():
		db.mu.RUnlock()
		return ctx.Err()
	}
	// Once queued, the job will run: wait for its outcome even if ctx ends,
	// so the caller never mistakes a committed change for a failed one.
	err := <-j.done
	if diskFull(err) {
		return fmt.Errorf("%w: the disk holding %s is full: nothing was changed; free space on it and try again (agents' posts wait in their spools and are sent again): %w",
			store.ErrDiskFull, filepath.Dir(db.file), err)
	}
	return err
}

func (db *DB) writer() {
	defer close(db.done)
	conn, err := db.w.Conn(context.Background())
	if err != nil {
		// The pool's one connection was opened and pinged by Open: this
		// is not expected. Answer every job with the error.
		db.log.Error("writer: no database connection", "err", err)
		for {
			select {
			case j := <-db.jobs:
				j.done <- fmt.Errorf("write: %w", err)
			case <-db.quit:
				return
			}
		}
	}
	db.wc = conn
	defer func() { db.wc.Close() }()
	batch := make([]*job, 0, db.opts.MaxBatch)
	for {
		var first *job
		select {
		case first = <-db.jobs:
		case <-db.quit:
			// Drain what was queued before Close.
			for {
				select {
				case j := <-db.jobs:
					db.runBatch([]*job{j})
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
		if len(db.jobs) == 0 {
			// Alone in the queue: let the goroutines that are about to
			// queue theirs run first (with one CPU they wait for this
			// one), so that they share the commit.
			runtime.Gosched()
		}
	fill:
		for len(batch) < db.opts.MaxBatch {
			select {
			case j := <-db.jobs:
				batch = append(batch, j)
			default:
				break fill
			}
		}
		db.runBatch(batch)
	}
}

func (db *DB) runBatch(batch []*job) {
	start := time.Now()
	// Optimistically, every job of the batch shares one transaction with
	// no savepoint between them, because a savepoint and its release were
	// a large part of a post's time in the writer. Should one job fail,
	// the whole transaction is rolled back and each job runs again in a
	// transaction of its own, so that the failure rolls back alone: jobs
	// are closures that can run again, and a job's effects reach memory
	// only through OnCommit hooks.
	if len(batch) > 1 {
		if db.runTogether(batch, start) {
			return
		}
		db.licenses.reset() // it may have been filled inside what rolled back
		db.recog.invalidate()
		for _, j := range batch {
			db.runTogether([]*job{j}, time.Now())
		}
		return
	}
	db.runTogether(batch, start)
}

// runTogether runs jobs in one transaction. With one job, it always
// answers it; with several, it answers them only when all succeed and the
// transaction commits, and otherwise rolls back and returns false.
func (db *DB) runTogether(batch []*job, start time.Time) bool {
	single := len(batch) == 1
	ctx := context.Background()
	gen, err := db.begin(ctx)
	if errors.Is(err, sql.ErrConnDone) || (err != nil && db.pg != nil) {
		// database/sql dropped the connection (the driver called it bad),
		// or PostgreSQL's connection failed: take a new one from the pool.
		if conn, cerr := db.w.Conn(ctx); cerr == nil {
			db.wc.Close()
			db.wc = conn
			gen, err = db.begin(ctx)
		}
	}
	if err != nil {
		for _, j := range batch {
			j.done <- fmt.Errorf("begin transaction: %w", err)
		}
		return true
	}
	db.hot.beginTx()
	for _, j := range batch {
		if err := db.runJob(j); err != nil {
			if _, rbErr := db.wc.ExecContext(ctx, "ROLLBACK"); rbErr != nil {
				err = errors.Join(err, fmt.Errorf("rollback: %w", rbErr))
			}
			if single {
				j.done <- err
				return true
			}
			return false
		}
	}
	if _, err := db.wc.ExecContext(ctx, "COMMIT"); err != nil {
		// SQLite may leave the transaction open when COMMIT fails; a
		// ROLLBACK when there is none does no harm.
		_, _ = db.wc.ExecContext(ctx, "ROLLBACK")
		db.licenses.reset() // it may have been filled with what did not commit
		db.recog.invalidate()
		db.log.Error("commit failed", "jobs", len(batch), "err", err)
		for _, j := range batch {
			j.done <- fmt.Errorf("commit: %w", err)
		}
		return true
	}
	if db.pg != nil {
		db.pg.gen = gen
	}
	if db.opts.CommitObserver != nil {
		db.opts.CommitObserver(time.Since(start), len(batch))
	}
	for _, j := range batch {
		for _, f := range j.hook {
			f()
		}
		j.done <- nil
	}
	return true
}

func (db *DB) runJob(j *job) (err error) {
	t := &Tx{conn: db.wc, Now: db.clock.Now(), cache: db.hot, zone: db.engine.Zone(), lic: &db.licenses}
	j.hook = nil
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store job panicked: %v", p)
		}
		db.hot.jobDone(t.hot, t.wrote)
		if err == nil {
			j.hook = t.onCommit
			if t.hot == nil && t.wrote {
				j.hook = append(j.hook, db.hot.clear)
			}
		}
	}()
	return j.fn(t)
}

// migrate applies the embedded migrations not yet recorded, up to version
// through, each in its own transaction, in the order of their numeric
// prefix. A migration with a Go step (migrationStep) runs it after its SQL,
// in the same transaction. A database newer than this program is refused.
func (db *DB) migrate(through int) error {
	if _, err := db.w.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at INTEGER NOT NULL,
		program_version TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	migs, err := listMigrations(migrationFS, "migrations")
	if err != nil {
		return err
	}
	var current int
	if err := db.w.QueryRow(`SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if len(migs) > 0 && current > migs[len(migs)-1].version {
		return fmt.Errorf("database schema version %d is newer than this tally-server (%s) knows (%d): run a newer tally-server",
			current, buildinfo.Version(), migs[len(migs)-1].version)
	}
	for _, m := range migs {
		if m.version <= current || m.version > through {
			continue
		}
		body, err := migrationFS.ReadFile(path.Join("migrations", m.name))
		if err != nil {
			return fmt.Errorf("read migration %s: %w", m.name, err)
		}
		tx, err := db.w.Begin()
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if step := migrationStep(m.version); step != nil {
			if err := step(tx); err != nil {
				tx.Rollback()
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
		}
		if _, err := tx.Exec(`INSERT INTO schema_migrations(version, name, applied_at, program_version) VALUES (?, ?, ?, ?)`,
			m.version, m.name, ms(db.clock.Now()), buildinfo.Version()); err != nil {
			tx.Rollback()
			return fmt.Errorf("record migration %s: %w", m.name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit migration %s: %w", m.name, err)
		}
		db.log.Info("applied database migration", "version", m.version, "name", m.name)
	}
	return nil
}

// migrationStep returns the Go step of a migration, if it has one: the
// part of a schema change that SQL cannot do.
func migrationStep(version int) func(*sql.Tx) error {
	switch version {
	case 7:
		return convertSoftwareSets
	}
	return nil
}

// Engine returns the license engine the store decides with.
func (db *DB) Engine() *engine.Engine { return db.engine }

// SchemaVersion returns the highest applied migration.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := db.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// ms converts a time to the stored form: unix milliseconds.
func ms(t time.Time) int64 { return t.UnixMilli() }

// fromMS converts a stored time back.
func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// fromNullMS converts a nullable stored time back.
func fromNullMS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}
