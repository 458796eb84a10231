//go:build unix

package listener

import (
	"errors"
	"net"
	"syscall"
)

// started waits, within nc's read deadline, until the client has sent its
// first bytes (the start of a TLS ClientHello), without reading them: a
// connection that never starts TLS then never holds a handshake slot.
func started(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	var buf [1]byte
	var n int
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		n, _, perr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK)
		return !errors.Is(perr, syscall.EAGAIN) && !errors.Is(perr, syscall.EINTR)
	})
	return err == nil && perr == nil && n > 0
}
