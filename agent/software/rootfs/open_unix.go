//go:build unix

package rootfs

import (
	"os"
	"syscall"
)

// openFlags opens without blocking, so that a FIFO planted where a database
// should be cannot hang the agent; Open then refuses it as not regular.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK | syscall.O_NOCTTY
