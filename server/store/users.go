package store

import (
	"context"
	"errors"
	"time"
)

// ErrNoUserSeat reports a credential refused because every seat of the
// product's user licenses is held.
var ErrNoUserSeat = errors.New("no free user seat")

// User is a person who may consume per-user licenses (seed 003).
type User struct {
	ID        int64    `json:"id"`
	Key       string   `json:"key"`
	Domain    string   `json:"domain,omitempty"`
	Name      string   `json:"name"`
	Display   string   `json:"display,omitempty"`
	DN        string   `json:"dn,omitempty"`
	OU        string   `json:"ou,omitempty"`
	Groups    []string `json:"groups,omitempty"`
	Directory string   `json:"directory,omitempty"`
	// Source says where the user came from: admin, directory or agent
	// (a machine reported it as its primary or a logged-in user).
	Source      string    `json:"source"`
	Status      string    `json:"status"`
	External    string    `json:"external,omitempty"`
	ExternalWhy string    `json:"external_why,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// NewUser is a user an admin adds.
type NewUser struct {
	Domain, Name, Display string
}

// UserCredential is a token, certificate or security-question record of a
// user for one product.
type UserCredential struct {
	ID         int64      `json:"id"`
	User       string     `json:"user"`
	Product    string     `json:"product"`
	Kind       string     `json:"kind"`
	Label      string     `json:"label,omitempty"`
	IssuedAt   time.Time  `json:"issued_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	EndedAt    *time.Time `json:"ended_at,omitempty"`
	EndReason  string     `json:"end_reason,omitempty"`
	Active     bool       `json:"active"`
	// Secret is the token itself, returned once when it is issued.
	Secret string `json:"secret,omitempty"`
}

// NewCredential is a credential to add.
type NewCredential struct {
	User, Product, Kind, Label string
	Expires                    *time.Time
}

// Directory is an LDAP directory users are synced from.
type Directory struct {
	ID           int64         `json:"id"`
	Name         string        `json:"name"`
	URL          string        `json:"url"`
	BaseDN       string        `json:"base_dn"`
	BindDN       string        `json:"bind_dn"`
	PasswordFile string        `json:"password_file"`
	Filter       string        `json:"filter"`
	GroupFilter  string        `json:"group_filter"`
	Domain       string        `json:"domain"`
	StartTLS     bool          `json:"start_tls"`
	Interval     time.Duration `json:"interval"`
	LastSyncAt   *time.Time    `json:"last_sync_at,omitempty"`
	LastResult   string        `json:"last_result,omitempty"`
}

// DirectoryEntry is one user as a directory reports it.
type DirectoryEntry struct {
	GUID, Domain, Name, Display, DN, OU string
	Groups                              []string
	External, ExternalWhy               string
}

// SyncResult says what one directory sync changed.
type SyncResult struct {
	Seen       int `json:"seen"`
	Added      int `json:"added"`
	Updated    int `json:"updated"`
	Deleted    int `json:"deleted"`
	SeatsFreed int `json:"seats_freed"`
}

// HousekeepingRun asks for one housekeeping task.
type HousekeepingRun struct {
	Task    string
	DryRun  bool
	Days    int    // disable-unused-tokens
	Domain  string // release-disabled-accounts filters
	OU      string
	Group   string
	Product string // empty: every product
}

// HousekeepingItem is what a task did (or would do) to one user.
type HousekeepingItem struct {
	User      string `json:"user"`
	Product   string `json:"product,omitempty"`
	Action    string `json:"action"`
	SeatFreed bool   `json:"seat_freed"`
}

// HousekeepingResult is one task's outcome.
type HousekeepingResult struct {
	Task       string             `json:"task"`
	DryRun     bool               `json:"dry_run"`
	Items      []HousekeepingItem `json:"items"`
	SeatsFreed int                `json:"seats_freed"`
}

// UserUse is one row of the users-use-license report.
type UserUse struct {
	User         string `json:"user"`
	Key          string `json:"key"`
	Product      string `json:"product"`
	Status       string `json:"status"`
	External     string `json:"external"`
	Tokens       int    `json:"tokens"`
	QA           int    `json:"qa"`
	Certificates int    `json:"certificates"`
	Devices      int    `json:"devices"`
	Consumes     bool   `json:"consumes"`
	Reason       string `json:"reason"`
	Housekeeping string `json:"housekeeping,omitempty"`
}

// UserSeatUsage is granted and held user seats of one product.
type UserSeatUsage struct {
	Product string `json:"product"`
	Granted int    `json:"granted"`
	Held    int    `json:"held"`
}

// Users stores users, their credentials and their seats. Every method that
// can change whether a user consumes takes or frees the seat in the same
// transaction; none leaves seats held above seats granted.
type Users interface {
	AddUser(ctx context.Context, u NewUser, actor string) (User, error)
	Users(ctx context.Context) ([]User, error)
	// User finds a user by key, domain\name or name.
	User(ctx context.Context, ref string) (User, error)
	// SetUserStatus sets the internal status; it returns the seats freed.
	SetUserStatus(ctx context.Context, ref, status, actor string) (int, error)
	AddCredential(ctx context.Context, c NewCredential, actor string) (UserCredential, error)
	// EndCredential revokes one credential; it returns the seats freed.
	EndCredential(ctx context.Context, id int64, reason, actor string) (int, error)
	Credentials(ctx context.Context, ref, product string) ([]UserCredential, error)
	// UseToken records a token's use by its secret and returns it.
	UseToken(ctx context.Context, secret string) (UserCredential, error)

	AddDirectory(ctx context.Context, d Directory, actor string) (Directory, error)
	Directories(ctx context.Context) ([]Directory, error)
	// SyncDirectory merges a complete listing of a directory's users; users
	// of the directory missing from it are deleted and their seats freed.
	SyncDirectory(ctx context.Context, dir string, entries []DirectoryEntry, actor string) (SyncResult, error)
	// RecordSyncFailure notes a sync that could not list the directory.
	RecordSyncFailure(ctx context.Context, dir, why string) error

	// SweepUsers clears credentials past their expiry and frees their
	// seats; the server runs it at each expiry.
	SweepUsers(ctx context.Context) (HousekeepingResult, error)
	// NextCredentialExpiry is the earliest expiry of a live credential.
	NextCredentialExpiry(ctx context.Context) (time.Time, bool, error)
	Housekeeping(ctx context.Context, run HousekeepingRun, actor string) (HousekeepingResult, error)

	UsersUseLicense(ctx context.Context, product string) ([]UserUse, error)
	UserSeatUsage(ctx context.Context) ([]UserSeatUsage, error)
}
