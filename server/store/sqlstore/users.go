package sqlstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/users"
)

var _ store.Users = (*DB)(nil)

// Audit kinds of per-user licensing.
const (
	eventUser          = "user.changed"
	eventCredential    = "user.credential"
	eventUserSeatTaken = "user.seat.consumed"
	eventUserSeatFreed = "user.seat.freed"
	eventSync          = "directory.synced"
	eventHousekeeping  = "housekeeping.run"
)

// errDryRun rolls a dry run's transaction back after it did everything.
var errDryRun = errors.New("dry run")

const userColumns = `u.id, u.key, u.domain, u.name, u.display, u.dn, u.ou, u.groups, COALESCE(d.name, ''), u.status, u.external, u.external_why, u.created_at, u.updated_at, u.source`

func scanUser(sc interface{ Scan(...any) error }) (store.User, error) {
	var u store.User
	var groups string
	var c, up int64
	if err := sc.Scan(&u.ID, &u.Key, &u.Domain, &u.Name, &u.Display, &u.DN, &u.OU, &groups, &u.Directory, &u.Status, &u.External, &u.ExternalWhy, &c, &up, &u.Source); err != nil {
		return u, fmt.Errorf("read user: %w", err)
	}
	if u.Directory != "" {
		u.Source = sourceDirectory // the directory's sync inserts users without naming their source
	}
	if groups != "" {
		u.Groups = strings.Split(groups, "\n")
	}
	u.CreatedAt, u.UpdatedAt = fromMS(c), fromMS(up)
	return u, nil
}

