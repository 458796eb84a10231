package logins

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
)

// minPersonUID is where login.defs' UID_MIN puts people's accounts on
// every current distribution; below it are system accounts.
const minPersonUID = 1000

// ParsePasswd reads passwd(5) content into the machine's accounts: a
// person's account has a UID from minPersonUID up (65534, nobody,
// excluded), its display name is the GECOS field's first part.
func ParsePasswd(b []byte) map[string]Account {
	out := map[string]Account{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "+") || strings.HasPrefix(line, "-") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 7 || f[0] == "" {
			continue
		}
		uid, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		gecos, _, _ := strings.Cut(f[4], ",")
		out[f[0]] = Account{Display: strings.TrimSpace(gecos), Person: uid >= minPersonUID && uid != 65534}
	}
	return out
}
