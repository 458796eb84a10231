package sqlstore

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/server/store/pgsql"
)

// ServerFile is one file of the server's data folder that replicas of one
// PostgreSQL database share: its identity (key, admin token, QUIC keys),
// the issuers it trusts and its product catalog.
type ServerFile struct {
	Name    string // relative to the data folder, with /
	Content []byte
	MTime   int64 // unix ms of the copy that was stored
}

// ShareServerFiles makes replicas of the database at addr share one
// identity: it stores each of local's files that the database does not
// hold yet, replaces the database's product catalog with local's when
// local's is newer, and returns every file the database then holds, which
// the replica writes into its data folder. The first replica to start
// thus gives its identity to the others. It applies the database's
// migrations first, under their lock.
func ShareServerFiles(ctx context.Context, addr string, local []ServerFile, newer func(name string) bool) ([]ServerFile, error) {
	where := redactURL(addr)
	w, err := pgsql.Open(ctx, addr, 1)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", where, err)
	}
	defer w.Close()
	db := &DB{w: w, clock: clock.System{}, log: slog.New(slog.DiscardHandler), pg: &pgState{where: where}}
	if err := db.migratePostgres(ctx); err != nil {
		return nil, err
	}
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("share the server's identity: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, pgMigrateLock); err != nil {
		return nil, fmt.Errorf("share the server's identity: %w", err)
	}
	for _, f := range local {
		q := `INSERT INTO server_files (name, content, mtime) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`
		if newer != nil && newer(f.Name) {
			q = `INSERT INTO server_files (name, content, mtime) VALUES (?, ?, ?)
				ON CONFLICT (name) DO UPDATE SET content = excluded.content, mtime = excluded.mtime WHERE excluded.mtime > server_files.mtime`
		}
		if _, err := tx.ExecContext(ctx, q, f.Name, f.Content, f.MTime); err != nil {
			return nil, fmt.Errorf("share %s: %w", f.Name, err)
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT name, content, mtime FROM server_files ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read the shared identity: %w", err)
	}
	defer rows.Close()
	var out []ServerFile
	for rows.Next() {
		var f ServerFile
		if err := rows.Scan(&f.Name, &f.Content, &f.MTime); err != nil {
			return nil, fmt.Errorf("read the shared identity: %w", err)
		}
		if strings.Contains(f.Name, "..") || strings.HasPrefix(f.Name, "/") {
			return nil, fmt.Errorf("shared file %q: not a name inside a data folder", f.Name)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("share the server's identity: %w", err)
	}
	return out, nil
}
