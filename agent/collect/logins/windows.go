package logins

import (
	"encoding/csv"
	"strings"

	"github.com/tallyhq/tally/protocol"
)

// TasklistArgs ask Windows for the desktop shell of every interactive
// session, whose owner is the session's user, as DOMAIN\name.
var TasklistArgs = []string{"/v", "/fo", "csv", "/nh", "/fi", "IMAGENAME eq explorer.exe"}

// ParseTasklist reads the output of tasklist with TasklistArgs: one CSV
// row per desktop shell ("Image Name","PID","Session Name","Session#",
// "Mem Usage","Status","User Name",…; the column order is fixed, the
// headers are localized and left out). A session named Console is the
// user at the machine; RDP sessions are remote. A user whose domain is
// the machine's own name (machine, as os.Hostname says it) is a local
// account, returned by bare name and listed in accounts.
func ParseTasklist(out, machine string) (open []Login, accounts map[string]Account) {
	accounts = map[string]Account{}
	r := csv.NewReader(strings.NewReader(out))
	r.FieldsPerRecord = -1
	rows, _ := r.ReadAll() // a malformed tail leaves the rows before it
	machine = strings.ToLower(netbios(machine))
	for _, f := range rows {
		if len(f) < 7 {
			continue // "INFO: No tasks are running…"
		}
		user := strings.TrimSpace(f[6])
		if d, n, ok := strings.Cut(user, `\`); ok && (strings.EqualFold(d, machine) || d == ".") {
			user = n
			accounts[n] = Account{Person: true}
		}
		open = append(open, Login{User: user, Local: strings.EqualFold(strings.TrimSpace(f[2]), "console")})
	}
	return open, accounts
}

// netbios is the machine's NetBIOS name, which prefixes its local
// accounts: the host name's first label, at most 15 characters.
func netbios(host string) string {
	host, _, _ = strings.Cut(host, ".")
	if len(host) > 15 {
		host = host[:15]
	}
	return host
}

// FromTasklist turns tasklist's output into the machine's users: the
// console session's user is the primary user.
func FromTasklist(out, machine string) (*protocol.User, []protocol.User) {
	open, accounts := ParseTasklist(out, machine)
	logged := Logged(open, accounts)
	p, ok := Primary(open, accounts)
	if !ok {
		return nil, logged
	}
	return &p, logged
}
