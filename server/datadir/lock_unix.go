//go:build unix

package datadir

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Lock takes an exclusive lock on the folder so that two servers never share
// one database. The lock ends with the process or with Unlock.
func (d Dir) Lock() (unlock func(), err error) {
	f, err := os.OpenFile(d.File("lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data folder: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another tally-server is already running on %s: stop it first, or use another --data folder", d.Path)
		}
		return nil, fmt.Errorf("lock data folder: %w", err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
