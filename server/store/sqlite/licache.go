package sqlite

import (
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/tallyhq/tally/server/engine"
)

// licenseCache keeps the node licenses' identities and dates (not their
// seat counts, which change with every consumption) so that a post that
// takes no seat decides without reading them. It is filled by the writer
// inside a transaction and emptied after any transaction that changes
// licenses commits, or when a batch fails to commit.
type licenseCache struct {
	mu        sync.Mutex
	loaded    bool
	byProduct map[string][]*engine.License
	// swept holds expired licenses known to carry no seat: a license that
	// no longer grants never gains one, so one sweep is enough.
	swept map[string]bool
}

func (c *licenseCache) reset() {
	c.mu.Lock()
	c.loaded, c.byProduct, c.swept = false, nil, nil
	c.mu.Unlock()
}

// invalidate empties the cache once tx commits.
func (c *licenseCache) invalidate(tx *Tx) { tx.OnCommit(c.reset) }

// pool returns the cached licenses of products, without counts.
func (c *licenseCache) pool(tx *Tx, products []string) (engine.Pool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.loaded {
		rows, err := tx.Query(`SELECT id, product, seats, expires_at, upgrade_until FROM licenses WHERE kind = 'node'`)
		if err != nil {
			return nil, fmt.Errorf("read licenses: %w", err)
		}
		byProduct := map[string][]*engine.License{}
		for rows.Next() {
			l := &engine.License{}
			var exp, up sql.NullInt64
			if err := rows.Scan(&l.ID, &l.Product, &l.Seats, &exp, &up); err != nil {
				rows.Close()
				return nil, err
			}
			if exp.Valid {
				l.Expires = fromMS(exp.Int64)
			}
			if up.Valid {
				l.UpgradeUntil = fromMS(up.Int64)
			}
			byProduct[l.Product] = append(byProduct[l.Product], l)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		c.byProduct, c.swept, c.loaded = byProduct, map[string]bool{}, true
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
