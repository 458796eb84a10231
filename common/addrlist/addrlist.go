// Package addrlist reads a list of server addresses ("a:7443,b:7443"), the
// form in which the agent is given several server replicas and the server
// advertises them, so that both binaries accept and refuse the same lists.
package addrlist

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Max bounds a list: a few replicas, not a fleet of them, and a mistake
// (a file pasted into a flag) fails at once.
const Max = 16

// Check reports whether addr is HOST:PORT with a host and a port from 1 to
// 65535, the form agents can dial.
func Check(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Errorf("%q is not HOST:PORT (like tally.example.com:7443)", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("%q: %q is not a port number from 1 to 65535", addr, port)
	}
	return nil
}

// Parse reads addresses separated by commas (spaces around them are
// ignored), in order of preference. An empty entry, an address that is not
// HOST:PORT, or the same address twice is an error naming it.
func Parse(v string) ([]string, error) {
	if strings.TrimSpace(v) == "" {
		return nil, errors.New("no server address given (want HOST:PORT, or several separated by commas)")
	}
	parts := strings.Split(v, ",")
	if len(parts) > Max {
		return nil, fmt.Errorf("%d server addresses: at most %d", len(parts), Max)
	}
	out := make([]string, 0, len(parts))
	seen := map[string]int{}
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("server address %d of %d in %q is empty (a stray comma?)", i+1, len(parts), v)
		}
		if err := Check(p); err != nil {
			if len(parts) == 1 {
				return nil, err
			}
			return nil, fmt.Errorf("server address %d: %w", i+1, err)
		}
		key := strings.ToLower(p)
		if first, dup := seen[key]; dup {
			return nil, fmt.Errorf("server address %s is listed twice (%d and %d)", p, first, i+1)
		}
		seen[key] = i + 1
		out = append(out, p)
	}
	return out, nil
}

// Join writes a list as Parse reads it.
func Join(addrs []string) string { return strings.Join(addrs, ",") }
