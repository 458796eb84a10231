package pgsql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// Open connects to the PostgreSQL database at url (a postgres:// URL or a
// keyword/value string) through a pgx pool of at most conns connections,
// and returns a database/sql handle whose statements are rewritten from
// SQLite's spelling (Rewrite). The pool is closed with the handle.
func Open(ctx context.Context, url string, conns int) (*sql.DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL address: %w", err)
	}
	if conns > 0 {
		cfg.MaxConns = int32(conns)
	}
	cfg.MinConns = 0
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	db := sql.OpenDB(&connector{inner: stdlib.GetPoolConnector(pool), pool: pool})
	db.SetMaxOpenConns(int(cfg.MaxConns))
	db.SetMaxIdleConns(int(cfg.MaxConns))
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	return db, nil
}

// connector hands out connections that rewrite their statements.
type connector struct {
	inner driver.Connector
	pool  *pgxpool.Pool
	cache sync.Map // query → rewritten
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := dc.(*stdlib.Conn)
	if !ok {
		dc.Close()
		return nil, errors.New("pgx returned an unexpected connection type")
	}
	return &conn{Conn: sc, c: c}, nil
}

func (c *connector) Driver() driver.Driver { return c.inner.Driver() }

// Close closes the pool once database/sql has closed its connections.
func (c *connector) Close() error {
	c.pool.Close()
	return nil
}

func (c *connector) rewrite(query string) string {
	if v, ok := c.cache.Load(query); ok {
		return v.(string)
	}
	r := Rewrite(query)
	c.cache.Store(query, r)
	return r
}

// conn is a pgx connection that rewrites each statement and passes
// booleans as the integers the schema stores them as (as SQLite does).
type conn struct {
	*stdlib.Conn
	c *connector
}

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.Conn.Prepare(c.c.rewrite(query))
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, c.c.rewrite(query))
}

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, c.c.rewrite(query), args)
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, c.c.rewrite(query), args)
}

// CheckNamedValue stores a Go bool as 0 or 1: the schema keeps flags in
// integer columns, as SQLite does.
func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	if b, ok := nv.Value.(bool); ok {
		if b {
			nv.Value = int64(1)
		} else {
			nv.Value = int64(0)
		}
		return nil
	}
	return c.Conn.CheckNamedValue(nv)
}

// PgxConn is the pgx connection underneath, for what database/sql cannot
// do (COPY); use it only inside sql.Conn.Raw.
func (c *conn) PgxConn() *pgx.Conn { return c.Conn.Conn() }
