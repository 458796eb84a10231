// Package users holds the per-user license rule of seed 003 and the
// vocabulary around it: internal and external statuses, credential kinds,
// stable user keys, and the decision whether a user consumes a seat. It is
// pure (no storage, no clock of its own) so every store and the
// housekeeping tasks decide the same way.
package users

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// Internal statuses: only Active users consume.
const (
	Active   = "Active"
	Disabled = "Disabled"
	Deleted  = "Deleted"
)

// External statuses, as the directory last said; empty for a user no
// directory knows.
const (
	ExtActive   = "active"
	ExtDisabled = "disabled"
	ExtDeleted  = "deleted"
)

// KindUser is the license kind of a product licensed per user.
const KindUser = "user"

// Credential kinds that make an Active user consume a seat.
const (
	Token       = "token"
	Certificate = "certificate"
	QA          = "qa"
)

// ErrInvalid reports bad input from an admin or a directory.
var ErrInvalid = errors.New("invalid user input")

// Credential is what the rule needs of one credential.
type Credential struct {
	Kind    string
	Expires time.Time // zero: never
	Ended   bool      // revoked, disabled as unused, or cleared as expired
}

// Live says whether the credential is active at now: not ended and not
// past its expiry.
func (c Credential) Live(now time.Time) bool {
	return !c.Ended && (c.Expires.IsZero() || now.Before(c.Expires))
}

// Holding is what one user holds for one product.
type Holding struct {
	Status      string
	Credentials []Credential
	// Devices counts the user's registered devices that count: computers
	// whose primary user this is, holding the product's plug-in, Active
	// (or in any status, where the product's catalog rule says inactive
	// devices consume).
	Devices int
}

// HasLiveCredential reports whether any credential is active at now.
func (h Holding) HasLiveCredential(now time.Time) bool {
	for _, c := range h.Credentials {
		if c.Live(now) {
			return true
		}
	}
	return false
}

// Decision is whether a user consumes a seat of a product, and why.
type Decision struct {
	Consumes bool
	Reason   string
}

// Decide applies seed 003's rule: one seat while the user is Active and
// holds at least one live credential or device, however many.
func Decide(h Holding, now time.Time) Decision {
	live := map[string]int{}
	for _, c := range h.Credentials {
		if c.Live(now) {
			live[c.Kind]++
		}
	}
	var parts []string
	for _, k := range []string{Token, Certificate, QA} {
		if n := live[k]; n > 0 {
			parts = append(parts, plural(n, k))
		}
	}
	if h.Devices > 0 {
		parts = append(parts, plural(h.Devices, "device"))
	}
	switch {
	case h.Status != Active && len(parts) > 0:
		return Decision{false, fmt.Sprintf("internal status %s: holds %s but only Active users consume", h.Status, strings.Join(parts, ", "))}
	case h.Status != Active:
		return Decision{false, "internal status " + h.Status}
	case len(parts) == 0:
		return Decision{false, "no active credential or device"}
	}
	return Decision{true, "Active with " + strings.Join(parts, ", ")}
}

func plural(n int, what string) string {
	if what == QA {
		what = "Q&A record"
	}
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// Key is a user's stable key: the directory's GUID when it has one, else
// domain\name folded to lower case (names in AD and most LDAP servers
// compare without case).
func Key(guid, domain, name string) string {
	if guid != "" {
		return "guid:" + strings.ToLower(guid)
	}
	if domain == "" {
		return strings.ToLower(name)
	}
	return strings.ToLower(domain) + `\` + strings.ToLower(name)
}

// MaxName bounds names, domains and labels.
const MaxName = 256

// CheckName refuses empty, overlong or control-character names.
func CheckName(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: %s is empty", ErrInvalid, what)
	}
	if len(s) > MaxName {
		return fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalid, what, MaxName)
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return fmt.Errorf("%w: %s %q holds a control or invalid character", ErrInvalid, what, s)
		}
	}
	return nil
}

// SplitName splits "DOMAIN\name" or "name@domain"; a bare name has no
// domain.
func SplitName(s string) (domain, name string) {
	if d, n, ok := strings.Cut(s, `\`); ok {
		return d, n
	}
	if n, d, ok := strings.Cut(s, "@"); ok {
		return d, n
	}
	return "", s
}
