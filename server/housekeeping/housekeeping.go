// Package housekeeping names seed 003's housekeeping tasks and checks a
// run's parameters. The store carries a task out in one transaction, so a
// dry run (the same transaction rolled back) reports exactly what a real
// run frees; server/userscheduler runs the ones that must happen by
// themselves.
package housekeeping

import (
	"fmt"
	"strings"

	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/users"
)

// Task names, as the seed names them.
const (
	ClearExpiredTokens      = "clear-expired-tokens"
	ClearDeletedUsers       = "clear-deleted-directory-users"
	DisableUnusedTokens     = "disable-unused-tokens"
	ReleaseDisabledAccounts = "release-disabled-accounts"
)

// Tasks lists every task in the order "run all" runs them.
var Tasks = []string{ClearExpiredTokens, ClearDeletedUsers, DisableUnusedTokens, ReleaseDisabledAccounts}

// DefaultDays is how long a token may go unused before disable-unused-tokens
// disables it.
const DefaultDays = 90

// MaxDays bounds --days (about 100 years).
const MaxDays = 36500

// Check validates a run and fills its defaults.
func Check(r *store.HousekeepingRun) error {
	known := false
	for _, t := range Tasks {
		known = known || t == r.Task
	}
	if !known {
		return fmt.Errorf("%w: unknown housekeeping task %q (want one of %s)", store.ErrInvalid, r.Task, strings.Join(Tasks, ", "))
	}
	if r.Days == 0 {
		r.Days = DefaultDays
	}
	if r.Days < 1 || r.Days > MaxDays {
		return fmt.Errorf("%w: --days %d: give a number of days from 1 to %d", store.ErrInvalid, r.Days, MaxDays)
	}
	for what, v := range map[string]string{"domain": r.Domain, "OU": r.OU, "group": r.Group, "product": r.Product} {
		if v == "" {
			continue
		}
		if err := users.CheckName(what, v); err != nil {
			return fmt.Errorf("%w: %w", store.ErrInvalid, err)
		}
	}
	return nil
}
