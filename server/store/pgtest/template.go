package pgtest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// template returns the data folder of a fresh initdb kept in the temporary
// folder for this PostgreSQL and owner, making it on first use: copying
// it is several times faster than initdb, which every test binary that
// starts a cluster would otherwise run.
func (c *Cluster) template() (string, error) {
	version, err := c.command("postgres", "--version").Output()
	if err != nil {
		return "", err
	}
	uid := os.Geteuid()
	if c.cred != nil {
		uid = int(c.cred.Uid)
	}
	key := sha256.Sum256(append([]byte(c.bin+"\x00"), version...))
	cache := filepath.Join(os.TempDir(), fmt.Sprintf("pgtest-initdb-%x-%d", key[:6], uid))
	data := filepath.Join(cache, "data")
	if trusted(cache, uid) {
		return data, nil
	}
	// Made aside and renamed into place, so that no one copies a half-made
	// template; of two test binaries making it at once, one rename wins.
	tmp, err := os.MkdirTemp(os.TempDir(), "pgtest-initdb-tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := c.chown(tmp); err != nil {
		return "", err
	}
	if err := c.initdb(filepath.Join(tmp, "data")); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, cache); err != nil && !trusted(cache, uid) {
		return "", err
	}
	if !trusted(cache, uid) {
		return "", errors.New("pgtest: the initdb template is not ours")
	}
	return data, nil
}

// trusted reports whether the template at cache is complete and was made
// by uid alone: the temporary folder is shared with other users.
func trusted(cache string, uid int) bool {
	for _, p := range []string{cache, filepath.Join(cache, "data"), filepath.Join(cache, "data", "PG_VERSION")} {
		st, err := os.Lstat(p)
		if err != nil {
			return false
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok || int(sys.Uid) != uid || st.Mode().Perm()&0o022 != 0 || st.Mode()&fs.ModeSymlink != 0 {
			return false
		}
	}
	return true
}

// copyTree copies the folder src to dst (which must not exist), keeping
// permissions, and hands each copy to own.
func copyTree(src, dst string, own func(string) error) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.Mkdir(to, info.Mode().Perm()); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if err := copyFile(path, to, info.Mode().Perm()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("pgtest: %s in the initdb template is neither a file nor a folder", path)
		}
		return own(to)
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// sweepLeftovers removes the cluster folders of test binaries that died
// before their cleanup (the kernel killed their postmasters, nothing
// removed the files): older than an hour, of our owner, with no live
// postmaster. Best effort: a folder it cannot judge stays.
func sweepLeftovers(uid int, now time.Time) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "pgtest-*"))
	for _, dir := range dirs {
		base := filepath.Base(dir)
		if strings.HasPrefix(base, "pgtest-initdb-") {
			continue
		}
		st, err := os.Lstat(dir)
		if err != nil || !st.IsDir() || now.Sub(st.ModTime()) < time.Hour {
			continue
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); !ok || int(sys.Uid) != uid {
			continue
		}
		if pid, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			n, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(pid), "\n", 2)[0]))
			if err != nil || syscall.Kill(n, 0) != syscall.ESRCH {
				continue
			}
		}
		os.RemoveAll(dir)
	}
}
