// Package storemigrate moves a stopped server's SQLite database into an
// empty PostgreSQL database: every table, in one PostgreSQL transaction
// that commits only once the row counts and the seat invariants have been
// checked on what it wrote, so that a failed move leaves the target as
// empty as it found it.
package storemigrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tallyhq/tally/server/store/pgsql"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

// Errors a caller may tell apart.
var (
	// ErrSchemaVersion: the SQLite database is at another schema version
	// than this program's PostgreSQL schema.
	ErrSchemaVersion = errors.New("schema versions differ")
	// ErrNotEmpty: the target already holds data.
	ErrNotEmpty = errors.New("the target database is not empty")
	// ErrCheck: the seats disagree (in the source, or in what was copied),
	// or the row counts differ.
	ErrCheck = errors.New("check failed")
)

// seeded are the rows the schema's own migrations insert, alike on both
// backends: the target counts as empty with them, and they are replaced by
// the source's.
var seeded = map[string]string{"statuses": "builtin = 1"}

// Table is one table moved and its rows.
type Table struct {
	Name string
	Rows int64
}

// Report is what Run moved.
type Report struct {
	SchemaVersion int
	Tables        []Table // in the order they were copied (parents first)
}

// Rows is the number of rows moved in all.
func (r Report) Rows() int64 {
	var n int64
	for _, t := range r.Tables {
		n += t.Rows
	}
	return n
}

