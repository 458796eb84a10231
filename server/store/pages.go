package store

import "context"

// Page sizes of the admin API's lists other than computers: a page holds
// DefaultPageLimit items unless asked otherwise, MaxPageLimit at most.
const (
	DefaultPageLimit = 500
	MaxPageLimit     = 1000
)

// AuditPages reads the audit log a page at a time, newest first, by event
// ID: an ID never changes, so a page boundary never skips or repeats an
// event while new ones arrive.
type AuditPages interface {
	// EventPage returns the newest f.Limit events matching f whose ID is
	// below before (0: no bound), oldest first.
	EventPage(ctx context.Context, f EventFilter, before int64) ([]Event, error)
}
