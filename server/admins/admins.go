// Package admins holds the rules of named administrators, independent of
// any store: roles and what each may do, admin names, argon2id password
// hashes, API tokens and console session identifiers (both random, kept
// only as SHA-256 hashes), session expiry, and the sign-in rate limiter.
package admins

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
)

// Role is what an admin may do; a higher role may do everything a lower one may.
type Role int

// Roles, lowest first.
const (
	Viewer   Role = 1 // reads everything
	Operator Role = 2 // also computers, activations, leases, maintenance
	Admin    Role = 3 // also licenses, products, secrets, admins
)

// Roles lists every role, lowest first.
var Roles = []Role{Viewer, Operator, Admin}

func (r Role) String() string {
	switch r {
	case Viewer:
		return "viewer"
	case Operator:
		return "operator"
	case Admin:
		return "admin"
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// Allows reports whether r may do what needs at least min.
func (r Role) Allows(min Role) bool { return r >= min }

// ErrInvalid marks input that breaks the rules of this package.
var ErrInvalid = errors.New("invalid")

// ParseRole reads a role name.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if strings.EqualFold(s, r.String()) {
			return r, nil
		}
	}
	return 0, fmt.Errorf("%w: role %q: use viewer (reads everything), operator (also computers, activations, leases, maintenance) or admin (everything)", ErrInvalid, s)
}

// MaxNameLen bounds an admin's name.
const MaxNameLen = 64

// CheckName validates an admin's name: 1 to 64 lower-case letters, digits,
// '.', '_', '-' or '@', starting with a letter or digit, so that it reads
// the same in audit records, URLs and shells.
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: an admin name has 1 to %d characters", ErrInvalid, MaxNameLen)
	}
	if name == "system" {
		return fmt.Errorf("%w: %q is the name audit records give the server itself: choose another", ErrInvalid, name)
	}
	for i, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && strings.ContainsRune("._-@", c)
		if !ok {
			return fmt.Errorf("%w: admin name %q: use lower-case letters, digits and . _ - @, starting with a letter or digit", ErrInvalid, name)
		}
	}
	return nil
}

// Password lengths: long enough to resist guessing, short enough that
// hashing a hostile one costs nothing extra.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 256
)

// CheckPassword validates a new password.
func CheckPassword(pw string) error {
	if len(pw) < MinPasswordLen || len(pw) > MaxPasswordLen {
		return fmt.Errorf("%w: a password has %d to %d characters", ErrInvalid, MinPasswordLen, MaxPasswordLen)
	}
	return nil
}

// Params are argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// DefaultParams are RFC 9106's second recommended option scaled to a
// server that signs in a few admins (19 MiB, two passes), as OWASP
// suggests (BenchmarkHashPassword measures it).
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

const (
	argonKeyLen  = 32
	argonSaltLen = 16
)

// HashPassword returns the PHC string of pw's argon2id hash with a random
// salt and DefaultParams.
func HashPassword(pw string) (string, error) { return HashPasswordParams(pw, DefaultParams) }

// HashPasswordParams is HashPassword with other costs (tests use cheap ones).
func HashPasswordParams(pw string, p Params) (string, error) {
	if err := CheckPassword(pw); err != nil {
		return "", err
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// DummyHash is verified when a sign-in names no admin with a password, so
// that the answer takes as long as for one that exists.
const DummyHash = "$argon2id$v=19$m=19456,t=2,p=1$c2lnbi1pbi1kdW1teQ$Zm9yIHRpbWluZyBvbmx5LCBtYXRjaGVzIG5vdGhpbmc"

// VerifyPassword reports whether pw matches the PHC string hash. The
// parameters are read from the hash (bounded, so a damaged row cannot make
// a sign-in allocate gigabytes), so hashes made with older ones still verify.
func VerifyPassword(hash, pw string) bool {
	if len(pw) > MaxPasswordLen {
		return false
	}
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var v int
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || m > 256*1024 || t == 0 || t > 10 || p == 0 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// TokenPrefix starts every API token issued for a named admin, so that a
// leaked one is recognisable (secret scanners, logs). The first admin's
// token, made by older servers in the data folder, has none and still works.
const TokenPrefix = "tly_"

// NewToken returns a new API token, its ID (shown in lists, used to
// revoke it) and the hash the store keeps; the token itself is shown once.
func NewToken() (token, id, hash string, err error) {
	b := make([]byte, 32)
	if _, err = rand.Read(b); err != nil {
		return "", "", "", err
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	if id, err = NewID("t-"); err != nil {
		return "", "", "", err
	}
	return token, id, HashSecret(token), nil
}

// NewID returns a short random identifier with the given prefix.
func NewID(prefix string) (string, error) {
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return prefix + strings.ToLower(base32NoPad.EncodeToString(b)), nil
}

// HashSecret is how tokens and session identifiers are stored: both are
// 256 random bits, so one SHA-256 suffices (no salt or slow hash needed),
// and a copy of the database lets nobody sign in.
func HashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// NewSessionID returns a new console session identifier for the cookie
// and the hash the store keeps.
func NewSessionID() (id, hash string, err error) {
	b := make([]byte, 32)
	if _, err = rand.Read(b); err != nil {
		return "", "", err
	}
	id = base64.RawURLEncoding.EncodeToString(b)
	return id, HashSecret(id), nil
}

// Session lifetimes: a console session ends after Idle without a request,
// and after Absolute whatever happens.
const (
	DefaultSessionIdle     = 30 * time.Minute
	DefaultSessionAbsolute = 12 * time.Hour
)

// SessionRules say how long a console session lives.
type SessionRules struct {
	Idle     time.Duration
	Absolute time.Duration
}

// WithDefaults fills in zero durations.
func (s SessionRules) WithDefaults() SessionRules {
	if s.Idle <= 0 {
		s.Idle = DefaultSessionIdle
	}
	if s.Absolute <= 0 {
		s.Absolute = DefaultSessionAbsolute
	}
	return s
}

// Live reports whether a session created at created and last used at
// lastSeen is still valid at now.
func (s SessionRules) Live(created, lastSeen, now time.Time) bool {
	s = s.WithDefaults()
	return now.Before(created.Add(s.Absolute)) && now.Before(lastSeen.Add(s.Idle))
}

var base32NoPad = base32.StdEncoding.WithPadding(base32.NoPadding)
