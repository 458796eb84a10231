package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tallyhq/tally/server/housekeeping"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/users"
)

// SweepUsers implements store.Users.
func (db *DB) SweepUsers(ctx context.Context) (store.HousekeepingResult, error) {
	return db.Housekeeping(ctx, store.HousekeepingRun{Task: housekeeping.ClearExpiredTokens}, "sweep")
}

// NextCredentialExpiry implements store.Users.
func (db *DB) NextCredentialExpiry(ctx context.Context) (time.Time, bool, error) {
	var v *int64
	if err := db.r.QueryRowContext(ctx, `SELECT MIN(x) FROM (
		SELECT MIN(expires_at) AS x FROM user_credentials WHERE ended_at IS NULL AND expires_at IS NOT NULL
		UNION ALL SELECT MIN(expires_at) FROM licenses WHERE kind = 'user' AND held > 0 AND expires_at IS NOT NULL) ends`).Scan(&v); err != nil {
		return time.Time{}, false, err
	}
	if v == nil {
		return time.Time{}, false, nil
	}
	return fromMS(*v), true, nil
}

// Housekeeping implements store.Users. A dry run does the same work in a
// transaction it rolls back, so it reports exactly what a real run frees.
func (db *DB) Housekeeping(ctx context.Context, run store.HousekeepingRun, actor string) (store.HousekeepingResult, error) {
	if err := housekeeping.Check(&run); err != nil {
		return store.HousekeepingResult{}, err
	}
	var res store.HousekeepingResult
	err := db.write(ctx, func(tx *Tx) error {
		res = store.HousekeepingResult{Task: run.Task, DryRun: run.DryRun, Items: []store.HousekeepingItem{}}
		if err := db.housekeep(tx, run, actor, &res); err != nil {
			return err
		}
		if run.DryRun {
			return errDryRun
		}
		if len(res.Items) == 0 && actor == store.ActorSystem {
			// The server's own runs that find nothing leave no trace; an
			// admin's run is audited whatever it finds.
			return nil
		}
		return addEvent(tx, store.Event{Actor: actor, Kind: eventHousekeeping, Product: run.Product,
			Reason: fmt.Sprintf("%s: %d users, %d seats freed", run.Task, len(res.Items), res.SeatsFreed)})
	})
	if errors.Is(err, errDryRun) {
		err = nil
	}
	return res, err
}

func (db *DB) housekeep(tx *Tx, run store.HousekeepingRun, actor string, res *store.HousekeepingResult) error {
	now := ms(tx.Now)
	prod, pargs := "", []any{}
	if run.Product != "" {
		prod, pargs = " AND c.product = ?", []any{run.Product}
	}
	credTask := func(q, reason string, args ...any) error {
		ids, err := idsOf(tx, q+prod+` ORDER BY c.id`, append(args, pargs...)...)
		if err != nil {
			return err
		}
		for _, id := range ids {
			var d, n, product string
			if err := tx.QueryRow(`SELECT u.domain, u.name, c.product FROM user_credentials c JOIN users u ON u.id = c.user_id WHERE c.id = ?`, id).Scan(&d, &n, &product); err != nil {
				return err
			}
			freed, err := db.endCredentials(tx, []int64{id}, reason, actor)
			if err != nil {
				return err
			}
			res.Items = append(res.Items, store.HousekeepingItem{User: userName(d, n), Product: product,
				Action: fmt.Sprintf("credential %d: %s", id, reason), SeatFreed: freed > 0})
			res.SeatsFreed += freed
		}
		return nil
	}
	switch run.Task {
	case housekeeping.ClearExpiredTokens:
		if err := db.moveExpiredUserSeats(tx, actor, res); err != nil {
			return err
		}
		return credTask(`SELECT c.id FROM user_credentials c WHERE c.ended_at IS NULL AND c.expires_at IS NOT NULL AND c.expires_at <= ?`, "expired", now)
	case housekeeping.DisableUnusedTokens:
		cut := ms(tx.Now.Add(-time.Duration(run.Days) * 24 * time.Hour))
		return credTask(`SELECT c.id FROM user_credentials c WHERE c.kind = 'token' AND c.ended_at IS NULL AND COALESCE(c.last_used_at, c.issued_at) <= ?`,
			fmt.Sprintf("disabled: unused for %d days", run.Days), cut)
	case housekeeping.ClearDeletedUsers:
		return credTask(`SELECT c.id FROM user_credentials c JOIN users u ON u.id = c.user_id WHERE c.ended_at IS NULL AND (u.status = 'Deleted' OR u.external = 'deleted')`,
			"user deleted from directory")
	case housekeeping.ReleaseDisabledAccounts:
		return db.releaseDisabled(tx, run, actor, res)
	}
	return fmt.Errorf("%w: task %q", store.ErrInvalid, run.Task)
}

