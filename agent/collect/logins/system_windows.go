//go:build windows

package logins

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"github.com/tallyhq/tally/protocol"
)

func system(ctx context.Context) (*protocol.User, []protocol.User, error) {
	out, err := exec.CommandContext(ctx, "tasklist", TasklistArgs...).Output()
	if err != nil {
		return nil, nil, fmt.Errorf("tasklist: %w", err)
	}
	host, _ := os.Hostname()
	p, logged := FromTasklist(string(out), host)
	return p, logged, nil
}
