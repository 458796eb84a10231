package installer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tallyhq/tally/common/atomicfile"
)

// Manifest records what an install wrote, so that the uninstall removes
// exactly that: it is kept in the component's data folder.
type Manifest struct {
	Component   string    `json:"component"` // tally-agent or tally-server
	Version     string    `json:"version"`   // the build that last installed
	InstalledAt time.Time `json:"installed_at"`
	UpgradedAt  time.Time `json:"upgraded_at,omitzero"`
	// Files are the files and symlinks the install wrote, as paths of the
	// installed system.
	Files []Entry `json:"files"`
	// Dirs are the folders the install created, parents first; the
	// uninstall removes those left empty.
	Dirs []string `json:"dirs"`
	// User is the system user the install created, if any.
	User string `json:"user,omitempty"`
}

// Entry is one file an install wrote.
type Entry struct {
	Path string `json:"path"`
	// Preexisting is set when the file was there before the first install
	// (a configuration file an administrator dropped): the install changed
	// it, the uninstall leaves it.
	Preexisting bool `json:"preexisting,omitempty"`
}

// maxManifest bounds the manifest read: it lists a handful of paths.
const maxManifest = 1 << 20

// ErrNoManifest means no install manifest was found: the component was not
// installed with an install command (or was uninstalled already).
var ErrNoManifest = errors.New("no install manifest")

// LoadManifest reads the manifest at path (of this machine).
func LoadManifest(path string) (Manifest, error) {
	var m Manifest
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, fmt.Errorf("%w at %s", ErrNoManifest, path)
	}
	if err != nil {
		return m, fmt.Errorf("install manifest: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifest+1))
	if err != nil {
		return m, fmt.Errorf("install manifest %s: %w", path, err)
	}
	if len(b) > maxManifest {
		return m, fmt.Errorf("install manifest %s: larger than %d bytes: it is not one install wrote", path, maxManifest)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&m); err != nil {
		return m, fmt.Errorf("install manifest %s is damaged: %w", path, err)
	}
	return m, nil
}

// Save writes the manifest to path (of this machine).
func (m *Manifest) Save(path string) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o600)
}

// Check refuses a manifest naming a path outside allowed, the paths the
// component's install can write: a manifest edited to name /etc/passwd
// removes nothing.
func (m *Manifest) Check(component string, allowed []string) error {
	if m.Component != component {
		return fmt.Errorf("the install manifest is %q's, not %s's", m.Component, component)
	}
	for _, e := range m.Files {
		if !slices.Contains(allowed, e.Path) {
			return fmt.Errorf("the install manifest names %q, which %s install never writes: refusing to remove anything", e.Path, component)
		}
	}
	for _, d := range m.Dirs {
		ok := false
		for _, a := range allowed {
			if d != "/" && (a == d || isUnder(a, d)) {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("the install manifest names the folder %q, which %s install never creates: refusing to remove anything", d, component)
		}
	}
	return nil
}

func isUnder(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, "../")
}

// Writer writes files under a target and records them in a manifest.
type Writer struct {
	T Target
	M *Manifest
}

func (w *Writer) has(p string) bool {
	return slices.ContainsFunc(w.M.Files, func(e Entry) bool { return e.Path == p })
}

// MkdirAll creates the folder p with perm and its missing parents with
// 0755, recording each it created.
func (w *Writer) MkdirAll(p string, perm fs.FileMode) error {
	var missing []string
	for d := p; d != "/"; d = filepath.Dir(d) {
		ok, err := exists(w.T.Path(d))
		if err != nil {
			return err
		}
		if ok {
			break
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		mode := fs.FileMode(0o755) // a parent: /var, /var/lib under a new root
		if d == p {
			mode = perm
		}
		if err := os.Mkdir(w.T.Path(d), mode); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: %w", w.T.Path(d), err)
		}
		// Mkdir's mode is masked by the umask; a data folder must be
		// exactly what was asked.
		if err := os.Chmod(w.T.Path(d), mode); err != nil {
			return err
		}
		if !slices.Contains(w.M.Dirs, d) {
			w.M.Dirs = append(w.M.Dirs, d)
		}
	}
	return nil
}

// before records p, noting whether it was there before the first install.
func (w *Writer) before(p string) error {
	if w.has(p) {
		return nil
	}
	ok, err := exists(w.T.Path(p))
	if err != nil {
		return err
	}
	w.M.Files = append(w.M.Files, Entry{Path: p, Preexisting: ok})
	return nil
}

// WriteFile replaces p's content, atomically.
func (w *Writer) WriteFile(p string, data []byte, perm fs.FileMode) error {
	if err := w.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := w.before(p); err != nil {
		return err
	}
	return atomicfile.Write(w.T.Path(p), data, perm)
}

// CopyFile copies the file src (a path of this machine) to p: written
// beside it and renamed over it, so that a running copy of the old binary
// keeps its file.
func (w *Writer) CopyFile(p, src string, perm fs.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return w.WriteFile(p, data, perm)
}

// Symlink makes p a symbolic link to target (a path of the installed
// system, as systemd resolves it there).
func (w *Writer) Symlink(p, target string) error {
	if err := w.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := w.before(p); err != nil {
		return err
	}
	if cur, err := os.Readlink(w.T.Path(p)); err == nil && cur == target {
		return nil
	}
	tmp := w.T.Path(p) + ".tmp-install"
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, w.T.Path(p))
}

// Removal is what Remove did.
type Removal struct {
	Removed []string // files and folders removed (paths of this machine)
	Kept    []string // files kept: they were there before the install
}

// Remove removes the files of m not wanted by keep (paths of the installed
// system; nil keeps none), then the folders m created that are left empty.
// Call Check first.
func Remove(t Target, m Manifest, keep func(p string) bool) (Removal, error) {
	var r Removal
	for _, e := range m.Files {
		if e.Preexisting {
			r.Kept = append(r.Kept, t.Path(e.Path))
			continue
		}
		if keep != nil && keep(e.Path) {
			continue
		}
		err := os.Remove(t.Path(e.Path))
		switch {
		case err == nil:
			r.Removed = append(r.Removed, t.Path(e.Path))
		case !errors.Is(err, fs.ErrNotExist):
			return r, fmt.Errorf("remove %s: %w", t.Path(e.Path), err)
		}
	}
	dirs := append([]string(nil), m.Dirs...)
	// Deepest first, so that a parent is empty once its children went.
	slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
	for _, d := range dirs {
		if keep != nil && keep(d) {
			continue
		}
		err := os.Remove(t.Path(d))
		switch {
		case err == nil:
			r.Removed = append(r.Removed, t.Path(d))
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTEMPTY), errors.Is(err, syscall.EEXIST):
			// Gone already, or holding what someone else put there.
		default:
			return r, fmt.Errorf("remove %s: %w", t.Path(d), err)
		}
	}
	return r, nil
}
