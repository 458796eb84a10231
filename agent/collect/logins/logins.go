// Package logins tells who uses a machine, for per-user licenses (seed
// 003): the users logged in now and the machine's primary user, the person
// the server registers the machine to as a device. Each operating system
// says it differently (utmp, wtmp and /etc/passwd on Linux, tasklist on
// Windows, who and the local directory on macOS); the parsers of what each
// says live in files every platform compiles, so their fixture tests run
// anywhere, and only the calls to the system are build-tagged.
package logins

import (
	"context"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tallyhq/tally/protocol"
)

// Source reports a machine's primary user (nil when none is known) and
// the users logged in now. The agent takes one in its options so that
// tests set the users a machine reports.
type Source func(ctx context.Context) (primary *protocol.User, logged []protocol.User, err error)

// Fixed is a Source that always reports the same users.
func Fixed(primary *protocol.User, logged ...protocol.User) Source {
	return func(context.Context) (*protocol.User, []protocol.User, error) {
		var p *protocol.User
		if primary != nil {
			c := *primary
			p = &c
		}
		return p, append([]protocol.User(nil), logged...), nil
	}
}

// System reads this machine's users from the operating system.
func System(ctx context.Context) (*protocol.User, []protocol.User, error) { return system(ctx) }

// Login is one login the system recorded, in any system's terms.
type Login struct {
	User string
	// Local is true for a login at the machine itself (a console, a
	// graphical seat), false for a remote one (ssh, remote desktop).
	Local bool
	Time  int64 // unix seconds; 0 when unknown
}

// Account is what the machine's own account database says of a name.
type Account struct {
	Display string
	// Person is false for system accounts (daemons, root), which never
	// stand for a user.
	Person bool
}

// Resolve turns login names into users: an account of the machine's own
// database (accounts) is local; a name it does not know is a network
// account, with its domain split off (CORP\alice, alice@corp.example.com).
// System accounts and the reserved names of utmp are left out.
func Resolve(name string, accounts map[string]Account) (protocol.User, bool) {
	name = strings.TrimSpace(name)
	if name == "" || reserved[strings.ToLower(name)] || !printable(name) || len(name) > maxName {
		return protocol.User{}, false
	}
	if a, ok := accounts[name]; ok {
		if !a.Person {
			return protocol.User{}, false
		}
		return protocol.User{Name: name, Local: true, Display: clip(a.Display)}, true
	}
	u := protocol.User{Name: name}
	if d, n, ok := strings.Cut(name, `\`); ok && d != "" && n != "" {
		u.Domain, u.Name = d, n
	} else if n, d, ok := strings.Cut(name, "@"); ok && d != "" && n != "" {
		u.Domain, u.Name = d, n
	}
	if reserved[strings.ToLower(u.Name)] || serviceDomains[strings.ToLower(u.Domain)] {
		return protocol.User{}, false
	}
	return u, true
}

// reserved are names utmp and its kin use for records that are no person.
var reserved = map[string]bool{"root": true, "reboot": true, "shutdown": true, "runlevel": true, "login": true, "(unknown)": true,
	"system": true, "local service": true, "network service": true, "n/a": true}

// serviceDomains are the pseudo-domains of Windows' service accounts.
var serviceDomains = map[string]bool{"nt authority": true, "window manager": true, "font driver host": true, "nt service": true}

// Primary picks the primary user from a login history: the user with the
// most logins at the machine itself, the latest login breaking a tie.
// Remote logins (an administrator's ssh session) never make a primary
// user; ok is false when no local login names a person.
func Primary(history []Login, accounts map[string]Account) (protocol.User, bool) {
	type score struct {
		n    int
		last int64
		seq  int
	}
	scores := map[string]*score{}
	for i, l := range history {
		if !l.Local {
			continue
		}
		if _, ok := Resolve(l.User, accounts); !ok {
			continue
		}
		s := scores[l.User]
		if s == nil {
			s = &score{}
			scores[l.User] = s
		}
		s.n++
		s.last, s.seq = max(s.last, l.Time), i
	}
	best := ""
	for name, s := range scores {
		b := scores[best]
		if best == "" || s.n > b.n || (s.n == b.n && (s.last > b.last || (s.last == b.last && s.seq > b.seq))) {
			best = name
		}
	}
	if best == "" {
		return protocol.User{}, false
	}
	return Resolve(best, accounts)
}

// Logged turns the logins of the sessions open now into users, each
// once, in name order, at most protocol.MaxUsersPerPost.
func Logged(open []Login, accounts map[string]Account) []protocol.User {
	seen := map[string]bool{}
	var out []protocol.User
	for _, l := range open {
		u, ok := Resolve(l.User, accounts)
		if !ok || seen[strings.ToLower(u.Domain+`\`+u.Name)] {
			continue
		}
		seen[strings.ToLower(u.Domain+`\`+u.Name)] = true
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool {
		return strings.ToLower(out[i].Domain+`\`+out[i].Name) < strings.ToLower(out[j].Domain+`\`+out[j].Name)
	})
	if len(out) > protocol.MaxUsersPerPost {
		out = out[:protocol.MaxUsersPerPost]
	}
	return out
}

// maxName is the protocol's bound on a name (protocol.User.Validate).
const maxName = 256

// clip makes a display name fit the protocol: printable, within maxName
// bytes, cut on a rune boundary.
func clip(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	if len(s) > maxName {
		s = strings.ToValidUTF8(s[:maxName], "")
	}
	return s
}

// printable reports whether a name can go on the wire as it is.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
