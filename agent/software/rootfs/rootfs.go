// Package rootfs provides read-only access to a directory tree as the
// filesystem root of another system (a chroot, a mounted container image, the
// host seen from a container): symbolic links, absolute ones included, and
// ".." resolve inside the tree the way chroot(2) would see them, so a hostile
// image cannot make the agent read files outside it.
//
// Every link is resolved here, component by component; the resolved path is
// then opened through an os.Root, which refuses anything that would still
// escape (a link swapped in between), so the confinement does not rest on the
// resolver alone. Only regular files and directories are opened: a FIFO or a
// device node in an image is refused without blocking or touching the device.
package rootfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// maxLinks bounds the symbolic links followed while resolving one name, as
// the kernel's ELOOP limit does.
const maxLinks = 40

// Cache sizes. Resolving a parent directory once and keeping an *os.Root open
// on it turns a stat of "var/lib/dpkg/info/x.list" into one system call.
const (
	maxCachedDirs  = 1024
	maxCachedRoots = 32
)

// DefaultReadLimit caps ReadFile: a package database larger than this is not
// one the agent should hold in memory.
const DefaultReadLimit = 256 << 20

// ErrTooLarge is returned when a file exceeds the size its reader allows.
var ErrTooLarge = errors.New("file too large")

// ErrNotRegular is returned when a name resolves to something other than a
// regular file or directory (a FIFO, socket or device).
var ErrNotRegular = errors.New("not a regular file or directory")

// FS is a directory tree seen as a filesystem root. It implements fs.FS,
// fs.StatFS, fs.ReadDirFS, fs.ReadFileFS and fs.ReadLinkFS. Names are
// slash-separated and unrooted, as io/fs wants ("var/lib/dpkg/status").
//
// An FS caches directory resolutions, so the tree is assumed not to change
// while it is in use: open one per collection. It is safe for concurrent use.
type FS struct {
	root *os.Root

	mu    sync.Mutex
	dirs  map[string]string   // name as asked → resolved directory
	roots map[string]*os.Root // resolved directory → handle on it
}

// Open returns the tree rooted at dir.
func Open(dir string) (*FS, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open root %s: %w", dir, err)
	}
	return &FS{root: r, dirs: map[string]string{}, roots: map[string]*os.Root{}}, nil
}

// Close releases the tree's open directory handles.
func (f *FS) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.roots {
		r.Close()
	}
	f.roots = map[string]*os.Root{}
	return f.root.Close()
}

// Resolve returns name with every symbolic link resolved inside the tree,
// as a clean slash-separated path relative to the root ("." for the root).
func (f *FS) Resolve(name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: "resolve", Path: name, Err: fs.ErrInvalid}
	}
	links := 0
	r, err := f.walk(name, true, &links)
	if err != nil {
		return "", &fs.PathError{Op: "resolve", Path: name, Err: err}
	}
	return r, nil
}

// Open opens a regular file or directory for reading.
func (f *FS) Open(name string) (fs.File, error) {
	file, err := f.OpenFile(name)
	if err != nil {
		return nil, err
	}
	return file, nil
}

// OpenFile is Open returning the *os.File, which is also an io.ReaderAt.
func (f *FS) OpenFile(name string) (*os.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	links := 0
	r, err := f.walk(name, true, &links)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	dir, base := split(r)
	var file *os.File
	err = f.inDir(dir, func(root *os.Root) (err error) {
		file, err = root.OpenFile(base, openFlags, 0)
		return err
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: unwrapPath(err)}
	}
	fi, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: unwrapPath(err)}
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		file.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: ErrNotRegular}
	}
	return file, nil
}

// Stat returns the FileInfo of what name resolves to.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	return f.stat("stat", name, true)
}

// Lstat returns the FileInfo of name itself: a final symbolic link is not
// followed.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	return f.stat("lstat", name, false)
}

func (f *FS) stat(op, name string, follow bool) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	links := 0
	r, fi, err := f.walkInfo(name, follow, &links)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	if fi != nil {
		return fi, nil
	}
	fi, err = f.lstatResolved(r)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: unwrapPath(err)}
	}
	return fi, nil
}

// ReadLink returns the target of the symbolic link name, as stored.
func (f *FS) ReadLink(name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	links := 0
	r, err := f.walk(name, false, &links)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	dir, base := split(r)
	var target string
	err = f.inDir(dir, func(root *os.Root) (err error) {
		target, err = root.Readlink(base)
		return err
	})
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: unwrapPath(err)}
	}
	return target, nil
}

// ReadDir returns the entries of directory name, sorted by name.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	file, err := f.OpenFile(name)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	entries, err := file.ReadDir(-1)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: unwrapPath(err)}
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, nil
}

// ReadFile reads a whole regular file of at most DefaultReadLimit bytes.
func (f *FS) ReadFile(name string) ([]byte, error) {
	return ReadFile(f, name, DefaultReadLimit)
}

