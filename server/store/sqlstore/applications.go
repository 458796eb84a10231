package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/recognize"
	"github.com/tallyhq/tally/server/store"
)

var _ store.Applications = (*DB)(nil)

// consumingSQL is the condition on computers c whose installations
// consume software licenses.
var consumingSQL = "c.deleted_at IS NULL AND c.status NOT IN ('" + strings.Join(positions.NonConsuming, "', '") + "')"

// auditChange writes an event whose reason carries the object before and
// after the change as JSON (null when it did not exist).
func auditChange(tx *Tx, actor, kind, product, what string, before, after any) error {
	b, err := json.Marshal(before)
	if err != nil {
		return err
	}
	a, err := json.Marshal(after)
	if err != nil {
		return err
	}
	return addEvent(tx, store.Event{Actor: actor, Kind: kind, Product: product,
		Reason: fmt.Sprintf("%s; before: %s; after: %s", what, b, a)})
}

func checkApplication(a *store.Application) error {
	if err := positions.CheckName("application", a.Name); err != nil {
		return err
	}
	if len(a.Publisher) > 128 {
		return fmt.Errorf("application %s: publisher of %d bytes: at most 128", a.Name, len(a.Publisher))
	}
	if len(a.Rules) == 0 {
		return fmt.Errorf("application %s needs at least one rule (a package name or glob)", a.Name)
	}
	if len(a.Rules) > recognize.MaxRules {
		return fmt.Errorf("application %s: %d rules, at most %d", a.Name, len(a.Rules), recognize.MaxRules)
	}
	for i, r := range a.Rules {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("application %s, rule %d: %w", a.Name, i+1, err)
		}
	}
	return nil
}

// AddApplications implements store.Applications.
func (db *DB) AddApplications(ctx context.Context, apps []store.Application, actor string) ([]store.Application, error) {
	if len(apps) == 0 {
		return nil, fmt.Errorf("%w: no application to add", store.ErrInvalid)
	}
	seen := map[string]bool{}
	for i := range apps {
		a := &apps[i]
		if err := checkApplication(a); err != nil {
			return nil, fmt.Errorf("%w: %w", store.ErrInvalid, err)
		}
		k := strings.ToLower(a.Name)
		if seen[k] {
			return nil, fmt.Errorf("%w: application %s is given twice", store.ErrInvalid, a.Name)
		}
		seen[k] = true
	}
	out := make([]store.Application, len(apps))
	err := db.write(ctx, func(tx *Tx) error {
		added := make([]int64, len(apps))
		for i, a := range apps {
			rules, err := json.Marshal(a.Rules)
			if err != nil {
				return err
			}
			var n int
			if err := tx.QueryRow(`SELECT COUNT(*) FROM sw_applications WHERE name = ?`, a.Name).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return fmt.Errorf("%w: application %s already exists (see 'tally-server applications show %s'); nothing was added", store.ErrConflict, a.Name, a.Name)
			}
			if a.ID, err = tx.ExecID(`INSERT INTO sw_applications (name, publisher, rules, created_at, actor) VALUES (?, ?, ?, ?, ?) RETURNING id`,
				a.Name, a.Publisher, string(rules), ms(tx.Now), actor); err != nil {
				return fmt.Errorf("store application %s: %w", a.Name, err)
			}
			a.Installed, a.Consuming, a.Computers = 0, 0, nil
			out[i], added[i] = a, a.ID
			if err := auditChange(tx, actor, store.EventApplicationAdded, "", "application "+a.Name+" added", nil, a); err != nil {
				return err
			}
		}
		return db.recognizeFleet(tx, added)
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		if out[i], err = db.Application(ctx, out[i].Name); err != nil {
			return nil, err
		}
		out[i].Computers = nil
	}
	return out, nil
}

