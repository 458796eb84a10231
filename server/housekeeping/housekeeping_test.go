package housekeeping

import (
	"errors"
	"testing"

	"github.com/tallyhq/tally/server/store"
)

func TestCheck(t *testing.T) {
	r := store.HousekeepingRun{Task: DisableUnusedTokens}
	if err := Check(&r); err != nil || r.Days != DefaultDays {
		t.Fatalf("%+v %v", r, err)
	}
	for _, bad := range []store.HousekeepingRun{
		{Task: "reload-system-cache"}, {Task: ""}, {Task: DisableUnusedTokens, Days: -1},
		{Task: DisableUnusedTokens, Days: MaxDays + 1}, {Task: ReleaseDisabledAccounts, Group: "a\x00"},
	} {
		if err := Check(&bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}
