//go:build darwin

package logins

import (
	"context"
	"fmt"
	"os/exec"

	"github.com/tallyhq/tally/protocol"
)

func system(ctx context.Context) (*protocol.User, []protocol.User, error) {
	run := func(name string, args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, name, args...).Output()
		if err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		return string(out), nil
	}
	dscl, err := run("/usr/bin/dscl", ".", "-list", "/Users", "UniqueID")
	if err != nil {
		return nil, nil, err
	}
	who, err := run("/usr/bin/who")
	if err != nil {
		return nil, nil, err
	}
	last, _ := run("/usr/bin/last", "-n", "1000", "-t", "console") // no history: the console's user now decides
	p, logged := FromDarwin(who, last, dscl)
	return p, logged, nil
}
