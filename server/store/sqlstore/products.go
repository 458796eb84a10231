package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/store"
)

// loadApplications adds the application products stored in the database
// to the engine's catalog. One whose name a products file now defines is
// left out (the file wins) and logged.
func (db *DB) loadApplications() error {
	rows, err := db.w.Query(`SELECT name, title, kinds FROM application_products ORDER BY name`)
	if err != nil {
		return fmt.Errorf("read application products: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, title, kinds string
		if err := rows.Scan(&name, &title, &kinds); err != nil {
			return fmt.Errorf("read application products: %w", err)
		}
		p, err := catalog.NewApplication(name, title, strings.Split(kinds, ","), catalog.SourceDatabase)
		if err == nil {
			err = db.engine.Catalog().AddApplication(p)
		}
		if err != nil {
			db.log.Warn("application product left out", "product", name, "err", err)
		}
	}
	return rows.Err()
}

// AddProduct implements store.Products.
func (db *DB) AddProduct(ctx context.Context, ap store.ApplicationProduct, actor string) (bool, error) {
	p, err := catalog.NewApplication(strings.TrimSpace(ap.Name), ap.Title, ap.Kinds, catalog.SourceDatabase)
	if err != nil {
		return false, fmt.Errorf("%w: %w", store.ErrInvalid, err)
	}
	cat := db.engine.Catalog()
	if old, ok := cat.Product(p.Name); ok && old.Source == catalog.SourceDatabase && old.Title == p.Title && sameKinds(old.Kinds, p.Kinds) {
		return false, nil
	}
	if err := cat.NameFree(p.Name); err != nil {
		return false, fmt.Errorf("%w: %w", store.ErrConflict, err)
	}
	return true, db.write(ctx, func(tx *Tx) error {
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM application_products WHERE name = ?`, p.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: application product %s already exists (see 'tally-server products show %s')", store.ErrConflict, p.Name, p.Name)
		}
		if _, err := tx.Exec(`INSERT INTO application_products (name, title, kinds, created_at, actor) VALUES (?, ?, ?, ?, ?)`,
			p.Name, p.Title, strings.Join(p.Kinds, ","), ms(tx.Now), actor); err != nil {
			return fmt.Errorf("store product %s: %w", p.Name, err)
		}
		tx.OnCommit(func() {
			if err := cat.AddApplication(p); err != nil {
				db.log.Warn("application product not added to the catalog", "product", p.Name, "err", err)
			}
		})
		return addEvent(tx, store.Event{Actor: actor, Kind: store.EventProductAdded, Product: p.Name,
			Reason: fmt.Sprintf("application product %s (%s): %s licenses", p.Name, p.Title, strings.Join(p.Kinds, ", "))})
	})
}

// sameKinds reports whether two lists hold the same kinds, in any order.
func sameKinds(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, k := range a {
		if !slices.Contains(b, k) {
			return false
		}
	}
	return true
}

// RemoveProduct implements store.Products.
func (db *DB) RemoveProduct(ctx context.Context, name, actor string) error {
	if p, ok := db.engine.Catalog().Product(name); ok && p.Source != catalog.SourceDatabase {
		where := "is built in"
		if p.Source != "builtin" {
			where = "is defined in " + p.Source + ": edit that file"
		}
		return fmt.Errorf("%w: product %s %s; 'products remove' removes only products added with 'products add'", store.ErrInvalid, name, where)
	}
	return db.write(ctx, func(tx *Tx) error {
		var title string
		err := tx.QueryRow(`SELECT title FROM application_products WHERE name = ?`, name).Scan(&title)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: no application product %q (see 'tally-server products list')", store.ErrNotFound, name)
		}
		if err != nil {
			return err
		}
		var ids []string
		rows, err := tx.Query(`SELECT id FROM licenses WHERE product = ? ORDER BY id`, name)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if len(ids) > 0 {
			return fmt.Errorf("%w: product %s has %d licenses (%s): remove them first with 'tally-server license remove ID'",
				store.ErrConflict, name, len(ids), strings.Join(ids, ", "))
		}
		if _, err := tx.Exec(`DELETE FROM application_products WHERE name = ?`, name); err != nil {
			return fmt.Errorf("remove product %s: %w", name, err)
		}
		tx.OnCommit(func() { db.engine.Catalog().RemoveApplication(name) })
		return addEvent(tx, store.Event{Actor: actor, Kind: store.EventProductRemove, Product: name,
			Reason: fmt.Sprintf("application product %s (%s) removed", name, title)})
	})
}

// syncApplications makes the catalog's application products those of the
// database, in the writer's transaction: on PostgreSQL another replica may
// have added or removed one since this one read them.
func (db *DB) syncApplications(ctx context.Context) error {
	rows, err := db.wc.QueryContext(ctx, `SELECT name, title, kinds FROM application_products`)
	if err != nil {
		return fmt.Errorf("read application products: %w", err)
	}
	defer rows.Close()
	want := map[string]*catalog.Product{}
	for rows.Next() {
		var name, title, kinds string
		if err := rows.Scan(&name, &title, &kinds); err != nil {
			return fmt.Errorf("read application products: %w", err)
		}
		if p, err := catalog.NewApplication(name, title, strings.Split(kinds, ","), catalog.SourceDatabase); err == nil {
			want[name] = p
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read application products: %w", err)
	}
	cat := db.engine.Catalog()
	for _, p := range cat.Products() {
		if w, ok := want[p.Name]; p.Source == catalog.SourceDatabase && (!ok || w.Title != p.Title || !sameKinds(w.Kinds, p.Kinds)) {
			cat.RemoveApplication(p.Name)
		}
	}
	for name, p := range want {
		if _, ok := cat.Product(name); !ok {
			if err := cat.AddApplication(p); err != nil {
				db.log.Warn("application product left out", "product", name, "err", err)
			}
		}
	}
	return nil
}
