package logins

import (
	"bufio"
	"strconv"
	"strings"

	"github.com/tallyhq/tally/protocol"
)

// ParseWho reads the output of who(1) or last(1) on macOS: the user
// and the line lead each row. Only the console is a login at the machine
// itself (the graphical login); terminals are shells, local or remote.
func ParseWho(out string) []Login {
	var logins []Login
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] == "wtmp" {
			continue // last's "wtmp begins …"
		}
		logins = append(logins, Login{User: f[0], Local: f[1] == "console"})
	}
	return logins
}

// ParseDscl reads 'dscl . -list /Users UniqueID': the local directory
// node's accounts, a person's from UID 500 up and not named _service.
func ParseDscl(out string) map[string]Account {
	accounts := map[string]Account{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		uid, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		accounts[f[0]] = Account{Person: uid >= 500 && !strings.HasPrefix(f[0], "_")}
	}
	return accounts
}

// FromDarwin turns what who, last and dscl say into the machine's users:
// the primary user is the one with the most console logins in last's
// history (the console's user now among them).
func FromDarwin(who, last, dscl string) (*protocol.User, []protocol.User) {
	accounts := ParseDscl(dscl)
	open := ParseWho(who)
	logged := Logged(open, accounts)
	p, ok := Primary(append(ParseWho(last), open...), accounts)
	if !ok {
		return nil, logged
	}
	return &p, logged
}
