//go:build unix

package daemon

import "golang.org/x/sys/unix"

// diskSpace returns the bytes free (to an unprivileged writer) and the
// size of the file system holding path.
func diskSpace(path string) (free, total uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}