// releaseDisabled sets the internal status of Active users whose directory
// account is disabled, within the filters, to Disabled, which frees their
// seats; their credentials stay, so an admin who enables them again gives
// them their seat back.
func (db *DB) releaseDisabled(tx *Tx, run store.HousekeepingRun, actor string, res *store.HousekeepingResult) error {
	q := `SELECT u.id, u.domain, u.name, u.ou, u.groups, u.external_why FROM users u WHERE u.status = 'Active' AND u.external = 'disabled'`
	var args []any
	if run.Domain != "" {
		q += ` AND lower(u.domain) = lower(?)`
		args = append(args, run.Domain)
	}
	rows, err := tx.Query(q+` ORDER BY u.id`, args...)
	if err != nil {
		return err
	}
	type cand struct {
		id                    int64
		domain, name, ou, why string
		groups                []string
	}
	var cs []cand
	for rows.Next() {
		var c cand
		var groups string
		if err := rows.Scan(&c.id, &c.domain, &c.name, &c.ou, &groups, &c.why); err != nil {
			rows.Close()
			return err
		}
		c.groups = strings.Split(groups, "\n")
		cs = append(cs, c)
	}
	rows.Close()
	for _, c := range cs {
		if run.OU != "" && !ouMatches(c.ou, run.OU) {
			continue
		}
		if run.Group != "" && !groupMatches(c.groups, run.Group) {
			continue
		}
		if _, err := tx.Exec(`UPDATE users SET status = 'Disabled', updated_at = ? WHERE id = ?`, ms(tx.Now), c.id); err != nil {
			return err
		}
		who := userName(c.domain, c.name)
		if err := addEvent(tx, store.Event{Actor: actor, Kind: eventUser, Reason: fmt.Sprintf("user %s: internal status Active → Disabled: directory account %s", who, c.why)}); err != nil {
			return err
		}
		freed, err := db.reconcileUser(tx, c.id, "", actor, "directory account "+c.why)
		if err != nil {
			return err
		}
		res.Items = append(res.Items, store.HousekeepingItem{User: who, Action: "internal status Disabled: directory account " + c.why, SeatFreed: freed > 0})
		res.SeatsFreed += freed
	}
	return nil
}

// ouMatches says whether a user's OU path (outermost last, as in a DN)
// lies in ou, compared without case.
func ouMatches(userOU, ou string) bool {
	u, o := strings.ToLower(userOU), strings.ToLower(ou)
	return u == o || strings.HasSuffix(u, ","+o) || strings.HasPrefix(u, o+",") || strings.Contains(u, ","+o+",")
}

func groupMatches(groups []string, g string) bool {
	for _, x := range groups {
		if strings.EqualFold(x, g) {
			return true
		}
	}
	return false
}

