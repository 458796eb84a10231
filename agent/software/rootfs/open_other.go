//go:build !unix

package rootfs

import "os"

const openFlags = os.O_RDONLY
