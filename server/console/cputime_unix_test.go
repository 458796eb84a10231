//go:build unix

package console_test

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user and system) this process has
// used: the benchmark reports it per page, which a machine shared with
// other work disturbs less than the wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