// Run copies the SQLite database file (which it only reads, and which no
// server may be writing: take the data folder's lock) into the PostgreSQL
// database at target, creating its schema. check is what the seat
// invariants are checked with on both sides (the data folder's catalog and
// license verifier). It refuses a source whose seats disagree, a source at
// another schema version, and a target that holds data.
func Run(ctx context.Context, file, target string, check sqlstore.Options) (Report, error) {
	var rep Report
	where := Redact(target)
	src, err := openSource(ctx, file)
	if err != nil {
		return rep, err
	}
	defer src.close()
	if rep.SchemaVersion, err = src.schemaVersion(ctx); err != nil {
		return rep, err
	}
	want, err := sqlstore.PostgresSchemaVersion()
	if err != nil {
		return rep, err
	}
	switch {
	case rep.SchemaVersion < want:
		return rep, fmt.Errorf("%w: %s is at schema version %d and this tally-server's PostgreSQL schema is at %d: upgrade first (start this tally-server once on the data folder with 'tally-server serve', which applies the migrations, stop it), then migrate",
			ErrSchemaVersion, file, rep.SchemaVersion, want)
	case rep.SchemaVersion > want:
		return rep, fmt.Errorf("%w: %s is at schema version %d, newer than this tally-server knows (%d): run migrate with the tally-server that last served it",
			ErrSchemaVersion, file, rep.SchemaVersion, want)
	}
	findings, err := sqlstore.Invariants(ctx, src.conn, check)
	if err != nil {
		return rep, fmt.Errorf("check the seats of %s: %w", file, err)
	}
	if len(findings) > 0 {
		return rep, fmt.Errorf("%w: the seats of %s disagree with its licenses (%s): start the server on it, run 'tally-server maintenance run', stop it, then migrate",
			ErrCheck, file, summary(findings))
	}
	tables, err := src.tables(ctx)
	if err != nil {
		return rep, err
	}

	// The schema, as a server opening the database would create it.
	pgs, err := sqlstore.OpenPostgres(ctx, target, check)
	if err != nil {
		return rep, err
	}
	if err := pgs.Close(); err != nil {
		return rep, fmt.Errorf("close %s: %w", where, err)
	}
	db, err := pgsql.Open(ctx, target, 1)
	if err != nil {
		return rep, fmt.Errorf("open database %s: %w", where, err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return rep, fmt.Errorf("connect to %s: %w", where, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return rep, fmt.Errorf("begin on %s: %w", where, err)
	}
	committed := false
	defer func() {
		if !committed {
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	err = conn.Raw(func(dc any) error {
		pc, ok := dc.(interface{ PgxConn() *pgx.Conn })
		if !ok {
			return fmt.Errorf("the PostgreSQL driver returned an unexpected connection (%T)", dc)
		}
		rep.Tables, err = copyAll(ctx, src, pc.PgxConn(), tables)
		return err
	})
	if errors.Is(err, ErrNotEmpty) || errors.Is(err, ErrSchemaVersion) {
		return rep, err
	}
	if err != nil {
		return rep, fmt.Errorf("%w; nothing was committed to %s", err, where)
	}
	findings, err = sqlstore.Invariants(ctx, conn, check)
	if err != nil {
		return rep, fmt.Errorf("check the seats on %s: %w; nothing was committed", where, err)
	}
	if len(findings) > 0 {
		return rep, fmt.Errorf("%w: after the copy the seats on %s disagree with its licenses (%s); nothing was committed",
			ErrCheck, where, summary(findings))
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return rep, fmt.Errorf("commit on %s: %w", where, err)
	}
	committed = true
	return rep, nil
}

// copyAll copies tables into pg inside its transaction, checks the counts
// and moves each identity column's sequence past the IDs copied.
func copyAll(ctx context.Context, src *source, pg *pgx.Conn, tables []*table) ([]Table, error) {
	// Replicas already serving from the target wait for the commit, and
	// drop their caches after it.
	if _, err := pg.Exec(ctx, `UPDATE writer_generation SET gen = gen + 1`); err != nil {
		return nil, fmt.Errorf("lock the target's writers: %w", err)
	}
	if err := registerCitext(ctx, pg); err != nil {
		return nil, err
	}
	cols, err := targetColumns(ctx, pg)
	if err != nil {
		return nil, err
	}
	var full []string
	for _, t := range tables {
		if err := t.match(cols); err != nil {
			return nil, err
		}
		q := `SELECT EXISTS (SELECT 1 FROM ` + ident(t.pgName)
		if cond, ok := seeded[t.name]; ok {
			q += ` WHERE NOT (` + cond + `)`
		}
		var held bool
		if err := pg.QueryRow(ctx, q+`)`).Scan(&held); err != nil {
			return nil, fmt.Errorf("read %s on the target: %w", t.name, err)
		}
		if held {
			full = append(full, t.name)
		}
	}
	if len(full) > 0 {
		return nil, fmt.Errorf("%w: it holds %s: migrate only into a new, empty database (createdb), or drop what it holds first",
			ErrNotEmpty, strings.Join(full, ", "))
	}
	for t, cond := range seeded {
		if _, ok := cols[t]; ok {
			if _, err := pg.Exec(ctx, `DELETE FROM `+ident(t)+` WHERE `+cond); err != nil {
				return nil, fmt.Errorf("clear %s on the target: %w", t, err)
			}
		}
	}
	seqs, err := src.sequences(ctx)
	if err != nil {
		return nil, err
	}
	var out []Table
	for _, t := range tables {
		n, err := copyTable(ctx, src, pg, t)
		if err != nil {
			return nil, err
		}
		var got int64
		if err := pg.QueryRow(ctx, `SELECT COUNT(*) FROM `+ident(t.pgName)).Scan(&got); err != nil {
			return nil, fmt.Errorf("count %s on the target: %w", t.name, err)
		}
		if got != t.rows || n != t.rows {
			return nil, fmt.Errorf("%w: %s has %d rows in SQLite, %d copied, %d on the target", ErrCheck, t.name, t.rows, n, got)
		}
		for _, c := range t.identity {
			if err := restartIdentity(ctx, pg, t.pgName, c, seqs[t.name]); err != nil {
				return nil, err
			}
		}
		out = append(out, Table{Name: t.name, Rows: n})
	}
	return out, nil
}

// copyTable streams one table from SQLite into COPY.
func copyTable(ctx context.Context, src *source, pg *pgx.Conn, t *table) (int64, error) {
	names := make([]string, len(t.cols))
	quoted := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i] = c.pgName
		quoted[i] = `"` + strings.ReplaceAll(c.name, `"`, `""`) + `"`
	}
	rows, err := src.conn.QueryContext(ctx, `SELECT `+strings.Join(quoted, ", ")+` FROM `+ident(t.name))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", t.name, err)
	}
	defer rows.Close()
	r := &rowSource{t: t, rows: rows, raw: make([]any, len(t.cols)), ptrs: make([]any, len(t.cols)), vals: make([]any, len(t.cols))}
	for i := range r.raw {
		r.ptrs[i] = &r.raw[i]
	}
	n, err := pg.CopyFrom(ctx, pgx.Identifier{t.pgName}, names, r)
	if err != nil {
		return 0, fmt.Errorf("copy %s: %w", t.name, err)
	}
	return n, nil
}

// rowSource hands the rows of a SQLite query to COPY, converted to the
// types of the target's columns.
type rowSource struct {
	t    *table
	rows *sql.Rows
	raw  []any
	ptrs []any
	vals []any
	n    int64
	err  error
}

func (r *rowSource) Next() bool {
	if r.err != nil || !r.rows.Next() {
		return false
	}
	r.n++
	return true
}

func (r *rowSource) Values() ([]any, error) {
	if err := r.rows.Scan(r.ptrs...); err != nil {
		r.err = fmt.Errorf("read %s: %w", r.t.name, err)
		return nil, r.err
	}
	for i, c := range r.t.cols {
		v, err := convert(r.raw[i], c.pgType)
		if err != nil {
			r.err = fmt.Errorf("%s row %d, column %s: %w", r.t.name, r.n, c.name, err)
			return nil, r.err
		}
		r.vals[i] = v
	}
	return r.vals, nil
}

func (r *rowSource) Err() error {
	if r.err != nil {
		return r.err
	}
	if err := r.rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", r.t.name, err)
	}
	return nil
}

