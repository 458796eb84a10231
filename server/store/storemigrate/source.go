package storemigrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	_ "github.com/mattn/go-sqlite3" // the database/sql driver "sqlite3"

	"github.com/tallyhq/tally/server/store/pgsql"
)

// source is the SQLite database, read in one read transaction so that
// every table is read as of one commit.
type source struct {
	db   *sql.DB
	conn *sql.Conn
}

// openSource opens file read-only.
func openSource(ctx context.Context, file string) (*source, error) {
	if _, err := os.Stat(file); err != nil {
		return nil, fmt.Errorf("open database %s: %w", file, err)
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Set("_query_only", "1")
	q.Set("_busy_timeout", "10000")
	db, err := sql.Open("sqlite3", "file:"+file+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", file, err)
	}
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", file, err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		conn.Close()
		db.Close()
		return nil, fmt.Errorf("read database %s: %w", file, err)
	}
	return &source{db: db, conn: conn}, nil
}

func (s *source) close() {
	_, _ = s.conn.ExecContext(context.Background(), "ROLLBACK")
	s.conn.Close()
	s.db.Close()
}

// schemaVersion is the newest migration applied to the source.
func (s *source) schemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := s.conn.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read the schema version (is it a tally-server database?): %w", err)
	}
	return int(v.Int64), nil
}

// sequences reads sqlite_sequence: the highest ID each AUTOINCREMENT
// table has handed out, deleted rows included.
func (s *source) sequences(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	var n int
	if err := s.conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_sequence'`).Scan(&n); err != nil || n == 0 {
		return out, err
	}
	rows, err := s.conn.QueryContext(ctx, `SELECT name, seq FROM sqlite_sequence`)
	if err != nil {
		return nil, fmt.Errorf("read sqlite_sequence: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var seq int64
		if err := rows.Scan(&name, &seq); err != nil {
			return nil, fmt.Errorf("read sqlite_sequence: %w", err)
		}
		out[name] = seq
	}
	return out, rows.Err()
}

// table is a source table: its columns, the tables it references, its
// rows, and (once matched) its identity columns on the target.
type table struct {
	name     string
	pgName   string // its name on the target, once matched
	cols     []column
	parents  []string
	rows     int64
	identity []string
}

type column struct {
	name   string
	pgName string // its name on the target, once matched
	pgType string // the target column's udt_name, once matched
}

// tables lists the source's tables, parents before the tables that
// reference them, with their columns and row counts.
func (s *source) tables(ctx context.Context) ([]*table, error) {
	rows, err := s.conn.QueryContext(ctx, `SELECT name FROM sqlite_master
		WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name <> 'schema_migrations' ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list the tables: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list the tables: %w", err)
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list the tables: %w", err)
	}
	byName := map[string]*table{}
	for _, n := range names {
		t := &table{name: n}
		if err := s.describe(ctx, t); err != nil {
			return nil, err
		}
		byName[n] = t
	}
	return order(byName)
}

// describe reads t's columns (PRAGMA table_info), the tables it
// references (PRAGMA foreign_key_list) and its row count.
func (s *source) describe(ctx context.Context, t *table) error {
	q := `"` + strings.ReplaceAll(t.name, `"`, `""`) + `"`
	rows, err := s.conn.QueryContext(ctx, `SELECT name FROM pragma_table_info(?) ORDER BY cid`, t.name)
	if err != nil {
		return fmt.Errorf("read the columns of %s: %w", t.name, err)
	}
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.name); err != nil {
			rows.Close()
			return fmt.Errorf("read the columns of %s: %w", t.name, err)
		}
		t.cols = append(t.cols, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the columns of %s: %w", t.name, err)
	}
	rows, err = s.conn.QueryContext(ctx, `SELECT DISTINCT "table" FROM pragma_foreign_key_list(?)`, t.name)
	if err != nil {
		return fmt.Errorf("read the foreign keys of %s: %w", t.name, err)
	}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return fmt.Errorf("read the foreign keys of %s: %w", t.name, err)
		}
		t.parents = append(t.parents, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the foreign keys of %s: %w", t.name, err)
	}
	if err := s.conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+q).Scan(&t.rows); err != nil {
		return fmt.Errorf("count %s: %w", t.name, err)
	}
	return nil
}