// UsersUseLicense implements store.Users: one row per user and product
// they hold credentials or a seat for, and one per user without either.
func (db *DB) UsersUseLicense(ctx context.Context, product string) ([]store.UserUse, error) {
	now := db.clock.Now()
	us, err := db.Users(ctx)
	if err != nil {
		return nil, err
	}
	type key = deviceKey
	creds := map[key][]users.Credential{}
	q := `SELECT user_id, product, kind, expires_at, ended_at FROM user_credentials WHERE ended_at IS NULL`
	var args []any
	if product != "" {
		q += ` AND product = ?`
		args = append(args, product)
	}
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("users-use-license: %w", err)
	}
	for rows.Next() {
		var k key
		var kind string
		var exp, ended sql.NullInt64
		if err := rows.Scan(&k.user, &k.product, &kind, &exp, &ended); err != nil {
			rows.Close()
			return nil, err
		}
		creds[k] = append(creds[k], credOf(kind, exp, ended))
	}
	rows.Close()
	seats := map[key]bool{}
	rows, err = db.r.QueryContext(ctx, `SELECT user_id, product FROM user_seats`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.user, &k.product); err != nil {
			rows.Close()
			return nil, err
		}
		if product == "" || k.product == product {
			seats[k] = true
		}
	}
	rows.Close()
	devices, err := db.deviceCounts(ctx, product)
	if err != nil {
		return nil, err
	}
	byUser := map[int64][]string{}
	for k := range creds {
		byUser[k.user] = append(byUser[k.user], k.product)
	}
	for k := range seats {
		if len(creds[k]) == 0 {
			byUser[k.user] = append(byUser[k.user], k.product)
		}
	}
	for k := range devices {
		if len(creds[k]) == 0 && !seats[k] {
			byUser[k.user] = append(byUser[k.user], k.product)
		}
	}
	out := []store.UserUse{}
	for _, u := range us {
		ps := byUser[u.ID]
		sort.Strings(ps)
		if len(ps) == 0 {
			ps = []string{product}
		}
		for _, p := range ps {
			h := users.Holding{Status: u.Status, Credentials: creds[key{u.ID, p}], Devices: devices[key{u.ID, p}].counting}
			d := users.Decide(h, now)
			row := store.UserUse{User: userName(u.Domain, u.Name), Key: u.Key, Product: p, Status: u.Status, External: u.External,
				Consumes: seats[key{u.ID, p}], Reason: d.Reason, Devices: h.Devices}
			if n := devices[key{u.ID, p}]; n.registered > n.counting {
				row.Reason += fmt.Sprintf(" (%d of %d devices inactive: their computers are not Active)", n.registered-n.counting, n.registered)
			}
			if u.External == "" {
				row.External = "not in a directory"
			} else if u.External == users.ExtDeleted {
				row.External = "deleted from directory"
			}
			for _, c := range h.Credentials {
				if !c.Live(now) {
					continue
				}
				switch c.Kind {
				case users.Token:
					row.Tokens++
				case users.QA:
					row.QA++
				case users.Certificate:
					row.Certificates++
				}
			}
			switch {
			case row.Consumes && !d.Consumes:
				row.Housekeeping = "the sweep frees this seat now: " + d.Reason
			case !row.Consumes && d.Consumes && !h.HasLiveCredential(now):
				row.Housekeeping = "waits for a seat with its devices: it takes the next one freed, or one at its device's next post"
			case !row.Consumes && d.Consumes:
				row.Housekeeping = "no seat: its license expired or was removed and no other had room; it takes one with its next credential"
			case u.Status == users.Active && u.External == users.ExtDisabled && row.Consumes:
				row.Housekeeping = "release-disabled-accounts frees this seat"
			}
			out = append(out, row)
		}
	}
	return out, nil
}

// deviceCount is a user's registered devices of a product, and those of
// them that count now.
type deviceCount struct{ registered, counting int }

// deviceCounts reads the device registrations of product (every product
// when empty) by user and product, for products with user licenses.
func (db *DB) deviceCounts(ctx context.Context, product string) (map[deviceKey]deviceCount, error) {
	type key = deviceKey
	q := `SELECT d.user_id, d.product, c.status FROM user_devices d JOIN computers c ON c.id = d.computer_id
		WHERE c.deleted_at IS NULL AND d.product IN (SELECT product FROM licenses WHERE kind = 'user')`
	var args []any
	if product != "" {
		q += ` AND d.product = ?`
		args = append(args, product)
	}
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("users-use-license: devices: %w", err)
	}
	defer rows.Close()
	out := map[key]deviceCount{}
	for rows.Next() {
		var k key
		var status string
		if err := rows.Scan(&k.user, &k.product, &status); err != nil {
			return nil, err
		}
		n := out[k]
		n.registered++
		if p, ok := db.engine.Catalog().Product(k.product); ok && p.DeviceCounts(status) {
			n.counting++
		}
		out[k] = n
	}
	return out, rows.Err()
}