// registerCitext lets COPY send citext columns, whose binary form is
// text's, as pgx knows no codec for the extension's type.
func registerCitext(ctx context.Context, pg *pgx.Conn) error {
	var oid uint32
	err := pg.QueryRow(ctx, `SELECT oid FROM pg_type WHERE typname = 'citext'`).Scan(&oid)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up citext: %w", err)
	}
	pg.TypeMap().RegisterType(&pgtype.Type{Name: "citext", OID: oid, Codec: pgtype.TextCodec{}})
	return nil
}

// restartIdentity sets the sequence of identity column col of tbl past
// the IDs copied, and past the highest ID SQLite ever handed out (an
// AUTOINCREMENT table's sqlite_sequence), so that no ID is used twice.
func restartIdentity(ctx context.Context, pg *pgx.Conn, tbl, col string, used int64) error {
	var top int64
	if err := pg.QueryRow(ctx, `SELECT COALESCE(MAX(`+ident(col)+`), 0) FROM `+ident(tbl)).Scan(&top); err != nil {
		return fmt.Errorf("read the highest %s.%s: %w", tbl, col, err)
	}
	top = max(top, used)
	if top == 0 {
		return nil
	}
	if _, err := pg.Exec(ctx, `SELECT setval(pg_get_serial_sequence($1, $2), $3)`, ident(tbl), col, top); err != nil {
		return fmt.Errorf("move the sequence of %s.%s: %w", tbl, col, err)
	}
	return nil
}

// targetColumns reads the target's tables, their columns and types.
func targetColumns(ctx context.Context, pg *pgx.Conn) (map[string]map[string]pgColumn, error) {
	rows, err := pg.Query(ctx, `SELECT table_name, column_name, udt_name, is_identity = 'YES'
		FROM information_schema.columns WHERE table_schema = current_schema()`)
	if err != nil {
		return nil, fmt.Errorf("read the target's columns: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]pgColumn{}
	for rows.Next() {
		var t, c string
		var pc pgColumn
		if err := rows.Scan(&t, &c, &pc.typ, &pc.identity); err != nil {
			return nil, fmt.Errorf("read the target's columns: %w", err)
		}
		if out[t] == nil {
			out[t] = map[string]pgColumn{}
		}
		out[t][c] = pc
	}
	return out, rows.Err()
}

type pgColumn struct {
	typ      string // udt_name: int8, text, citext, bytea, …
	identity bool
}

// ident quotes a table or column name for PostgreSQL.
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// summary lists the first findings.
func summary(findings []string) string {
	shown := findings
	if len(shown) > 3 {
		shown = append(shown[:3:3], fmt.Sprintf("and %d more", len(findings)-3))
	}
	return strings.Join(shown, "; ")
}

// Redact is the PostgreSQL URL addr without its password (in the user
// part or the query), for messages.
func Redact(addr string) string {
	u, err := url.Parse(addr)
	if err != nil {
		return "the PostgreSQL database"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
