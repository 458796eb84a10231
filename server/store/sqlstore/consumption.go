package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"github.com/tallyhq/tally/server/positions"
)

// Consumption of software licenses is counted from sw_recognitions in one
// grouped read: per application, the computers it is on (as a bitset) and
// their packages, the computers that do not consume (retired, disposed,
// deleted) left out. A license's consumption is then the size of the
// union of its applications' bitsets. Joining each recognition with its
// computer, and COUNT(DISTINCT) per license, took seconds at 10,000
// computers (see docs/PERFORMANCE.md).

// bitset is a set of computer IDs.
type bitset []uint64

func (b bitset) has(id int64) bool {
	w := id >> 6
	return id >= 0 && w < int64(len(b)) && b[w]&(1<<(id&63)) != 0
}

func (b *bitset) add(id int64) {
	w := int(id >> 6)
	if w >= len(*b) {
		*b = append(*b, make([]uint64, w+1-len(*b))...)
	}
	(*b)[w] |= 1 << (id & 63)
}

// or adds every member of o.
func (b *bitset) or(o bitset) {
	if len(o) > len(*b) {
		*b = append(*b, make([]uint64, len(o)-len(*b))...)
	}
	for i, w := range o {
		(*b)[i] |= w
	}
}

func (b bitset) count() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}

// appUse is where one application is installed.
type appUse struct {
	installed bitset // live computers (not deleted)
	consuming bitset // computers that consume licenses
	packages  int    // installations (recognised packages) on consuming computers
}

// appUses reads every application's installations.
func (db *DB) appUses(ctx context.Context) (map[int64]*appUse, error) {
	uses, _, err := db.appUsesIdle(ctx)
	return uses, err
}

// appUsesIdle reads every application's installations, and the computers
// that consume no license.
func (db *DB) appUsesIdle(ctx context.Context) (map[int64]*appUse, bitset, error) {
	var deleted, idle bitset
	rows, err := db.r.QueryContext(ctx, `SELECT c.id, c.deleted_at IS NOT NULL FROM computers c WHERE NOT (`+consumingSQL+`)`)
	if err != nil {
		return nil, nil, fmt.Errorf("read computers: %w", err)
	}
	for rows.Next() {
		var id int64
		var del bool
		if err := rows.Scan(&id, &del); err != nil {
			rows.Close()
			return nil, nil, err
		}
		idle.add(id)
		if del {
			deleted.add(id)
		}
	}
	rows.Close()
	rows, err = db.r.QueryContext(ctx, `SELECT application_id, group_concat(computer_id || ':' || packages) FROM sw_recognitions GROUP BY application_id`)
	if err != nil {
		return nil, nil, fmt.Errorf("read recognitions: %w", err)
	}
	defer rows.Close()
	out := map[int64]*appUse{}
	for rows.Next() {
		var app int64
		var list string
		if err := rows.Scan(&app, &list); err != nil {
			return nil, nil, err
		}
		u := &appUse{}
		for len(list) > 0 {
			var item string
			item, list, _ = strings.Cut(list, ",")
			cs, ps, _ := strings.Cut(item, ":")
			c, err1 := strconv.ParseInt(cs, 10, 64)
			p, err2 := strconv.Atoi(ps)
			if err1 != nil || err2 != nil || c < 0 {
				return nil, nil, fmt.Errorf("read recognitions of application %d: bad entry %q", app, item)
			}
			if !deleted.has(c) {
				u.installed.add(c)
			}
			if !idle.has(c) {
				u.consuming.add(c)
				u.packages += p
			}
		}
		out[app] = u
	}
	return out, idle, rows.Err()
}

// licenseUse is the consumption of a license of the given applications:
// computers where any is installed, and installations.
func licenseUse(uses map[int64]*appUse, apps []int64) (consumed, raw int) {
	if len(apps) == 1 {
		if u := uses[apps[0]]; u != nil {
			return u.consuming.count(), u.packages
		}
		return 0, 0
	}
	var union bitset
	for _, a := range apps {
		if u := uses[a]; u != nil {
			union.or(u.consuming)
			raw += u.packages
		}
	}
	return union.count(), raw
}

// licenseInstalled is the set of consuming computers where any of the
// applications is installed.
func licenseInstalled(uses map[int64]*appUse, apps []int64) bitset {
	if len(apps) == 1 {
		if u := uses[apps[0]]; u != nil {
			return u.consuming
		}
		return nil
	}
	var union bitset
	for _, a := range apps {
		if u := uses[a]; u != nil {
			union.or(u.consuming)
		}
	}
	return union
}

