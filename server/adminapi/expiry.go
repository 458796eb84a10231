package adminapi

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
)

// Dates is how the server shows dates to admins and reads the dates they
// type: in its time zone, with a warning window before each end date
// (licenses, upgrade protection, Activation IDs), as seed 004's
// "expiring within the next" listing does.
type Dates struct {
	Zone   *time.Location // default: UTC
	Window time.Duration  // default: license.DefaultExpiryWarning
	Clock  clock.Clock    // default: the system clock
}

func (d Dates) zone() *time.Location {
	if d.Zone == nil {
		return time.UTC
	}
	return d.Zone
}

func (d Dates) window() time.Duration {
	if d.Window == 0 {
		return license.DefaultExpiryWarning
	}
	return d.Window
}

// Now is the clock's time in the server's zone.
func (d Dates) Now() time.Time {
	c := d.Clock
	if c == nil {
		c = clock.System{}
	}
	return c.Now().In(d.zone())
}

// ParseEnd reads an end date an admin typed: a day means its end in the
// server's zone.
func (d Dates) ParseEnd(s string) (time.Time, error) {
	return license.ParseEndDate(s, d.zone())
}

func (d Dates) in(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.In(d.zone())
	return &v
}

// License fills in l's end dates and shows its times in the server's zone.
func (d Dates) License(l *store.License, now time.Time) {
	l.IssuedAt, l.ImportedAt = l.IssuedAt.In(d.zone()), l.ImportedAt.In(d.zone())
	l.ExpiresAt, l.UpgradeUntil = d.in(l.ExpiresAt), d.in(l.UpgradeUntil)
	e := license.ExpiryState(deref(l.ExpiresAt), now, d.window())
	l.ExpiryState, l.Expiry, l.DaysLeft = e.State, e.Phrase, daysLeft(l.ExpiresAt, e)
	if l.UpgradeUntil != nil {
		u := license.UpgradeState(*l.UpgradeUntil, now, d.window())
		l.UpgradeState, l.Upgrade, l.UpgradeDaysLeft = u.State, u.Phrase, daysLeft(l.UpgradeUntil, u)
	}
}

// Activation fills in a's end date and shows its times in the server's zone.
func (d Dates) Activation(a *store.Activation, now time.Time) {
	a.CreatedAt = a.CreatedAt.In(d.zone())
	a.ExpiresAt = d.in(a.ExpiresAt)
	e := license.ExpiryState(deref(a.ExpiresAt), now, d.window())
	a.ExpiryState, a.Expiry, a.DaysLeft = e.State, e.Phrase, daysLeft(a.ExpiresAt, e)
	for i := range a.Holders {
		a.Holders[i].ActivatedAt = a.Holders[i].ActivatedAt.In(d.zone())
	}
}

// Usage fills in the end dates of a usage row's licenses, and the row's
// Expires: the phrase of its soonest end that needs attention.
func (d Dates) Usage(u *store.Usage, now time.Time) {
	var soonest *store.LicenseUsage
	for i := range u.Licenses {
		l := &u.Licenses[i]
		d.License(&l.License, now)
		if l.ExpiryState == license.StateValid {
			continue
		}
		if soonest == nil || l.ExpiresAt.Before(*soonest.ExpiresAt) {
			soonest = l
		}
	}
	u.Expires = ""
	if soonest != nil {
		u.Expires = soonest.Expiry
	}
	for i := range u.Holders {
		u.Holders[i].Since = u.Holders[i].Since.In(d.zone())
	}
}

// Expiring lists what ends within the warning window or has ended: the
// licenses, their upgrade protection, and active Activation IDs, soonest
// first. An expired license stays listed until it is removed, as seed
// 004's "Overdue" listing keeps it.
func (d Dates) Expiring(ls []store.License, as []store.Activation, now time.Time) []store.Expiring {
	out := []store.Expiring{}
	add := func(what, id, product string, end *time.Time, e license.Expiry) {
		if end == nil || e.State == license.StateValid {
			return
		}
		out = append(out, store.Expiring{What: what, ID: id, Product: product, EndsAt: end.In(d.zone()), DaysLeft: e.DaysLeft, State: e.State, Phrase: e.Phrase})
	}
	for _, l := range ls {
		add("license", l.ID, l.Product, l.ExpiresAt, license.ExpiryState(deref(l.ExpiresAt), now, d.window()))
		if l.UpgradeUntil != nil && (l.ExpiresAt == nil || l.UpgradeUntil.Before(*l.ExpiresAt)) {
			add("upgrade-protection", l.ID, l.Product, l.UpgradeUntil, license.UpgradeState(*l.UpgradeUntil, now, d.window()))
		}
	}
	for _, a := range as {
		if a.Status == "inactive" {
			continue
		}
		add("activation", a.ID, a.Product, a.ExpiresAt, license.ExpiryState(deref(a.ExpiresAt), now, d.window()))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].EndsAt.Before(out[j].EndsAt) })
	return out
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func daysLeft(end *time.Time, e license.Expiry) *int {
	if end == nil {
		return nil
	}
	n := e.DaysLeft
	return &n
}

// ParseExpiry reads an expiry an admin typed for an enrollment secret: a
// day (the end of it in the server's zone), an RFC 3339 time, or a
// duration from now (72h, 30d). It must lie in the future.
func (d Dates) ParseExpiry(s string) (time.Time, error) {
	now := d.Now()
	t, err := d.ParseEnd(s)
	if err != nil {
		var dur time.Duration
		if n, ok := strings.CutSuffix(s, "d"); ok {
			if days, err := strconv.Atoi(n); err == nil && days > 0 && days <= 36500 {
				dur = time.Duration(days) * 24 * time.Hour
			}
		} else if v, err := time.ParseDuration(s); err == nil && v > 0 {
			dur = v
		}
		if dur == 0 {
			return time.Time{}, fmt.Errorf("expires %q: use a date (2027-01-31, valid through that day in %s), a time (RFC 3339) or a duration from now (72h, 30d)", s, d.zone())
		}
		t = now.Add(dur)
	}
	if !t.After(now) {
		return time.Time{}, fmt.Errorf("expires %q is in the past (now is %s in %s): give a later date", s, now.Format("2006-01-02 15:04"), d.zone())
	}
	return t, nil
}

// ExpiringNow lists what ends within the warning window, from the store.
func ExpiringNow(ctx context.Context, st store.Store, d Dates) ([]store.Expiring, error) {
	ls, err := st.Licenses(ctx)
	if err != nil {
		return nil, err
	}
	as, err := st.ActivationList(ctx)
	if err != nil {
		return nil, err
	}
	return d.Expiring(ls, as, d.Now()), nil
}
