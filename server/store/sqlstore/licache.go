package sqlstore

import (
	"database/sql"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/tallyhq/tally/server/engine"
	"github.com/tallyhq/tally/server/ledger"
	"github.com/tallyhq/tally/server/license"
)

// licenseCache keeps the node licenses' identities and dates (not their
// seat counts, which change with every consumption) so that a post that
// takes no seat decides without reading them, and every license's grant as
// its verified signed file says it. It is filled by the writer inside a
// transaction and emptied after any transaction that changes licenses
// commits, or when a batch fails to commit.
type licenseCache struct {
	verify func(file []byte) (license.Payload, error) // nil: trust the columns

	mu        sync.Mutex
	loaded    bool
	byProduct map[string][]*engine.License
	grants    map[string]grant
	// swept holds expired licenses known to carry no seat: a license that
	// no longer grants never gains one, so one sweep is enough.
	swept map[string]bool
}

// grant is what a license grants, taken from its verified file: the row's
// columns are a copy that a damaged or edited database may contradict.
type grant struct {
	product, kind    string
	seats            int
	expires, upgrade time.Time // zero: none
	// problem says how the row disagrees with its file, or that the file
	// does not verify (then the license grants no new seat).
	problem  string
	verified bool
}

func (c *licenseCache) reset() {
	c.mu.Lock()
	c.loaded, c.byProduct, c.grants, c.swept = false, nil, nil, nil
	c.mu.Unlock()
}

// invalidate empties the cache once tx commits.
func (c *licenseCache) invalidate(tx *Tx) { tx.OnCommit(c.reset) }

// querier is a transaction or the read pool.
type querier interface {
	Query(query string, args ...any) (*sql.Rows, error)
}

// readGrants reads every license row and verifies its file: the grant of a
// row whose columns disagree with its file is the file's, with a problem;
// the grant of a row whose file does not verify is none.
func readGrants(q querier, verify func([]byte) (license.Payload, error)) (map[string]grant, error) {
	rows, err := q.Query(`SELECT id, product, kind, seats, expires_at, upgrade_until, file FROM licenses`)
	if err != nil {
		return nil, fmt.Errorf("read licenses: %w", err)
	}
	defer rows.Close()
	out := map[string]grant{}
	for rows.Next() {
		var id string
		var g grant
		var exp, up sql.NullInt64
		var file []byte
		if err := rows.Scan(&id, &g.product, &g.kind, &g.seats, &exp, &up, &file); err != nil {
			return nil, fmt.Errorf("read licenses: %w", err)
		}
		if exp.Valid {
			g.expires = fromMS(exp.Int64)
		}
		if up.Valid {
			g.upgrade = fromMS(up.Int64)
		}
		if verify != nil {
			g = checkGrant(id, g, file, verify)
		}
		out[id] = g
	}
	return out, rows.Err()
}

// checkGrant compares a row's columns (col) with its signed file
// (ledger.CheckGrant).
func checkGrant(id string, col grant, file []byte, verify func([]byte) (license.Payload, error)) grant {
	g := ledger.CheckGrant(id, ledger.Grant{Product: col.product, Kind: col.kind, Seats: col.seats, Expires: col.expires, Upgrade: col.upgrade,
		Problem: col.problem, Verified: col.verified}, file, verify)
	return grant{product: g.Product, kind: g.Kind, seats: g.Seats, expires: g.Expires, upgrade: g.Upgrade, problem: g.Problem, verified: g.Verified}
}

// load fills the cache inside tx; the caller holds c.mu.
func (c *licenseCache) load(tx *Tx) error {
	if c.loaded {
		return nil
	}
	grants, err := readGrants(tx, c.verify)
	if err != nil {
		return err
	}
	byProduct := map[string][]*engine.License{}
	for id, g := range grants {
		if g.kind != license.KindNode {
			continue
		}
		l := &engine.License{ID: id, Product: g.product, Seats: g.seats, Expires: g.expires, UpgradeUntil: g.upgrade}
		byProduct[l.Product] = append(byProduct[l.Product], l)
	}
	for _, ls := range byProduct {
		sort.Slice(ls, func(i, j int) bool { return ls[i].ID < ls[j].ID })
	}
	c.byProduct, c.grants, c.swept, c.loaded = byProduct, grants, map[string]bool{}, true
	return nil
}

// grantOf returns a license's verified grant, read inside tx.
func (c *licenseCache) grantOf(tx *Tx, id string) (grant, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.load(tx); err != nil {
		return grant{}, false, err
	}
	g, ok := c.grants[id]
	return g, ok, nil
}

// seatsOf returns the seats a license grants by its verified file, or col
// (its row's column) when it has no grant; the cache must be loaded
// (grantOf, pool) earlier in the transaction, before rows are open.
func (c *licenseCache) seatsOf(id string, col int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g, ok := c.grants[id]; ok && c.loaded {
		return g.seats
	}
	return col
}

// apply sets a license read from its row to its verified grant.
func (c *licenseCache) apply(tx *Tx, l *engine.License) error {
	g, ok, err := c.grantOf(tx, l.ID)
	if err != nil || !ok {
		return err
	}
	l.Seats, l.Expires, l.UpgradeUntil = g.seats, g.expires, g.upgrade
	return nil
}

// pool returns the cached licenses of products, without counts.
func (c *licenseCache) pool(tx *Tx, products []string) (engine.Pool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.load(tx); err != nil {
		return nil, err
	}
	out := engine.Pool{}
	for _, p := range products {
		if ls := c.byProduct[p]; len(ls) > 0 {
			out[p] = ls
		}
	}
	return out, nil
}

// needsSweep reports whether a license of the pool has expired without
// being swept since.
func (c *licenseCache) needsSweep(meta engine.Pool, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ls := range meta {
		for _, l := range ls {
			if !l.Valid(now) && !c.swept[l.ID] {
				return true
			}
		}
	}
	return false
}

// markSwept records, once tx commits, that the pool's expired licenses
// carry no seat any more.
func (c *licenseCache) markSwept(tx *Tx, meta engine.Pool, now time.Time) {
	var ids []string
	for _, ls := range meta {
		for _, l := range ls {
			if !l.Valid(now) {
				ids = append(ids, l.ID)
			}
		}
	}
	tx.OnCommit(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.swept == nil {
			return
		}
		for _, id := range ids {
			c.swept[id] = true
		}
	})
}