// primaryUsers reads each computer's primary user: the lowest user ID
// when several are recorded, as device registrations read it.
func primaryUsers(ctx context.Context, q posQuerier) (map[int64]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT computer_id, MIN(user_id) FROM computer_users WHERE role = 'primary' GROUP BY computer_id`)
	if err != nil {
		return nil, fmt.Errorf("read primary users: %w", err)
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var c, u int64
		if err := rows.Scan(&c, &u); err != nil {
			return nil, fmt.Errorf("read primary users: %w", err)
		}
		out[c] = u
	}
	return out, rows.Err()
}

// members lists the computers of a bitset.
func (b bitset) members() []int64 {
	var out []int64
	for i, w := range b {
		for w != 0 {
			out = append(out, int64(i)<<6|int64(bits.TrailingZeros64(w)))
			w &= w - 1
		}
	}
	return out
}

// fleetUse is what the consumption of every license is counted from,
// read once for a list or a report.
type fleetUse struct {
	uses    map[int64]*appUse
	idle    bitset
	primary map[int64]int64 // read only when a per-user license needs it
}

// readFleetUse reads the installations and the computers that consume
// nothing, and the primary users when perUser says a license needs them.
func (db *DB) readFleetUse(ctx context.Context, perUser bool) (fleetUse, error) {
	var f fleetUse
	var err error
	if f.uses, f.idle, err = db.appUsesIdle(ctx); err != nil {
		return f, err
	}
	if perUser {
		f.primary, err = primaryUsers(ctx, db.r)
	}
	return f, err
}

// license is the consumption of a license of the type, applications and
// allocations: consumed (computers, or for type user their users, where
// it is installed), raw (installations) and reserved (by allocation
// alone).
func (f fleetUse) license(typ string, apps, allocated []int64) (consumed, raw, reserved int) {
	consumed, raw = licenseUse(f.uses, apps)
	if typ != positions.TypeUser {
		return consumed, raw, reservedOf(f.uses, f.idle, apps, allocated)
	}
	consumed, reserved = positions.PerUser(licenseInstalled(f.uses, apps).members(), allocated,
		func(c int64) bool { return !f.idle.has(c) },
		func(c int64) (int64, bool) { u, ok := f.primary[c]; return u, ok })
	return consumed, raw, reserved
}

// userConsumption counts one per-user license's consumed and reserved
// users (positions.PerUser) from the store.
func userConsumption(ctx context.Context, q posQuerier, id int64) (consumed, reserved int, err error) {
	rows, err := q.QueryContext(ctx, `SELECT x.computer_id, MAX(x.installed),
		(SELECT MIN(cu.user_id) FROM computer_users cu WHERE cu.computer_id = x.computer_id AND cu.role = 'primary')
		FROM (SELECT r.computer_id AS computer_id, 1 AS installed
			FROM sw_license_applications la JOIN sw_recognitions r ON r.application_id = la.application_id
			JOIN computers c ON c.id = r.computer_id WHERE la.license_id = ? AND `+consumingSQL+`
		UNION ALL
		SELECT al.computer_id AS computer_id, 0 AS installed
			FROM sw_allocations al JOIN computers c ON c.id = al.computer_id WHERE al.license_id = ? AND `+consumingSQL+`) x
		GROUP BY x.computer_id ORDER BY x.computer_id`, id, id)
	if err != nil {
		return 0, 0, fmt.Errorf("read per-user consumption: %w", err)
	}
	defer rows.Close()
	var installed, allocated []int64
	primary := map[int64]int64{}
	for rows.Next() {
		var c int64
		var inst int
		var u sql.NullInt64
		if err := rows.Scan(&c, &inst, &u); err != nil {
			return 0, 0, fmt.Errorf("read per-user consumption: %w", err)
		}
		if inst == 1 {
			installed = append(installed, c)
		} else {
			allocated = append(allocated, c)
		}
		if u.Valid {
			primary[c] = u.Int64
		}
	}
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("read per-user consumption: %w", err)
	}
	consumed, reserved = positions.PerUser(installed, allocated, func(int64) bool { return true },
		func(c int64) (int64, bool) { u, ok := primary[c]; return u, ok })
	return consumed, reserved, nil
}
