package rpm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/tallyhq/tally/agent/software/rootfs"
	"github.com/tallyhq/tally/agent/software/rpm/bdb"
	"github.com/tallyhq/tally/agent/software/rpm/ndb"
	"github.com/tallyhq/tally/agent/software/rpm/sqlitefile"
	"github.com/tallyhq/tally/protocol"
)

// Source is the protocol.Package Source of every package found here.
const Source = "rpm"

// Format is an rpm database format.
type Format string

// The formats, in the order Collect prefers them when several exist (a
// system converted to SQLite can keep its old Packages file).
const (
	SQLite     Format = "sqlite"
	NDB        Format = "ndb"
	BerkeleyDB Format = "bdb"
)

// database is one place an rpm database may be, relative to the root.
type database struct {
	Path   string
	Format Format
}

// databases lists where rpm keeps its database, most preferred first:
// /usr/lib/sysimage/rpm is the current location (Fedora ≥ 36, openSUSE),
// /var/lib/rpm the historical one and often a link to it.
var databases = [...]database{
	{"usr/lib/sysimage/rpm/rpmdb.sqlite", SQLite},
	{"var/lib/rpm/rpmdb.sqlite", SQLite},
	{"usr/lib/sysimage/rpm/Packages.db", NDB},
	{"var/lib/rpm/Packages.db", NDB},
	{"usr/lib/sysimage/rpm/Packages", BerkeleyDB},
	{"var/lib/rpm/Packages", BerkeleyDB},
}

// Collect inventories the rpm database of the system whose root is fsys:
// the first database found (see databases). A system without one yields nothing
// and no error; one present but unreadable is an error; packages whose
// header is damaged are skipped and reported as problems.
func Collect(ctx context.Context, fsys fs.FS) (pkgs []protocol.Package, problems []string, err error) {
	for _, db := range databases {
		file, err := fsys.Open(db.Path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("open rpm database: %w", err)
		}
		defer file.Close()
		var wal fs.File
		if db.Format == SQLite {
			// Never created here: opened only if rpm left one.
			wal, err = fsys.Open(db.Path + "-wal")
			if err == nil {
				defer wal.Close()
			} else if !errors.Is(err, fs.ErrNotExist) {
				problems = append(problems, fmt.Sprintf("%s-wal: %v (uncheckpointed changes not seen)", db.Path, err))
			}
		}
		headers, skipped, err := Read(ctx, db.Format, file, wal)
		if err != nil {
			return nil, problems, fmt.Errorf("%s: %w", db.Path, err)
		}
		for _, e := range skipped {
			problems = append(problems, fmt.Sprintf("%s: %v", db.Path, e))
		}
		return Packages(headers), problems, nil
	}
	return nil, nil, nil
}

// Packages turns headers into inventory packages, leaving out gpg-pubkey.
func Packages(headers []Header) []protocol.Package {
	pkgs := make([]protocol.Package, 0, len(headers))
	for _, h := range headers {
		if h.Name == "gpg-pubkey" {
			continue
		}
		pkgs = append(pkgs, protocol.Package{
			Name:        h.Name,
			Version:     h.EVR(),
			Arch:        h.Arch,
			Publisher:   h.Vendor,
			InstallDate: h.InstallTime,
			Source:      Source,
		})
	}
	return pkgs
}

// Read reads every package header of a database in the given format. wal,
// for SQLite, is the database's write-ahead log or nil. Headers that do not
// parse are returned in skipped; err is for a database that cannot be read
// at all.
func Read(ctx context.Context, format Format, db, wal fs.File) (headers []Header, skipped []error, err error) {
	r, size, err := readerAt(db)
	if err != nil {
		return nil, nil, err
	}
	dropped := 0
	bad := func(err error) {
		if len(skipped) < maxSkipped {
			skipped = append(skipped, err)
		} else {
			dropped++
		}
	}
	n := 0
	add := func(id uint32, blob []byte) error {
		if n++; n%64 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		h, err := ParseHeader(blob)
		if err != nil {
			bad(fmt.Errorf("package %d: %w", id, err))
			return nil
		}
		headers = append(headers, h)
		return nil
	}
	switch format {
	case SQLite:
		err = readSQLite(r, size, wal, add)
	case NDB:
		err = ndb.Blobs(r, size, add, bad)
	case BerkeleyDB:
		err = bdb.Records(r, size, func(key, value []byte) error {
			// Record 0 holds rpm's next-instance counter, not a package.
			if len(key) == 4 && bytes.Equal(key, []byte{0, 0, 0, 0}) {
				return nil
			}
			var id uint32
			if len(key) == 4 {
				id = uint32(key[0]) | uint32(key[1])<<8 | uint32(key[2])<<16 | uint32(key[3])<<24
			}
			return add(id, value)
		}, bad)
	default:
		err = fmt.Errorf("unknown rpm database format %q", format)
	}
	if err != nil {
		return nil, nil, err
	}
	if dropped > 0 {
		skipped = append(skipped, fmt.Errorf("%d more packages skipped", dropped))
	}
	return headers, skipped, nil
}

// maxSkipped bounds the errors Read returns, whatever the database holds.
const maxSkipped = 100

func readSQLite(r io.ReaderAt, size int64, wal fs.File, add func(uint32, []byte) error) error {
	db, err := sqlitefile.Open(r, size)
	if err != nil {
		return err
	}
	if wal != nil {
		wr, wsize, err := readerAt(wal)
		if err != nil {
			return fmt.Errorf("wal: %w", err)
		}
		if err := db.WithWAL(wr, wsize); err != nil {
			return fmt.Errorf("wal: %w", err)
		}
	}
	t, err := db.Table("Packages")
	if err != nil {
		return err
	}
	col := 1 // rpm's schema: (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)
	for i, c := range t.Columns() {
		if c == "blob" {
			col = i
		}
	}
	return db.Rows(t, func(rowid int64, v []sqlitefile.Value) error {
		if col >= len(v) || v[col].Type != sqlitefile.Blob {
			return add(uint32(rowid), nil)
		}
		return add(uint32(rowid), v[col].Bytes)
	})
}

// readerAt returns random access to f: *os.File and fstest files have it;
// anything else is read into memory.
func readerAt(f fs.File) (io.ReaderAt, int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, rootfs.ErrNotRegular
	}
	if r, ok := f.(io.ReaderAt); ok {
		return r, fi.Size(), nil
	}
	data, err := io.ReadAll(io.LimitReader(f, rootfs.DefaultReadLimit+1))
	if err != nil {
		return nil, 0, err
	}
	if len(data) > rootfs.DefaultReadLimit {
		return nil, 0, rootfs.ErrTooLarge
	}
	return bytes.NewReader(data), int64(len(data)), nil
}