// userName is how audit records and reports name a user: domain\name, the
// last name known even after the directory deleted the user.
func userName(domain, name string) string {
	if domain == "" {
		return name
	}
	return domain + `\` + name
}

// findUser resolves a key, domain\name or bare name to one user; a bare
// name that two domains share is ambiguous.
func findUser(q rowsQuerier, ref string) (store.User, error) {
	d, n := users.SplitName(ref)
	// Two indexed lookups, by key and by name, rather than one OR that
	// SQLite would answer with a scan of every user.
	byName := `lower(u.name) = lower(?) AND lower(u.domain) = lower(?)`
	args := []any{ref, n, d}
	if d == "" {
		byName, args = `lower(u.name) = lower(?)`, []any{ref, n}
	}
	rows, err := q.Query(`SELECT * FROM (
		SELECT 0 AS rank, `+userColumns+` FROM users u LEFT JOIN directories d ON d.id = u.directory_id WHERE u.key = ?
		UNION ALL
		SELECT CASE u.status WHEN 'Deleted' THEN 2 ELSE 1 END, `+userColumns+` FROM users u LEFT JOIN directories d ON d.id = u.directory_id WHERE `+byName+`
		) found ORDER BY 1, 2 LIMIT 2`, args...)
	if err != nil {
		return store.User{}, fmt.Errorf("find user: %w", err)
	}
	defer rows.Close()
	var found []store.User
	for rows.Next() {
		u, err := scanUser(rankedRow{rows})
		if err != nil {
			return u, err
		}
		found = append(found, u)
	}
	if err := rows.Err(); err != nil {
		return store.User{}, err
	}
	switch {
	case len(found) == 0:
		return store.User{}, fmt.Errorf("user %q: %w (see 'tally-server users list')", ref, store.ErrNotFound)
	case len(found) == 2 && found[0].Key != ref && found[1].Status != users.Deleted:
		return store.User{}, fmt.Errorf("%w: user %q is ambiguous (%s, %s): name it as DOMAIN\\name or by its key", store.ErrConflict, ref,
			userName(found[0].Domain, found[0].Name), userName(found[1].Domain, found[1].Name))
	}
	return found[0], nil
}

// rankedRow reads a row whose first column is findUser's rank.
type rankedRow struct{ rows *sql.Rows }

func (r rankedRow) Scan(dest ...any) error {
	var rank int
	return r.rows.Scan(append([]any{&rank}, dest...)...)
}

// AddUser implements store.Users.
func (db *DB) AddUser(ctx context.Context, nu store.NewUser, actor string) (store.User, error) {
	if err := users.CheckName("user name", nu.Name); err != nil {
		return store.User{}, fmt.Errorf("%w: %w", store.ErrInvalid, err)
	}
	for what, v := range map[string]string{"domain": nu.Domain, "display name": nu.Display} {
		if v != "" {
			if err := users.CheckName(what, v); err != nil {
				return store.User{}, fmt.Errorf("%w: %w", store.ErrInvalid, err)
			}
		}
	}
	var u store.User
	err := db.write(ctx, func(tx *Tx) error {
		key := users.Key("", nu.Domain, nu.Name)
		res, err := tx.Exec(`INSERT INTO users (key, domain, name, display, status, created_at, updated_at) VALUES (?, ?, ?, ?, 'Active', ?, ?)
			ON CONFLICT (key) DO NOTHING`, key, nu.Domain, nu.Name, nu.Display, ms(tx.Now), ms(tx.Now))
		if err != nil {
			return fmt.Errorf("add user: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: user %s already exists", store.ErrConflict, userName(nu.Domain, nu.Name))
		}
		if u, err = findUser(tx, key); err != nil {
			return err
		}
		return addEvent(tx, store.Event{Actor: actor, Kind: eventUser, Reason: "added user " + userName(u.Domain, u.Name)})
	})
	return u, err
}

// Users implements store.Users.
func (db *DB) Users(ctx context.Context) ([]store.User, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+userColumns+` FROM users u LEFT JOIN directories d ON d.id = u.directory_id ORDER BY lower(u.domain), lower(u.name), u.id`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	out := []store.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// User implements store.Users.
func (db *DB) User(ctx context.Context, ref string) (store.User, error) {
	return findUser(db.r, ref)
}

// SetUserStatus implements store.Users.
func (db *DB) SetUserStatus(ctx context.Context, ref, status, actor string) (int, error) {
	switch status {
	case users.Active, users.Disabled, users.Deleted:
	default:
		return 0, fmt.Errorf("%w: status %q (want Active, Disabled or Deleted)", store.ErrInvalid, status)
	}
	var freed int
	err := db.write(ctx, func(tx *Tx) error {
		freed = 0
		u, err := findUser(tx, ref)
		if err != nil {
			return err
		}
		if u.External == users.ExtDeleted && status != users.Deleted {
			return fmt.Errorf("%w: user %s was deleted from directory %s: it becomes a user again when the directory lists it", store.ErrConflict, userName(u.Domain, u.Name), u.Directory)
		}
		if _, err := tx.Exec(`UPDATE users SET status = ?, updated_at = ? WHERE id = ?`, status, ms(tx.Now), u.ID); err != nil {
			return err
		}
		if err := addEvent(tx, store.Event{Actor: actor, Kind: eventUser, Reason: fmt.Sprintf("user %s: internal status %s → %s", userName(u.Domain, u.Name), u.Status, status)}); err != nil {
			return err
		}
		if status == users.Deleted {
			// A deleted user keeps no credential, so that nothing it held
			// comes back should it be listed or enabled again.
			creds, err := idsOf(tx, `SELECT id FROM user_credentials WHERE user_id = ? AND ended_at IS NULL`, u.ID)
			if err != nil {
				return err
			}
			if freed, err = db.endCredentials(tx, creds, "user deleted", actor); err != nil {
				return err
			}
		}
		n, err := db.reconcileUser(tx, u.ID, "", actor, "internal status "+status)
		freed += n
		return err
	})
	return freed, err
}

// hashSecret is how a token's secret is kept: only its hash.
func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// AddCredential implements store.Users: a credential that makes the user
// consume takes the user's seat in the same transaction, or is refused.
func (db *DB) AddCredential(ctx context.Context, nc store.NewCredential, actor string) (store.UserCredential, error) {
	switch nc.Kind {
	case users.Token, users.Certificate, users.QA:
	default:
		return store.UserCredential{}, fmt.Errorf("%w: credential kind %q (want token, certificate or qa)", store.ErrInvalid, nc.Kind)
	}
	if err := users.CheckName("product", nc.Product); err != nil {
		return store.UserCredential{}, fmt.Errorf("%w: %w", store.ErrInvalid, err)
	}
	if nc.Label != "" {
		if err := users.CheckName("label", nc.Label); err != nil {
			return store.UserCredential{}, fmt.Errorf("%w: %w", store.ErrInvalid, err)
		}
	}
	var secret string
	if nc.Kind == users.Token {
		b := make([]byte, 20)
		if _, err := rand.Read(b); err != nil {
			return store.UserCredential{}, err
		}
		secret = "tut_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
	}
	var out store.UserCredential
	err := db.write(ctx, func(tx *Tx) error {
		u, err := findUser(tx, nc.User)
		if err != nil {
			return err
		}
		if u.Status == users.Deleted {
			return fmt.Errorf("%w: user %s is deleted: it takes no credentials", store.ErrConflict, userName(u.Domain, u.Name))
		}
		if _, ok := db.engine.Catalog().Product(nc.Product); !ok {
			return fmt.Errorf("%w: unknown product %q (see 'tally-server products list')", store.ErrInvalid, nc.Product)
		}
		if nc.Expires != nil && !nc.Expires.After(tx.Now) {
			return fmt.Errorf("%w: the expiry %s is not in the future", store.ErrInvalid, nc.Expires.UTC().Format(time.RFC3339))
		}
		var exp any
		if nc.Expires != nil {
			exp = ms(*nc.Expires)
		}
		var hash string
		if secret != "" {
			hash = hashSecret(secret)
		}
		id, err := tx.ExecID(`INSERT INTO user_credentials (user_id, product, kind, label, secret_hash, issued_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			u.ID, nc.Product, nc.Kind, nc.Label, hash, ms(tx.Now), exp)
		if err != nil {
			return fmt.Errorf("add credential: %w", err)
		}
		if err := addEvent(tx, store.Event{Actor: actor, Kind: eventCredential, Product: nc.Product,
			Reason: fmt.Sprintf("user %s: %s %d added", userName(u.Domain, u.Name), nc.Kind, id)}); err != nil {
			return err
		}
		if _, err := db.reconcileUser(tx, u.ID, nc.Product, actor, nc.Kind+" added"); err != nil {
			return err
		}
		cs, err := credentials(tx, `c.id = ?`, []any{id}, tx.Now)
		if err != nil || len(cs) != 1 {
			return fmt.Errorf("read credential back: %w", err)
		}
		out = cs[0]
		out.Secret = secret
		return nil
	})
	return out, err
}

