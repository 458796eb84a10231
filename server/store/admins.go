package store

import (
	"context"
	"time"
)

// AdminAccount is a named administrator.
type AdminAccount struct {
	Name        string     `json:"name"`
	Role        string     `json:"role"` // viewer, operator, admin
	HasPassword bool       `json:"has_password"`
	CreatedAt   time.Time  `json:"created_at"`
	Tokens      int        `json:"tokens"`              // API tokens not revoked
	LastSeen    *time.Time `json:"last_seen,omitempty"` // last use of a token or session
}

// AdminToken is one API token of an admin; the token itself is never
// stored, only its hash.
type AdminToken struct {
	ID        string     `json:"id"`
	Admin     string     `json:"admin"`
	Label     string     `json:"label,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	LastUsed  *time.Time `json:"last_used,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// AdminSession is a console session as stored (by the hash of its
// identifier).
type AdminSession struct {
	Admin     string    `json:"admin"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	LastSeen  time.Time `json:"last_seen"`
}

// Audit event kinds of admin accounts.
const (
	EventAdminAdded    = "admin.added"
	EventAdminRemoved  = "admin.removed"
	EventAdminPassword = "admin.password-changed"
	EventTokenIssued   = "admin.token-issued"
	EventTokenRevoked  = "admin.token-revoked"
	EventSignedIn      = "admin.signed-in"
	EventSignedOut     = "admin.signed-out"
)

// FirstAdmin is the name of the admin that holds the data folder's token.
const FirstAdmin = "admin"

// Admins keeps named admins, their tokens and their console sessions. It
// stores hashes only; the rules (roles, names, hashing) are package
// admins'.
type Admins interface {
	// EnsureFirstAdmin makes, when no admin exists yet, the admin
	// FirstAdmin with role admin holding the token of hash tokenHash: on
	// first start, and on the first start of a server upgraded from
	// before named admins. It reports whether it made it. Later, a
	// different tokenHash (the token file replaced) replaces that token,
	// unless an admin revoked it.
	EnsureFirstAdmin(ctx context.Context, tokenHash string) (bool, error)
	// AddAdmin adds an admin; an existing name is ErrConflict.
	AddAdmin(ctx context.Context, name, role, passwordHash, actor string) (AdminAccount, error)
	ListAdmins(ctx context.Context) ([]AdminAccount, error)
	// AdminLogin returns an admin and its password hash ("" if none).
	AdminLogin(ctx context.Context, name string) (AdminAccount, string, error)
	// RemoveAdmin removes an admin with its tokens and sessions; removing
	// the last admin of role admin is ErrConflict.
	RemoveAdmin(ctx context.Context, name, actor string) error
	// SetAdminPassword replaces an admin's password and ends its sessions.
	SetAdminPassword(ctx context.Context, name, passwordHash, actor string) error
	// IssueToken stores a new token (by its hash) for an admin.
	IssueToken(ctx context.Context, admin, id, tokenHash, label, actor string) (AdminToken, error)
	// RevokeToken revokes a token by its ID; revoking twice is not an error.
	RevokeToken(ctx context.Context, id, actor string) (AdminToken, error)
	// AdminTokens lists tokens, of one admin or (admin "") of all.
	AdminTokens(ctx context.Context, admin string) ([]AdminToken, error)
	// TokenAdmin returns the admin holding the live token of that hash,
	// ErrNotFound if none, and notes its use (at most once a minute).
	TokenAdmin(ctx context.Context, tokenHash string) (AdminAccount, AdminToken, error)
	// CreateSession stores a console session for an admin.
	CreateSession(ctx context.Context, sessionHash, admin string) (AdminSession, error)
	// Session returns the session of that hash, ErrNotFound if none.
	Session(ctx context.Context, sessionHash string) (AdminSession, error)
	// TouchSession notes a session's use now (for the idle timeout).
	TouchSession(ctx context.Context, sessionHash string) error
	// DeleteSession ends a session; ending an ended one is not an error.
	DeleteSession(ctx context.Context, sessionHash string) error
	// DeleteSessionsBefore removes sessions created before created or idle
	// since before idle: expired by the server's rules.
	DeleteSessionsBefore(ctx context.Context, created, idle time.Time) (int, error)
}

type actorKey struct{}

// WithActor returns a context naming who acts, for the store methods that
// take no actor argument (secrets, statuses, tasks).
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorOf returns the actor WithActor put in ctx, ActorAdmin if none.
func ActorOf(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return ActorAdmin
}