// UserSeatUsage implements store.Users.
func (db *DB) UserSeatUsage(ctx context.Context) ([]store.UserSeatUsage, error) {
	now := db.clock.Now()
	ls, err := db.Licenses(ctx)
	if err != nil {
		return nil, err
	}
	by := map[string]*store.UserSeatUsage{}
	var names []string
	for _, l := range ls {
		if l.Kind != users.KindUser {
			continue
		}
		u := by[l.Product]
		if u == nil {
			u = &store.UserSeatUsage{Product: l.Product}
			by[l.Product] = u
			names = append(names, l.Product)
		}
		if l.Problem == "" && (l.ExpiresAt == nil || now.Before(*l.ExpiresAt)) {
			u.Granted += int(l.Seats)
		}
		u.Held += int(l.Held)
	}
	sort.Strings(names)
	out := []store.UserSeatUsage{}
	for _, n := range names {
		out = append(out, *by[n])
	}
	return out, nil
}

// moveExpiredUserSeats moves each seat of a user license that has expired
// to another license of the product with room, or frees it when none has:
// an expired license grants nothing, so seats held stay within seats
// granted. A user whose seat is lost keeps its credentials and takes a
// seat again when one is free and it next gains a credential or is enabled.
func (db *DB) moveExpiredUserSeats(tx *Tx, actor string, res *store.HousekeepingResult) error {
	return db.moveUserSeats(tx, `l.expires_at IS NOT NULL AND l.expires_at <= ?`, []any{ms(tx.Now)}, "expired", actor, res)
}

// moveUserSeats moves the seats of the user licenses where picks (over l,
// the license) to other licenses with room, or frees them.
func (db *DB) moveUserSeats(tx *Tx, where string, args []any, what, actor string, res *store.HousekeepingResult) error {
	rows, err := tx.Query(`SELECT s.user_id, s.product, s.license_id, u.domain, u.name FROM user_seats s
		JOIN licenses l ON l.id = s.license_id JOIN users u ON u.id = s.user_id
		WHERE `+where+` ORDER BY s.since, s.user_id`, args...)
	if err != nil {
		return err
	}
	type seat struct {
		user                     int64
		product, lic, domain, nm string
	}
	var seats []seat
	for rows.Next() {
		var s seat
		if err := rows.Scan(&s.user, &s.product, &s.lic, &s.domain, &s.nm); err != nil {
			rows.Close()
			return err
		}
		seats = append(seats, s)
	}
	rows.Close()
	for _, s := range seats {
		who := userName(s.domain, s.nm)
		if _, err := tx.Exec(`DELETE FROM user_seats WHERE user_id = ? AND product = ?`, s.user, s.product); err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE licenses SET held = held - 1 WHERE id = ?`, s.lic); err != nil {
			return err
		}
		why := fmt.Sprintf("license %s %s", s.lic, what)
		err := db.takeUserSeat(tx, s.user, s.product, who, why+": seat moved", actor, s.lic)
		switch {
		case err == nil:
			res.Items = append(res.Items, store.HousekeepingItem{User: who, Product: s.product, Action: why + ": seat moved to another license"})
		case errors.Is(err, store.ErrNoUserSeat):
			if err := addEvent(tx, store.Event{Actor: actor, Kind: eventUserSeatFreed, Product: s.product,
				Reason: fmt.Sprintf("user %s lost its seat: %s and no other license of %s has room", who, why, s.product)}); err != nil {
				return err
			}
			res.Items = append(res.Items, store.HousekeepingItem{User: who, Product: s.product, Action: why + ": no other license has room, seat freed", SeatFreed: true})
			res.SeatsFreed++
		default:
			return err
		}
	}
	return nil
}

// moveUserSeatsOff moves the user seats of a license being removed.
func (db *DB) moveUserSeatsOff(tx *Tx, licenseID, actor string) (store.HousekeepingResult, error) {
	var res store.HousekeepingResult
	err := db.moveUserSeats(tx, `l.id = ?`, []any{licenseID}, "removed", actor, &res)
	return res, err
}
