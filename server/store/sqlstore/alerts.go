package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/tallyhq/tally/server/store"
)

var _ store.Alerts = (*DB)(nil)

// AddWebhook implements store.Alerts. An empty secret is made up.
func (db *DB) AddWebhook(ctx context.Context, rawURL, secret, actor string) (store.Webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(rawURL) > 2048 {
		return store.Webhook{}, fmt.Errorf("%w: webhook URL %q: want http://HOST/PATH or https://HOST/PATH", store.ErrInvalid, rawURL)
	}
	if secret == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return store.Webhook{}, err
		}
		secret = hex.EncodeToString(b)
	} else if len(secret) < 16 || len(secret) > 256 || strings.ContainsAny(secret, "\r\n") {
		return store.Webhook{}, fmt.Errorf("%w: a webhook secret has 16 to 256 characters on one line (or leave it out and one is made up)", store.ErrInvalid)
	}
	var w store.Webhook
	err = db.write(ctx, func(tx *Tx) error {
		id, err := tx.ExecID(`INSERT INTO alert_webhooks (url, secret, created_at, actor) VALUES (?, ?, ?, ?) RETURNING id`, rawURL, secret, ms(tx.Now), actor)
		if err != nil {
			return fmt.Errorf("store webhook: %w", err)
		}
		w = store.Webhook{ID: id, URL: rawURL, CreatedAt: tx.Now}
		if err := auditChange(tx, actor, store.EventWebhookAdded, "", fmt.Sprintf("webhook %d added", id), nil, w); err != nil {
			return err
		}
		w.Secret = secret
		return nil
	})
	return w, err
}

// WebhookList implements store.Alerts.
func (db *DB) WebhookList(ctx context.Context) ([]store.Webhook, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, url, created_at FROM alert_webhooks WHERE removed_at IS NULL ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.Webhook{}
	for rows.Next() {
		var w store.Webhook
		var at int64
		if err := rows.Scan(&w.ID, &w.URL, &at); err != nil {
			return nil, err
		}
		w.CreatedAt = fromMS(at)
		out = append(out, w)
	}
	return out, rows.Err()
}

// RemoveWebhook implements store.Alerts.
func (db *DB) RemoveWebhook(ctx context.Context, id int64, actor string) (store.Webhook, error) {
	var w store.Webhook
	err := db.write(ctx, func(tx *Tx) error {
		var at int64
		var removed sql.NullInt64
		err := tx.QueryRow(`SELECT url, created_at, removed_at FROM alert_webhooks WHERE id = ?`, id).Scan(&w.URL, &at, &removed)
		if errors.Is(err, sql.ErrNoRows) || err == nil && removed.Valid {
			return fmt.Errorf("%w: no webhook %d (see 'tally-server alerts list')", store.ErrNotFound, id)
		}
		if err != nil {
			return err
		}
		w.ID, w.CreatedAt = id, fromMS(at)
		if _, err := tx.Exec(`UPDATE alert_webhooks SET removed_at = ? WHERE id = ?`, ms(tx.Now), id); err != nil {
			return fmt.Errorf("remove webhook: %w", err)
		}
		res, err := tx.Exec(`UPDATE alert_deliveries SET state = 'failed', last_error = 'webhook removed' WHERE webhook_id = ? AND state = 'pending'`, id)
		if err != nil {
			return fmt.Errorf("give up the webhook's deliveries: %w", err)
		}
		n, _ := res.RowsAffected()
		return auditChange(tx, actor, store.EventWebhookRemoved, "", fmt.Sprintf("webhook %d removed, %d pending deliveries given up", id, n), w, nil)
	})
	return w, err
}

// RaiseAlerts implements store.Alerts.
func (db *DB) RaiseAlerts(ctx context.Context, conds []store.AlertCondition) ([]store.AlertCondition, error) {
	var raised []store.AlertCondition
	err := db.write(ctx, func(tx *Tx) error {
		raised = raised[:0]
		current := map[string]bool{}
		for _, c := range conds {
			current[c.Key] = true
		}
		rows, err := tx.Query(`SELECT key FROM alert_conditions`)
		if err != nil {
			return err
		}
		known := map[string]bool{}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return err
			}
			known[k] = true
		}
		rows.Close()
		// A condition that ended is forgotten: should it come back, it
		// is alerted again.
		for k := range known {
			if !current[k] {
				if _, err := tx.Exec(`DELETE FROM alert_conditions WHERE key = ?`, k); err != nil {
					return err
				}
			}
		}
		var hooks []int64
		rows, err = tx.Query(`SELECT id FROM alert_webhooks WHERE removed_at IS NULL ORDER BY id`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			hooks = append(hooks, id)
		}
		rows.Close()
		for _, c := range conds {
			if known[c.Key] {
				continue
			}
			known[c.Key] = true
			c.At = tx.Now
			if _, err := tx.Exec(`INSERT INTO alert_conditions (key, kind, license, message, raised_at) VALUES (?, ?, ?, ?, ?)`,
				c.Key, c.Kind, c.License, c.Message, ms(tx.Now)); err != nil {
				return fmt.Errorf("store alert: %w", err)
			}
			body, err := json.Marshal(c)
			if err != nil {
				return err
			}
			for _, h := range hooks {
				if _, err := tx.Exec(`INSERT INTO alert_deliveries (webhook_id, condition_key, body, next_at, created_at) VALUES (?, ?, ?, ?, ?)`,
					h, c.Key, body, ms(tx.Now), ms(tx.Now)); err != nil {
					return fmt.Errorf("queue alert: %w", err)
				}
			}
			raised = append(raised, c)
		}
		return nil
	})
	return raised, err
}

