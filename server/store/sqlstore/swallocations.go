package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/store"
)

// AllocateSoftware implements store.SoftwareLicenses. There is no cap at
// the entitlements: entitlements change with the date (subscriptions
// end), so an allocation beyond them shows as a shortfall in the
// compliance report, and is alerted, rather than being refused.
func (db *DB) AllocateSoftware(ctx context.Context, ref string, computer int64, actor string) (store.SoftwareLicense, error) {
	return db.changeAllocation(ctx, ref, computer, actor, true)
}

// DeallocateSoftware implements store.SoftwareLicenses.
func (db *DB) DeallocateSoftware(ctx context.Context, ref string, computer int64, actor string) (store.SoftwareLicense, error) {
	return db.changeAllocation(ctx, ref, computer, actor, false)
}

func (db *DB) changeAllocation(ctx context.Context, ref string, computer int64, actor string, allocate bool) (store.SoftwareLicense, error) {
	var out store.SoftwareLicense
	err := db.write(ctx, func(tx *Tx) error {
		q := txQuerier{tx}
		id, err := swLicenseRowID(ctx, q, ref)
		if err != nil {
			return err
		}
		before, err := loadSWLicense(ctx, q, id)
		if err != nil {
			return err
		}
		if allocate {
			var consuming bool
			err = tx.QueryRow(`SELECT `+consumingSQL+` FROM computers c WHERE c.id = ? AND c.deleted_at IS NULL`, computer).Scan(&consuming)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: no computer %d (see 'tally-server computers list')", store.ErrNotFound, computer)
			}
			if err != nil {
				return err
			}
			if !consuming {
				return fmt.Errorf("%w: computer %d consumes no license in its status: set it Active first (tally-server computers set-status %d Active)", store.ErrInvalid, computer, computer)
			}
			res, err := tx.Exec(`INSERT INTO sw_allocations (license_id, computer_id, at, actor) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, id, computer, ms(tx.Now), actor)
			if err != nil {
				return fmt.Errorf("allocate: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return fmt.Errorf("%w: software license %s is already allocated to computer %d", store.ErrConflict, before.ID, computer)
			}
		} else {
			res, err := tx.Exec(`DELETE FROM sw_allocations WHERE license_id = ? AND computer_id = ?`, id, computer)
			if err != nil {
				return fmt.Errorf("deallocate: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return fmt.Errorf("%w: software license %s is not allocated to computer %d", store.ErrNotFound, before.ID, computer)
			}
		}
		if out, err = loadSWLicense(ctx, q, id); err != nil {
			return err
		}
		kind, what := store.EventSWAllocated, fmt.Sprintf("software license %s allocated to computer %d", out.ID, computer)
		if !allocate {
			kind, what = store.EventSWDeallocated, fmt.Sprintf("software license %s no longer allocated to computer %d", out.ID, computer)
		}
		return auditChange(tx, actor, kind, "", what, before, out)
	})
	return out, err
}

// loadAllocations reads one license's allocations and counts those that
// consume by allocation alone.
func loadAllocations(ctx context.Context, q posQuerier, l *store.SoftwareLicense, id int64) error {
	rows, err := q.QueryContext(ctx, `SELECT al.computer_id, `+consumingSQL+`,
		EXISTS (SELECT 1 FROM sw_license_applications la JOIN sw_recognitions r ON r.application_id = la.application_id
			WHERE la.license_id = al.license_id AND r.computer_id = al.computer_id)
		FROM sw_allocations al JOIN computers c ON c.id = al.computer_id WHERE al.license_id = ? ORDER BY al.computer_id`, id)
	if err != nil {
		return fmt.Errorf("read allocations: %w", err)
	}
	defer rows.Close()
	l.Allocations = []int64{}
	consuming, installed := map[int64]bool{}, map[int64]bool{}
	for rows.Next() {
		var c int64
		var cons, inst bool
		if err := rows.Scan(&c, &cons, &inst); err != nil {
			return fmt.Errorf("read allocations: %w", err)
		}
		l.Allocations = append(l.Allocations, c)
		consuming[c], installed[c] = cons, inst
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read allocations: %w", err)
	}
	l.Reserved = positions.Reserved(l.Allocations, func(c int64) bool { return consuming[c] }, func(c int64) bool { return installed[c] })
	return nil
}

// allAllocations reads every allocation, by license row.
func (db *DB) allAllocations(ctx context.Context) (map[int64][]int64, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT license_id, computer_id FROM sw_allocations ORDER BY license_id, computer_id`)
	if err != nil {
		return nil, fmt.Errorf("read allocations: %w", err)
	}
	defer rows.Close()
	out := map[int64][]int64{}
	for rows.Next() {
		var l, c int64
		if err := rows.Scan(&l, &c); err != nil {
			return nil, fmt.Errorf("read allocations: %w", err)
		}
		out[l] = append(out[l], c)
	}
	return out, rows.Err()
}

// reservedOf counts the allocated computers that consume a license of
// the applications by allocation alone.
func reservedOf(uses map[int64]*appUse, idle bitset, apps, allocated []int64) int {
	if len(allocated) == 0 {
		return 0
	}
	inst := licenseInstalled(uses, apps)
	return positions.Reserved(allocated, func(c int64) bool { return !idle.has(c) }, inst.has)
}
