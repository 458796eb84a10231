package logins

import (
	"bytes"
	"encoding/binary"
	"strings"
)

// The utmp(5) record of glibc on Linux, the same on 32- and 64-bit
// machines: /var/run/utmp holds the sessions open now, /var/log/wtmp the
// history of logins, each a sequence of these records.
const (
	utmpSize      = 384
	utmpUserProc  = 7 // USER_PROCESS: a login
	utmpOffType   = 0
	utmpOffLine   = 8
	utmpOffUser   = 44
	utmpOffHost   = 76
	utmpOffTime   = 340
	utmpLineBytes = 32
	utmpUserBytes = 32
	utmpHostBytes = 256
)

// ParseUtmp reads the logins (USER_PROCESS records) of utmp or wtmp
// content, oldest first; a trailing partial record is ignored. A login is
// local when its line is a console, a virtual terminal or a graphical
// seat, or a terminal whose host is a local display (":0").
func ParseUtmp(b []byte) []Login {
	var out []Login
	for ; len(b) >= utmpSize; b = b[utmpSize:] {
		r := b[:utmpSize]
		if binary.LittleEndian.Uint16(r[utmpOffType:]) != utmpUserProc {
			continue
		}
		user := cstring(r[utmpOffUser : utmpOffUser+utmpUserBytes])
		if user == "" {
			continue
		}
		line := cstring(r[utmpOffLine : utmpOffLine+utmpLineBytes])
		host := cstring(r[utmpOffHost : utmpOffHost+utmpHostBytes])
		out = append(out, Login{User: user, Local: localLine(line, host), Time: int64(int32(binary.LittleEndian.Uint32(r[utmpOffTime:])))})
	}
	return out
}

func localLine(line, host string) bool {
	switch {
	case line == "console", strings.HasPrefix(line, "tty"), strings.HasPrefix(line, "seat"), strings.HasPrefix(line, ":"):
		return true
	case strings.HasPrefix(host, ":"): // a terminal of a local display
		return true
	}
	return false
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b))
}
