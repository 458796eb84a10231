package atomicfile

import (
	"errors"
	"io/fs"
	"runtime"
)

// isUnsupported reports whether err means "directories cannot be synced here".
func isUnsupported(err error) bool {
	return runtime.GOOS == "windows" || errors.Is(err, fs.ErrInvalid) || errors.Is(err, fs.ErrPermission)
}