// EndCredential implements store.Users.
func (db *DB) EndCredential(ctx context.Context, id int64, reason, actor string) (int, error) {
	var freed int
	err := db.write(ctx, func(tx *Tx) error {
		freed = 0
		var userID int64
		var product string
		var ended sql.NullInt64
		err := tx.QueryRow(`SELECT user_id, product, ended_at FROM user_credentials WHERE id = ?`, id).Scan(&userID, &product, &ended)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("credential %d: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if ended.Valid {
			return fmt.Errorf("%w: credential %d has already ended", store.ErrConflict, id)
		}
		freed, err = db.endCredentials(tx, []int64{id}, reason, actor)
		return err
	})
	return freed, err
}

// endCredentials ends credentials and frees the seats their users no
// longer need, in tx.
func (db *DB) endCredentials(tx *Tx, ids []int64, reason, actor string) (int, error) {
	type up struct {
		user    int64
		product string
	}
	seen := map[up]bool{}
	var order []up
	for _, id := range ids {
		var u up
		var name, domain string
		if err := tx.QueryRow(`SELECT c.user_id, c.product, u.name, u.domain FROM user_credentials c JOIN users u ON u.id = c.user_id WHERE c.id = ?`, id).Scan(&u.user, &u.product, &name, &domain); err != nil {
			return 0, fmt.Errorf("read credential %d: %w", id, err)
		}
		if _, err := tx.Exec(`UPDATE user_credentials SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL`, ms(tx.Now), reason, id); err != nil {
			return 0, err
		}
		if err := addEvent(tx, store.Event{Actor: actor, Kind: eventCredential, Product: u.product,
			Reason: fmt.Sprintf("user %s: credential %d ended: %s", userName(domain, name), id, reason)}); err != nil {
			return 0, err
		}
		if !seen[u] {
			seen[u] = true
			order = append(order, u)
		}
	}
	freed := 0
	for _, u := range order {
		n, err := db.reconcileUser(tx, u.user, u.product, actor, reason)
		if err != nil {
			return 0, err
		}
		freed += n
	}
	return freed, nil
}

type rowsQuerier interface {
	Query(query string, args ...any) (*sql.Rows, error)
}