// ReadFile reads the regular file name from fsys, refusing with ErrTooLarge a
// file longer than limit bytes. It works on any fs.FS, so parsers' discovery
// code can be tested on an fstest.MapFS.
func ReadFile(fsys fs.FS, name string, limit int64) ([]byte, error) {
	file, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: ErrNotRegular}
	}
	if fi.Size() > limit {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, fi.Size(), limit)}
	}
	// The size is a hint: the file may grow while it is read.
	buf := make([]byte, 0, fi.Size()+1)
	for {
		n, err := file.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("%w: limit %d", ErrTooLarge, limit)}
		}
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, 4096)
		}
	}
}

// walk resolves name (a valid fs path) to a path inside the tree holding no
// symbolic link, except a final one when followLast is false.
func (f *FS) walk(name string, followLast bool, links *int) (string, error) {
	r, _, err := f.walkInfo(name, followLast, links)
	return r, err
}

// walkInfo is walk also returning, when it had to lstat the final component
// and found no link there, that component's FileInfo.
func (f *FS) walkInfo(name string, followLast bool, links *int) (string, fs.FileInfo, error) {
	if name == "." {
		return ".", nil, nil
	}
	dir, base := split(name)
	rdir, err := f.resolveDir(dir, links)
	if err != nil {
		return "", nil, err
	}
	next := join(rdir, base)
	if !followLast {
		return next, nil, nil
	}
	fi, err := f.lstatResolved(next)
	if err != nil {
		return "", nil, unwrapPath(err)
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		return next, fi, nil
	}
	r, err := f.follow(rdir, base, "", links)
	return r, nil, err
}

// resolveDir resolves a directory name, using and filling the cache.
func (f *FS) resolveDir(dir string, links *int) (string, error) {
	if dir == "." {
		return ".", nil
	}
	f.mu.Lock()
	r, ok := f.dirs[dir]
	f.mu.Unlock()
	if ok {
		return r, nil
	}
	r, err := f.resolveSlow(".", dir, links)
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	if len(f.dirs) < maxCachedDirs {
		f.dirs[dir] = r
	}
	f.mu.Unlock()
	return r, nil
}

// resolveSlow resolves rest relative to the already resolved directory
// resolved, following every link.
func (f *FS) resolveSlow(resolved, rest string, links *int) (string, error) {
	for rest != "" {
		var comp string
		comp, rest, _ = strings.Cut(rest, "/")
		switch comp {
		case "", ".":
			continue
		case "..":
			resolved = path.Dir(resolved)
			continue
		}
		next := join(resolved, comp)
		fi, err := f.lstatResolved(next)
		if err != nil {
			return "", unwrapPath(err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		r, err := f.follow(resolved, comp, rest, links)
		if err != nil {
			return "", err
		}
		return r, nil
	}
	return resolved, nil
}

// follow resolves the link comp inside the resolved directory dir, then
// whatever rest of the path comes after it.
func (f *FS) follow(dir, comp, rest string, links *int) (string, error) {
	*links++
	if *links > maxLinks {
		return "", fmt.Errorf("more than %d symbolic links: %w", maxLinks, syscall.ELOOP)
	}
	var target string
	err := f.inDir(dir, func(root *os.Root) (err error) {
		target, err = root.Readlink(comp)
		return err
	})
	if err != nil {
		return "", unwrapPath(err)
	}
	target = filepath.ToSlash(target)
	if v := filepath.VolumeName(target); v != "" {
		target = target[len(v):]
	}
	if strings.HasPrefix(target, "/") {
		// An absolute link points into the tree, not at the host.
		dir = "."
	}
	if rest != "" {
		target += "/" + rest
	}
	return f.resolveSlow(dir, target, links)
}

// lstatResolved lstats a path that holds no symbolic link but maybe its last.
func (f *FS) lstatResolved(r string) (fs.FileInfo, error) {
	dir, base := split(r)
	var fi fs.FileInfo
	err := f.inDir(dir, func(root *os.Root) (err error) {
		fi, err = root.Lstat(base)
		return err
	})
	return fi, err
}

// inDir runs fn with an os.Root open on the resolved directory dir.
func (f *FS) inDir(dir string, fn func(*os.Root) error) error {
	if dir == "." {
		return fn(f.root)
	}
	f.mu.Lock()
	r, ok := f.roots[dir]
	f.mu.Unlock()
	if ok {
		return fn(r)
	}
	r, err := f.root.OpenRoot(filepath.FromSlash(dir))
	if err != nil {
		return err
	}
	f.mu.Lock()
	if _, dup := f.roots[dir]; !dup && len(f.roots) < maxCachedRoots {
		f.roots[dir] = r
		f.mu.Unlock()
		return fn(r)
	}
	f.mu.Unlock()
	defer r.Close()
	return fn(r)
}

// split splits a clean relative name into its directory ("." for none) and
// last component.
func split(name string) (dir, base string) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return ".", name
	}
	return name[:i], name[i+1:]
}

func join(dir, base string) string {
	if dir == "." {
		return base
	}
	return dir + "/" + base
}

// unwrapPath drops an *fs.PathError's own path (an internal, resolved one)
// so the caller can report the name it was asked for.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