const applicationCounts = `SELECT a.id, a.name, a.publisher, a.rules,
	(SELECT COUNT(*) FROM sw_recognitions r JOIN computers c ON c.id = r.computer_id WHERE r.application_id = a.id AND c.deleted_at IS NULL),
	(SELECT COUNT(*) FROM sw_recognitions r JOIN computers c ON c.id = r.computer_id WHERE r.application_id = a.id AND `

func scanApplication(row interface{ Scan(...any) error }) (store.Application, error) {
	var a store.Application
	var rules string
	if err := row.Scan(&a.ID, &a.Name, &a.Publisher, &rules, &a.Installed, &a.Consuming); err != nil {
		return a, err
	}
	if err := json.Unmarshal([]byte(rules), &a.Rules); err != nil {
		return a, fmt.Errorf("application %s: rules: %w", a.Name, err)
	}
	return a, nil
}

// ApplicationList implements store.Applications.
func (db *DB) ApplicationList(ctx context.Context) ([]store.Application, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT a.id, a.name, a.publisher, a.rules, 0, 0 FROM sw_applications a ORDER BY a.name`)
	if err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	defer rows.Close()
	out := []store.Application{}
	for rows.Next() {
		a, err := scanApplication(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	uses, err := db.appUses(ctx)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if u := uses[out[i].ID]; u != nil {
			out[i].Installed, out[i].Consuming = u.installed.count(), u.consuming.count()
		}
	}
	return out, nil
}

// Application implements store.Applications.
func (db *DB) Application(ctx context.Context, name string) (store.Application, error) {
	a, err := scanApplication(db.r.QueryRowContext(ctx, applicationCounts+consumingSQL+`) FROM sw_applications a WHERE a.name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("%w: no application %q (see 'tally-server applications list')", store.ErrNotFound, name)
	}
	if err != nil {
		return a, err
	}
	rows, err := db.r.QueryContext(ctx, `SELECT c.id, c.hostname, c.status, r.packages, `+consumingSQL+`
		FROM sw_recognitions r JOIN computers c ON c.id = r.computer_id
		WHERE r.application_id = ? AND c.deleted_at IS NULL ORDER BY c.id`, a.ID)
	if err != nil {
		return a, fmt.Errorf("application %s: %w", name, err)
	}
	defer rows.Close()
	a.Computers = []store.Installation{}
	for rows.Next() {
		var in store.Installation
		if err := rows.Scan(&in.ComputerID, &in.Hostname, &in.Status, &in.Packages, &in.Consuming); err != nil {
			return a, err
		}
		a.Computers = append(a.Computers, in)
	}
	return a, rows.Err()
}

// RemoveApplication implements store.Applications.
func (db *DB) RemoveApplication(ctx context.Context, name, actor string) error {
	before, err := db.Application(ctx, name)
	if err != nil {
		return err
	}
	before.Computers = nil
	return db.write(ctx, func(tx *Tx) error {
		var id int64
		err := tx.QueryRow(`SELECT id FROM sw_applications WHERE name = ?`, name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: no application %q (see 'tally-server applications list')", store.ErrNotFound, name)
		}
		if err != nil {
			return err
		}
		var lics []string
		rows, err := tx.Query(`SELECT l.name FROM sw_license_applications la JOIN sw_licenses l ON l.id = la.license_id WHERE la.application_id = ? ORDER BY l.id`, id)
		if err != nil {
			return err
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return err
			}
			lics = append(lics, n)
		}
		rows.Close()
		if len(lics) > 0 {
			return fmt.Errorf("%w: software licenses name application %s (%s): it stays; a license keeps its applications", store.ErrConflict, name, strings.Join(lics, ", "))
		}
		if _, err := tx.Exec(`DELETE FROM sw_recognitions WHERE application_id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM sw_applications WHERE id = ?`, id); err != nil {
			return fmt.Errorf("remove application %s: %w", name, err)
		}
		if err := auditChange(tx, actor, store.EventApplicationRemoved, "", "application "+name+" removed", before, nil); err != nil {
			return err
		}
		return db.recognizeFleet(tx, nil)
	})
}