func credentials(q rowsQuerier, where string, args []any, now time.Time) ([]store.UserCredential, error) {
	rows, err := q.Query(`SELECT c.id, u.domain, u.name, c.product, c.kind, c.label, c.issued_at, c.expires_at, c.last_used_at, c.ended_at, c.end_reason
		FROM user_credentials c JOIN users u ON u.id = c.user_id WHERE `+where+` ORDER BY c.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list credentials: %w", err)
	}
	defer rows.Close()
	out := []store.UserCredential{}
	for rows.Next() {
		var c store.UserCredential
		var domain, name string
		var issued int64
		var exp, used, ended sql.NullInt64
		if err := rows.Scan(&c.ID, &domain, &name, &c.Product, &c.Kind, &c.Label, &issued, &exp, &used, &ended, &c.EndReason); err != nil {
			return nil, err
		}
		c.User = userName(domain, name)
		c.IssuedAt = fromMS(issued)
		c.ExpiresAt, c.LastUsedAt, c.EndedAt = fromNullMS(exp), fromNullMS(used), fromNullMS(ended)
		c.Active = credOf(c.Kind, exp, ended).Live(now)
		out = append(out, c)
	}
	return out, rows.Err()
}

func credOf(kind string, exp, ended sql.NullInt64) users.Credential {
	c := users.Credential{Kind: kind, Ended: ended.Valid}
	if exp.Valid {
		c.Expires = fromMS(exp.Int64)
	}
	return c
}

// Credentials implements store.Users.
func (db *DB) Credentials(ctx context.Context, ref, product string) ([]store.UserCredential, error) {
	u, err := findUser(db.r, ref)
	if err != nil {
		return nil, err
	}
	where, args := `c.user_id = ?`, []any{u.ID}
	if product != "" {
		where += ` AND c.product = ?`
		args = append(args, product)
	}
	return credentials(db.r, where, args, db.clock.Now())
}

// UseToken implements store.Users.
func (db *DB) UseToken(ctx context.Context, secret string) (store.UserCredential, error) {
	var out store.UserCredential
	err := db.write(ctx, func(tx *Tx) error {
		cs, err := credentials(tx, `c.kind = 'token' AND c.secret_hash = ?`, []any{hashSecret(secret)}, tx.Now)
		if err != nil {
			return err
		}
		if len(cs) != 1 || !cs[0].Active {
			return fmt.Errorf("token: %w, revoked or expired", store.ErrNotFound)
		}
		if _, err := tx.Exec(`UPDATE user_credentials SET last_used_at = ? WHERE id = ?`, ms(tx.Now), cs[0].ID); err != nil {
			return err
		}
		out = cs[0]
		now := tx.Now
		out.LastUsedAt = &now
		return nil
	})
	return out, err
}

// reconcileUser makes the user's seat of product (every product the user
// holds or has credentials for, when empty) match users.Decide: it takes a
// seat the user now needs, refusing with ErrNoUserSeat when none is free,
// and frees a seat the user no longer needs. It returns the seats freed.
func (db *DB) reconcileUser(tx *Tx, userID int64, product, actor, cause string) (int, error) {
	products := []string{product}
	if product == "" {
		var err error
		if products, err = userProducts(tx, userID); err != nil {
			return 0, err
		}
	}
	var status, domain, name string
	if err := tx.QueryRow(`SELECT status, domain, name FROM users WHERE id = ?`, userID).Scan(&status, &domain, &name); err != nil {
		return 0, fmt.Errorf("read user %d: %w", userID, err)
	}
	freed := 0
	for _, p := range products {
		h, err := db.holding(tx, userID, status, p)
		if err != nil {
			return 0, err
		}
		d := users.Decide(h, tx.Now)
		var lic string
		err = tx.QueryRow(`SELECT license_id FROM user_seats WHERE user_id = ? AND product = ?`, userID, p).Scan(&lic)
		holds := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, err
		}
		switch {
		case d.Consumes && !holds:
			if err := db.takeUserSeat(tx, userID, p, userName(domain, name), d.Reason, actor, ""); err != nil {
				if errors.Is(err, store.ErrNoUserSeat) && !h.HasLiveCredential(tx.Now) {
					// Devices alone: the user waits for a seat (the
					// next freed one, see seatWaiting) rather than
					// refuse what registered them, a machine's post.
					continue
				}
				return 0, err
			}
		case !d.Consumes && holds:
			if _, err := tx.Exec(`DELETE FROM user_seats WHERE user_id = ? AND product = ?`, userID, p); err != nil {
				return 0, err
			}
			if _, err := tx.Exec(`UPDATE licenses SET held = held - 1 WHERE id = ?`, lic); err != nil {
				return 0, fmt.Errorf("free user seat: %w", err)
			}
			if err := addEvent(tx, store.Event{Actor: actor, Kind: eventUserSeatFreed, Product: p,
				Reason: fmt.Sprintf("user %s freed a seat of license %s: %s (%s)", userName(domain, name), lic, cause, d.Reason)}); err != nil {
				return 0, err
			}
			freed++
			if err := db.seatWaiting(tx, p, actor); err != nil {
				return 0, err
			}
		}
	}
	return freed, nil
}

func userProducts(tx *Tx, userID int64) ([]string, error) {
	rows, err := tx.Query(`SELECT product FROM user_seats WHERE user_id = ? UNION SELECT product FROM user_credentials WHERE user_id = ? AND ended_at IS NULL
		UNION SELECT product FROM user_devices WHERE user_id = ?`, userID, userID, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out, rows.Err()
}

func (db *DB) holding(q rowsQuerier, userID int64, status, product string) (users.Holding, error) {
	h := users.Holding{Status: status}
	rows, err := q.Query(`SELECT kind, expires_at, ended_at FROM user_credentials WHERE user_id = ? AND product = ? AND ended_at IS NULL`, userID, product)
	if err != nil {
		return h, err
	}
	defer rows.Close()
	for rows.Next() {
		var kind string
		var exp, ended sql.NullInt64
		if err := rows.Scan(&kind, &exp, &ended); err != nil {
			return h, err
		}
		h.Credentials = append(h.Credentials, credOf(kind, exp, ended))
	}
	if err := rows.Err(); err != nil {
		return h, err
	}
	rows.Close()
	h.Devices, err = db.devices(q, userID, product)
	return h, err
}

// takeUserSeat attributes a seat to the user license of product with room
// that expires first, by its verified grant.
func (db *DB) takeUserSeat(tx *Tx, userID int64, product, who, why, actor, exclude string) error {
	rows, err := tx.Query(`SELECT id, seats, held FROM licenses WHERE product = ? AND kind = 'user' AND (expires_at IS NULL OR expires_at > ?) AND id <> ?
		ORDER BY expires_at IS NULL, expires_at, id`, product, ms(tx.Now), exclude)
	if err != nil {
		return err
	}
	type cand struct {
		id          string
		seats, held int
	}
	var cs []cand
	granted := 0
	for rows.Next() {
		var c cand
		if err := rows.Scan(&c.id, &c.seats, &c.held); err != nil {
			rows.Close()
			return err
		}
		cs = append(cs, c)
	}
	rows.Close()
	for _, c := range cs {
		g, ok, err := tx.lic.grantOf(tx, c.id)
		if err != nil {
			return err
		}
		seats := c.seats
		if ok {
			if g.problem != "" || (!g.expires.IsZero() && !tx.Now.Before(g.expires)) {
				continue
			}
			seats = min(seats, g.seats)
		}
		granted += seats
		if c.held >= seats {
			continue
		}
		if _, err := tx.Exec(`UPDATE licenses SET held = held + 1 WHERE id = ?`, c.id); err != nil {
			return fmt.Errorf("take user seat: %w", err)
		}
		if _, err := tx.Exec(`INSERT INTO user_seats (user_id, product, license_id, since, reason) VALUES (?, ?, ?, ?, ?)`, userID, product, c.id, ms(tx.Now), why); err != nil {
			return fmt.Errorf("take user seat: %w", err)
		}
		return addEvent(tx, store.Event{Actor: actor, Kind: eventUserSeatTaken, Product: product,
			Reason: fmt.Sprintf("user %s consumes a seat of license %s: %s", who, c.id, why)})
	}
	if granted == 0 {
		return fmt.Errorf("%w of %s for user %s: no valid user license of %s is imported; import one issued with --kind user ('tally-server license import')",
			store.ErrNoUserSeat, product, who, product)
	}
	return fmt.Errorf("%w of %s for user %s: all %d user seats are held; free one (revoke a credential, disable a user, or 'tally-server housekeeping run') or import another license",
		store.ErrNoUserSeat, product, who, granted)
}
