package adminapi

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/tallyhq/tally/server/store"
)

// pageParams reads the limit of a list page: DefaultPageLimit when
// absent, at most MaxPageLimit.
func pageLimit(q url.Values) (int, error) {
	s := q.Get("limit")
	if s == "" {
		return store.DefaultPageLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > store.MaxPageLimit {
		return 0, fmt.Errorf("%w: limit %q: ask for 1 to %d items a page", store.ErrInvalid, s, store.MaxPageLimit)
	}
	return n, nil
}

// pageOf cuts one page out of a whole list the store returns in a stable
// order: the items after the one whose key is q's "after" (the cursor a
// previous page's next_after gave), at most q's "limit", and the cursor of
// the next page ("" on the last). These lists are short (licenses,
// Activation IDs, leases, secrets, admins), so the store reads them whole;
// the page bounds what one answer carries.
func pageOf[T any](items []T, key func(T) string, q url.Values) ([]T, string, error) {
	limit, err := pageLimit(q)
	if err != nil {
		return nil, "", err
	}
	start := 0
	if after := q.Get("after"); after != "" {
		start = -1
		for i, it := range items {
			if key(it) == after {
				start = i + 1
				break
			}
		}
		if start < 0 {
			return nil, "", fmt.Errorf("%w: after %q: no such item (removed since the previous page?): start again from the first page", store.ErrInvalid, after)
		}
	}
	end := min(start+limit, len(items))
	page := items[start:end]
	if page == nil {
		page = []T{}
	}
	next := ""
	if end < len(items) && end > start {
		next = key(items[end-1])
	}
	return page, next, nil
}

// checkParams refuses query parameters a list does not take.
func checkParams(q url.Values, allowed ...string) error {
	for k := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || a == k
		}
		if !ok {
			return fmt.Errorf("%w: unknown parameter %q: this list takes %v", store.ErrInvalid, k, allowed)
		}
	}
	return nil
}

// Pages of the lists other than computers and events.
type (
	// LicensePage is one page of GET /api/v1/licenses.
	LicensePage struct {
		Licenses []store.License `json:"licenses"`
		Next     string          `json:"next_after,omitempty"`
	}
	// ActivationPage is one page of GET /api/v1/activations.
	ActivationPage struct {
		Activations []store.Activation `json:"activations"`
		Next        string             `json:"next_after,omitempty"`
	}
	// LeasePage is one page of GET /api/v1/leases; a lease's cursor is
	// PRODUCT/COMPUTER.
	LeasePage struct {
		Leases []store.Lease `json:"leases"`
		Next   string        `json:"next_after,omitempty"`
	}
	// SecretPage is one page of GET /api/v1/secrets.
	SecretPage struct {
		Secrets []store.Secret `json:"secrets"`
		Next    string         `json:"next_after,omitempty"`
	}
	// AdminPage is one page of GET /api/v1/admins.
	AdminPage struct {
		Admins []store.AdminAccount `json:"admins"`
		Next   string               `json:"next_after,omitempty"`
	}
	// TokenPage is one page of GET /api/v1/tokens.
	TokenPage struct {
		Tokens []store.AdminToken `json:"tokens"`
		Next   string             `json:"next_after,omitempty"`
	}
	// EventPage is one page of GET /api/v1/events, oldest first; the next
	// (older) page is asked for with before=NextBefore.
	EventPage struct {
		Events     []store.Event `json:"events"`
		NextBefore int64         `json:"next_before,omitempty"`
	}
)

func leaseKey(l store.Lease) string { return l.Product + "/" + strconv.FormatInt(l.ComputerID, 10) }
