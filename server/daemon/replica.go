package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tallyhq/tally/common/atomicfile"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

// sharedFiles are the files of a data folder that replicas of one
// PostgreSQL database share (besides the trusted issuers' folder).
var sharedFiles = []string{datadir.KeyFile, datadir.TokenFile, datadir.QUICKeysFile, datadir.ProductsFileName}

// shareIdentity gives this replica the identity of the database's other
// replicas, or gives the database this one's when it is the first: the
// same key (so agents pin one fingerprint), admin token, QUIC keys,
// trusted issuers and product catalog. It reports whether a file of the
// data folder changed, in which case the caller loads the folder again.
func (d *Daemon) shareIdentity(ctx context.Context) (bool, error) {
	var local []sqlstore.ServerFile
	add := func(name string) error {
		p := filepath.Join(d.dir.Path, filepath.FromSlash(name))
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		local = append(local, sqlstore.ServerFile{Name: name, Content: data, MTime: st.ModTime().UnixMilli()})
		return nil
	}
	for _, n := range sharedFiles {
		if err := add(n); err != nil {
			return false, fmt.Errorf("share the identity: %w", err)
		}
	}
	issuers, err := os.ReadDir(d.dir.File(datadir.IssuersFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("share the identity: %w", err)
	}
	for _, e := range issuers {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".pub") {
			if err := add(datadir.IssuersFile + "/" + e.Name()); err != nil {
				return false, fmt.Errorf("share the identity: %w", err)
			}
		}
	}
	// The product catalog is the one file admins edit: the newest copy
	// wins. The identity itself never changes once the database has one.
	newer := func(name string) bool { return name == datadir.ProductsFileName }
	shared, err := sqlstore.ShareServerFiles(ctx, d.cfg.Store, local, newer)
	if err != nil {
		return false, err
	}
	changed := false
	for _, f := range shared {
		p := filepath.Join(d.dir.Path, filepath.FromSlash(f.Name))
		if old, err := os.ReadFile(p); err == nil && string(old) == string(f.Content) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return false, fmt.Errorf("write the shared %s: %w", f.Name, err)
		}
		if err := atomicfile.Write(p, f.Content, 0o600); err != nil {
			return false, fmt.Errorf("write the shared %s: %w", f.Name, err)
		}
		d.log.Info("took the replicas' shared file from the database", "file", f.Name)
		changed = true
	}
	return changed, nil
}