const deliveryColumns = `d.id, d.webhook_id, w.url, w.secret, d.condition_key, d.body, d.state, d.attempts, d.next_at, d.last_status, d.last_error, d.last_at, d.created_at, d.delivered_at`

func scanDelivery(rows *sql.Rows) (store.AlertDelivery, error) {
	var d store.AlertDelivery
	var next, created int64
	var last, delivered sql.NullInt64
	err := rows.Scan(&d.ID, &d.Webhook, &d.URL, &d.Secret, &d.Key, &d.Body, &d.State, &d.Attempts, &next, &d.LastStatus, &d.LastError, &last, &created, &delivered)
	d.CreatedAt, d.LastAt, d.DeliveredAt = fromMS(created), fromNullMS(last), fromNullMS(delivered)
	if d.State == "pending" {
		t := fromMS(next)
		d.NextAt = &t
	}
	return d, err
}

// DueDeliveries implements store.Alerts.
func (db *DB) DueDeliveries(ctx context.Context, now time.Time, limit int) ([]store.AlertDelivery, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM alert_deliveries d JOIN alert_webhooks w ON w.id = d.webhook_id
		WHERE d.state = 'pending' AND d.next_at <= ? ORDER BY d.next_at, d.id LIMIT ?`, ms(now), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.AlertDelivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// RecordAttempt implements store.Alerts.
func (db *DB) RecordAttempt(ctx context.Context, id int64, a store.AlertAttempt) error {
	return db.write(ctx, func(tx *Tx) error {
		state, next := "pending", ms(a.Next)
		var delivered any
		switch {
		case a.Delivered:
			state, delivered = "delivered", ms(a.At)
		case a.GiveUp:
			state = "failed"
		}
		_, err := tx.Exec(`UPDATE alert_deliveries SET state = ?, attempts = attempts + 1, next_at = ?, last_status = ?, last_error = ?, last_at = ?, delivered_at = ?
			WHERE id = ? AND state = 'pending'`, state, next, a.Status, a.Error, ms(a.At), delivered, id)
		return err
	})
}

// DeliveryLog implements store.Alerts.
func (db *DB) DeliveryLog(ctx context.Context, limit int) ([]store.AlertDelivery, error) {
	if limit <= 0 || limit > 10000 {
		limit = 1000
	}
	rows, err := db.r.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM alert_deliveries d JOIN alert_webhooks w ON w.id = d.webhook_id ORDER BY d.id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.AlertDelivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// AlertFacts implements store.Alerts.
func (db *DB) AlertFacts(ctx context.Context, discardsSince time.Time) (store.AlertFacts, error) {
	f := store.AlertFacts{Discards: []store.ProductDiscards{}}
	// Only data discards: a refused request (denied:*) stores nothing and
	// is the agent's to retry, not data lost.
	rows, err := db.r.QueryContext(ctx, `SELECT product, reason, COUNT(DISTINCT computer_id) FROM discards
		WHERE last_at >= ? AND reason LIKE 'discarded:%' GROUP BY product, reason ORDER BY product, reason`, ms(discardsSince))
	if err != nil {
		return f, fmt.Errorf("read discards: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var product, reason string
		var n int
		if err := rows.Scan(&product, &reason, &n); err != nil {
			return f, fmt.Errorf("read discards: %w", err)
		}
		if len(f.Discards) == 0 || f.Discards[len(f.Discards)-1].Product != product {
			f.Discards = append(f.Discards, store.ProductDiscards{Product: product})
		}
		last := &f.Discards[len(f.Discards)-1]
		last.Reasons = append(last.Reasons, reason)
		last.Computers = max(last.Computers, n)
	}
	if err := rows.Err(); err != nil {
		return f, fmt.Errorf("read discards: %w", err)
	}
	rows.Close()
	// A computer discarded for two reasons counts once.
	for i := range f.Discards {
		if len(f.Discards[i].Reasons) < 2 {
			continue
		}
		if err := db.r.QueryRowContext(ctx, `SELECT COUNT(DISTINCT computer_id) FROM discards WHERE product = ? AND last_at >= ? AND reason LIKE 'discarded:%'`,
			f.Discards[i].Product, ms(discardsSince)).Scan(&f.Discards[i].Computers); err != nil {
			return f, fmt.Errorf("read discards: %w", err)
		}
	}
	// The latest drift found holds until a later maintenance run ends
	// (its own run ends after it, so two later run events mean one found
	// none).
	var d store.DriftFound
	var at int64
	err = db.r.QueryRowContext(ctx, `SELECT id, at, reason FROM events WHERE kind = 'maintenance.drift-found' ORDER BY id DESC LIMIT 1`).Scan(&d.Event, &at, &d.Drift)
	if errors.Is(err, sql.ErrNoRows) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("read drift found: %w", err)
	}
	var later int
	if err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE kind = 'maintenance.run' AND id > ? LIMIT 2) later`, d.Event).Scan(&later); err != nil {
		return f, fmt.Errorf("read maintenance runs: %w", err)
	}
	if later < 2 {
		d.At = fromMS(at)
		f.Drift = &d
	}
	return f, nil
}
