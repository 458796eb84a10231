package logins

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tallyhq/tally/protocol"
)

// wtmpRecords is how much login history the primary user is chosen
// from: the newest 4,096 logins read from the end of wtmp (1.5 MiB), so
// a machine years old costs the same as a new one.
const wtmpRecords = 4096

// FromFiles reads a Linux system's users under root ("/" for this
// machine): the open sessions of run/utmp (or var/run/utmp), the history
// of var/log/wtmp and the accounts of etc/passwd. A missing utmp or wtmp
// (a container, a system that keeps logins in logind only) means no
// sessions or no history, not an error.
func FromFiles(root string) (*protocol.User, []protocol.User, error) {
	passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil {
		return nil, nil, fmt.Errorf("read accounts: %w", err)
	}
	accounts := ParsePasswd(passwd)
	var open []Login
	for _, p := range []string{"run/utmp", "var/run/utmp"} {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err == nil {
			open = ParseUtmp(b)
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("read sessions: %w", err)
		}
	}
	history, err := tail(filepath.Join(root, "var/log/wtmp"), wtmpRecords*utmpSize)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("read login history: %w", err)
	}
	logins := ParseUtmp(history)
	logged := Logged(open, accounts)
	// The sessions open now count as logins too: a machine whose wtmp
	// was rotated this morning still has the person sitting at it.
	p, ok := Primary(append(logins, open...), accounts)
	if !ok {
		return nil, logged, nil
	}
	return &p, logged, nil
}

// tail reads the last n bytes of a file, whole records only.
func tail(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size() - st.Size()%utmpSize
	off := max(0, size-n)
	b := make([]byte, size-off)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}