// order sorts tables so that every table comes after the tables it
// references (a table referencing itself is one COPY statement, whose
// foreign keys PostgreSQL checks at its end).
func order(byName map[string]*table) ([]*table, error) {
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var out []*table
	var visit func(n string, path []string) error
	visit = func(n string, path []string) error {
		switch state[n] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("the tables' foreign keys form a cycle (%s → %s): they cannot be copied parents first", strings.Join(path, " → "), n)
		}
		state[n] = visiting
		t := byName[n]
		for _, p := range t.parents {
			if p == n {
				continue
			}
			if _, ok := byName[p]; !ok {
				return fmt.Errorf("table %s references %s, which the database does not have", n, p)
			}
			if err := visit(p, append(path, n)); err != nil {
				return err
			}
		}
		state[n] = done
		out = append(out, t)
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// match takes the target's names and types for t and its columns, and
// its identity columns; a table or column the target lacks means the two
// schemas differ. A name on the target is the store's name as its
// statements reach PostgreSQL (pgsql.Rewrite), which is how the
// PostgreSQL schema was created too.
func (t *table) match(target map[string]map[string]pgColumn) error {
	t.pgName = pgsql.Rewrite(t.name)
	cols := target[t.pgName]
	if cols == nil {
		return fmt.Errorf("%w: the target has no table %s", ErrSchemaVersion, t.pgName)
	}
	have := map[string]bool{}
	for i, c := range t.cols {
		name := pgsql.Rewrite(c.name)
		pc, ok := cols[name]
		if !ok {
			return fmt.Errorf("%w: the target's table %s has no column %s", ErrSchemaVersion, t.pgName, name)
		}
		t.cols[i].pgName, t.cols[i].pgType = name, pc.typ
		have[name] = true
	}
	for name, pc := range cols {
		if pc.identity && have[name] {
			t.identity = append(t.identity, name)
		}
	}
	sort.Strings(t.identity)
	return nil
}

// convert turns a value as SQLite stored it (its storage class may differ
// from the column's declared type) into the Go type COPY sends for the
// target column's type.
func convert(v any, pgType string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch pgType {
	case "int2", "int4", "int8":
		return toInt(v)
	case "float4", "float8", "numeric":
		return toFloat(v)
	case "bool":
		n, err := toInt(v)
		return n != 0, err
	case "text", "varchar", "bpchar", "citext", "name":
		s, err := toText(v)
		if err == nil && (!utf8.ValidString(s) || strings.ContainsRune(s, 0)) {
			return nil, errors.New("the text is not valid UTF-8 or holds a NUL, which PostgreSQL refuses")
		}
		return s, err
	case "bytea":
		switch x := v.(type) {
		case []byte:
			return x, nil
		case string:
			return []byte(x), nil
		}
		return nil, fmt.Errorf("%T %v where the target keeps bytes", v, v)
	}
	return nil, fmt.Errorf("the target column's type %s is not one this program copies", pgType)
}

func toInt(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case float64:
		if x == math.Trunc(x) && x >= math.MinInt64 && x <= math.MaxInt64 {
			return int64(x), nil
		}
	case string:
		if n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
			return n, nil
		}
	case []byte:
		if n, err := strconv.ParseInt(strings.TrimSpace(string(x)), 10, 64); err == nil {
			return n, nil
		}
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	}
	return 0, fmt.Errorf("%T %q where the target keeps an integer", v, fmt.Sprint(v))
}

func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case int64:
		return float64(x), nil
	case float64:
		return x, nil
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
			return f, nil
		}
	case []byte:
		if f, err := strconv.ParseFloat(strings.TrimSpace(string(x)), 64); err == nil {
			return f, nil
		}
	}
	return 0, fmt.Errorf("%T %q where the target keeps a number", v, fmt.Sprint(v))
}

func toText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	}
	return "", fmt.Errorf("%T %v where the target keeps text", v, v)
}
