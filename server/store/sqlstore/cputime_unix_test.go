//go:build unix

package sqlstore_test

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user and system) this process has
// used: benchmarks report it per operation, which a machine shared with
// other work disturbs less than the wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
