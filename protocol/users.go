package protocol

import (
	"errors"
	"fmt"
	"unicode"
)

// UsersRevision is the first revision whose basic inventory names the
// machine's users (PrimaryUser, Users). Older agents leave both out, which
// a server reads as it reads a post with nobody logged in: no change of
// the machine's primary user.
const UsersRevision uint16 = 7

// MaxUsersPerPost bounds the logged-in users one basic inventory lists: a
// terminal server has a few dozen sessions at most.
const MaxUsersPerPost = 64

// User is a person's account on the machine, as the operating system
// names it.
type User struct {
	Name string `cbor:"1,keyasint" json:"name"`
	// Domain is the account's directory domain (CORP in CORP\alice), empty
	// for a local account or a network account the OS names without one.
	Domain string `cbor:"2,keyasint,omitempty" json:"domain,omitempty"`
	// Local is true for an account of this machine only (/etc/passwd, the
	// local SAM, the local directory node): the same name on two machines
	// is two people.
	Local   bool   `cbor:"3,keyasint,omitempty" json:"local,omitempty"`
	Display string `cbor:"4,keyasint,omitempty" json:"display,omitempty"`
}

// Validate checks the user's names: present, bounded, printable.
func (u *User) Validate() error {
	if u.Name == "" {
		return errors.New("user name is missing")
	}
	for _, f := range []struct{ what, v string }{{"user name", u.Name}, {"user domain", u.Domain}, {"user display name", u.Display}} {
		if err := checkStrings(maxShortString, f.what, f.v); err != nil {
			return err
		}
		for _, r := range f.v {
			if unicode.IsControl(r) {
				return fmt.Errorf("%s %q holds a control character", f.what, truncate(f.v))
			}
		}
	}
	return nil
}

// validateUsers checks a basic inventory's users.
func validateUsers(primary *User, logged []User) error {
	if len(logged) > MaxUsersPerPost {
		return fmt.Errorf("more than %d logged-in users", MaxUsersPerPost)
	}
	if primary != nil {
		if err := primary.Validate(); err != nil {
			return fmt.Errorf("primary user: %w", err)
		}
	}
	for i := range logged {
		if err := logged[i].Validate(); err != nil {
			return fmt.Errorf("logged-in user: %w", err)
		}
	}
	return nil
}
