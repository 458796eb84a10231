package adminapi

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tallyhq/tally/server/store"
)

// The store's sentinels pick the status; the admin reads the sentence
// without them.
func TestErrorSentencesLeaveOutTheSentinel(t *testing.T) {
	for _, c := range []struct {
		err      error
		sentinel error
		want     string
	}{
		{fmt.Errorf("%w: status %q does not exist", store.ErrInvalid, "Bogus"), store.ErrInvalid, `status "Bogus" does not exist`},
		{fmt.Errorf("computer 7: %w", store.ErrNotFound), store.ErrNotFound, "computer 7: not found"},
		{fmt.Errorf("%w: %w", store.ErrConflict, errors.New("product already defined")), store.ErrConflict, "product already defined"},
		{fmt.Errorf("wrapped: %w", fmt.Errorf("%w: inner", store.ErrInvalid)), store.ErrInvalid, "wrapped: invalid: inner"},
	} {
		if got := sentence(c.err, c.sentinel); got != c.want {
			t.Errorf("sentence(%q) = %q, want %q", c.err, got, c.want)
		}
	}
}
