//go:build !linux

package directory_test

import (
	"errors"
	"time"
)

func processCPU() time.Duration { return 0 }

func pidCPU(int) (time.Duration, error) {
	return 0, errors.New("a process's CPU time is read on Linux only")
}
