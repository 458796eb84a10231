// Package sqlitefile reads the rows of a table straight from an SQLite
// database file, read-only and without SQLite: the agent needs the rpm
// database's one table, and linking an SQL engine for that would cost
// megabytes of binary (or cgo).
//
// It reads the file format (https://www.sqlite.org/fileformat.html): the
// header, table b-trees (interior and leaf pages), record varints and
// overflow chains; sqlite_master is consulted to find a table's root page.
// Indexes, WITHOUT ROWID tables, UTF-16 databases and the free list are not
// read. The write-ahead log can be applied (WithWAL): its committed frames
// replace the pages they carry, which is what SQLite's own recovery does when
// no -shm file is trusted. Nothing is ever written, so no -wal or -shm file
// is created.
//
// The reader is made for files it must not trust: every offset is checked,
// every page is visited at most once (a cycle in page pointers is an error,
// not a hang) and no allocation exceeds what the file itself could hold.
package sqlitefile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// ErrCorrupt is wrapped by every error about a malformed file.
var ErrCorrupt = errors.New("malformed sqlite database")

// ErrUnsupported is wrapped by errors about valid features this reader
// does not implement.
var ErrUnsupported = errors.New("unsupported sqlite feature")

const (
	headerMagic = "SQLite format 3\x00"

	pageInteriorIndex = 0x02
	pageInteriorTable = 0x05
	pageLeafIndex     = 0x0a
	pageLeafTable     = 0x0d

	// maxPayload bounds one row: SQLite's own default SQLITE_MAX_LENGTH.
	maxPayload = 1_000_000_000
	// maxColumns is SQLite's SQLITE_MAX_COLUMN upper bound.
	maxColumns = 32767
)

// DB is an SQLite database file opened for reading rows.
type DB struct {
	r        io.ReaderAt
	pageSize int
	usable   int    // page size less the reserved bytes at each page's end
	nPages   uint32 // pages that exist in the database
	wal      map[uint32]int64
	walR     io.ReaderAt
}

// Open reads the header of the database file r of size bytes.
func Open(r io.ReaderAt, size int64) (*DB, error) {
	var h [100]byte
	if size < int64(len(h)) {
		return nil, fmt.Errorf("%w: %d bytes, shorter than a header", ErrCorrupt, size)
	}
	if _, err := r.ReadAt(h[:], 0); err != nil {
		return nil, fmt.Errorf("read sqlite header: %w", err)
	}
	if string(h[:16]) != headerMagic {
		return nil, fmt.Errorf("%w: not an sqlite 3 file", ErrCorrupt)
	}
	pageSize := int(binary.BigEndian.Uint16(h[16:]))
	if pageSize == 1 {
		pageSize = 65536
	}
	if pageSize < 512 || pageSize > 65536 || pageSize&(pageSize-1) != 0 {
		return nil, fmt.Errorf("%w: page size %d", ErrCorrupt, pageSize)
	}
	usable := pageSize - int(h[20])
	if usable < 480 {
		return nil, fmt.Errorf("%w: usable page size %d", ErrCorrupt, usable)
	}
	if enc := binary.BigEndian.Uint32(h[56:]); enc > 1 {
		return nil, fmt.Errorf("%w: text encoding %d (only UTF-8 is read)", ErrUnsupported, enc)
	}
	// The in-header size is valid only when written by SQLite ≥ 3.7.0, which
	// stores the change counter twice; otherwise the file's size says it.
	nPages := uint32(size / int64(pageSize))
	if n := binary.BigEndian.Uint32(h[28:]); n != 0 && binary.BigEndian.Uint32(h[24:]) == binary.BigEndian.Uint32(h[92:]) && n < nPages {
		nPages = n
	}
	return &DB{r: r, pageSize: pageSize, usable: usable, nPages: nPages}, nil
}

// Value is one column of a row. Bytes (for text and blobs) is valid only
// during the callback it is passed to.
type Value struct {
	Type  Type
	Int   int64
	Float float64
	Bytes []byte
}

// Type is a value's storage class.
type Type uint8

// Storage classes.
const (
	Null Type = iota
	Integer
	Float
	Text
	Blob
)

// Table describes a table found in sqlite_master.
type Table struct {
	Name     string
	RootPage uint32
	SQL      string
}

// Columns returns the table's column names, parsed from its CREATE TABLE
// statement, or nil if that does not parse.
func (t Table) Columns() []string {
	open, end := strings.IndexByte(t.SQL, '('), strings.LastIndexByte(t.SQL, ')')
	if open < 0 || end <= open {
		return nil
	}
	var cols []string
	depth, start := 0, open+1
	body := t.SQL[:end]
	for i := open + 1; i <= len(body); i++ {
		if i < len(body) {
			switch body[i] {
			case '(':
				depth++
				continue
			case ')':
				depth--
				continue
			case ',':
				if depth != 0 {
					continue
				}
			default:
				continue
			}
		}
		def := strings.TrimSpace(body[start:i])
		start = i + 1
		name := columnName(def)
		switch strings.ToUpper(name) {
		case "CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN":
			continue // table constraints, not columns
		}
		cols = append(cols, name)
	}
	return cols
}

// columnName returns the name a column definition starts with, unquoted.
func columnName(def string) string {
	if def == "" {
		return ""
	}
	closing := map[byte]byte{'"': '"', '\'': '\'', '`': '`', '[': ']'}[def[0]]
	if closing != 0 {
		if end := strings.IndexByte(def[1:], closing); end >= 0 {
			return def[1 : 1+end]
		}
	}
	if i := strings.IndexAny(def, " \t\r\n"); i >= 0 {
		return def[:i]
	}
	return def
}

// Table looks a table up by name (case-insensitively, as SQLite does).
func (db *DB) Table(name string) (Table, error) {
	var found *Table
	err := db.scan(1, func(_ int64, rec []Value) error {
		if found != nil || len(rec) < 5 || string(rec[0].Bytes) != "table" || !strings.EqualFold(string(rec[1].Bytes), name) {
			return nil
		}
		if rec[3].Type != Integer || rec[3].Int <= 0 || rec[3].Int > int64(db.nPages) {
			return fmt.Errorf("%w: table %s has root page %d", ErrCorrupt, name, rec[3].Int)
		}
		found = &Table{Name: string(rec[1].Bytes), RootPage: uint32(rec[3].Int), SQL: string(rec[4].Bytes)}
		return nil
	})
	if err != nil {
		return Table{}, fmt.Errorf("read sqlite_master: %w", err)
	}
	if found == nil {
		return Table{}, fmt.Errorf("table %s: %w", name, errNoTable)
	}
	return *found, nil
}

var errNoTable = errors.New("no such table")

// IsNoTable reports whether err says a table does not exist.
func IsNoTable(err error) bool { return errors.Is(err, errNoTable) }

// Rows calls fn for every row of the table t in rowid order. The values
// are valid only during the call; an error from fn stops the scan and is
// returned.
func (db *DB) Rows(t Table, fn func(rowid int64, values []Value) error) error {
	return db.scan(t.RootPage, fn)
}

// scan walks the table b-tree rooted at root depth-first, left to right.
func (db *DB) scan(root uint32, fn func(int64, []Value) error) error {
	visited := make([]uint64, (db.nPages+64)/64)
	visit := func(n uint32) error {
		if n == 0 || n > db.nPages {
			return fmt.Errorf("%w: page %d out of range 1-%d", ErrCorrupt, n, db.nPages)
		}
		if visited[n/64]&(1<<(n%64)) != 0 {
			return fmt.Errorf("%w: page %d referenced twice", ErrCorrupt, n)
		}
		visited[n/64] |= 1 << (n % 64)
		return nil
	}
	page := make([]byte, db.pageSize)
	var (
		payload []byte
		values  []Value
	)
	stack := []uint32{root}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if err := visit(n); err != nil {
			return err
		}
		if err := db.readPage(n, page); err != nil {
			return err
		}
		hdr := 0
		if n == 1 {
			hdr = 100
		}
		p := page[:db.usable]
		if hdr+8 > len(p) {
			return fmt.Errorf("%w: page %d too small", ErrCorrupt, n)
		}
		kind := p[hdr]
		nCells := int(binary.BigEndian.Uint16(p[hdr+3:]))
		headerLen := 8
		switch kind {
		case pageInteriorTable:
			headerLen = 12
		case pageLeafTable:
		case pageInteriorIndex, pageLeafIndex:
			return fmt.Errorf("%w: page %d is an index page (WITHOUT ROWID table?)", ErrUnsupported, n)
		default:
			return fmt.Errorf("%w: page %d has type %#x", ErrCorrupt, n, kind)
		}
		ptrs := hdr + headerLen
		if ptrs+2*nCells > len(p) {
			return fmt.Errorf("%w: page %d: %d cells do not fit", ErrCorrupt, n, nCells)
		}
		if kind == pageInteriorTable {
			// Push the right-most child first so the left-most is visited first.
			stack = append(stack, binary.BigEndian.Uint32(p[hdr+8:]))
			for i := nCells - 1; i >= 0; i-- {
				off := int(binary.BigEndian.Uint16(p[ptrs+2*i:]))
				if off < ptrs+2*nCells || off+4 > len(p) {
					return fmt.Errorf("%w: page %d: cell %d at %d out of range", ErrCorrupt, n, i, off)
				}
				stack = append(stack, binary.BigEndian.Uint32(p[off:]))
			}
			if len(stack) > int(db.nPages) {
				return fmt.Errorf("%w: more child pointers than pages", ErrCorrupt)
			}
			continue
		}
		for i := 0; i < nCells; i++ {
			off := int(binary.BigEndian.Uint16(p[ptrs+2*i:]))
			if off < ptrs+2*nCells || off >= len(p) {
				return fmt.Errorf("%w: page %d: cell %d at %d out of range", ErrCorrupt, n, i, off)
			}
			rowid, pl, err := db.cellPayload(p, off, payload[:0], visit)
			if err != nil {
				return fmt.Errorf("page %d cell %d: %w", n, i, err)
			}
			payload = pl
			values, err = decodeRecord(payload, values[:0])
			if err != nil {
				return fmt.Errorf("page %d cell %d (rowid %d): %w", n, i, rowid, err)
			}
			if err := fn(rowid, values); err != nil {
				return err
			}
		}
	}
	return nil
}

// cellPayload returns the rowid and whole payload of the table leaf cell at
// off in page p, following its overflow chain, appended to buf.
func (db *DB) cellPayload(p []byte, off int, buf []byte, visit func(uint32) error) (int64, []byte, error) {
	size, n := varint(p[off:])
	if n == 0 {
		return 0, nil, fmt.Errorf("%w: truncated payload size", ErrCorrupt)
	}
	off += n
	rowid, n := varint(p[off:])
	if n == 0 {
		return 0, nil, fmt.Errorf("%w: truncated rowid", ErrCorrupt)
	}
	off += n
	// The payload cannot be larger than the pages that could hold it.
	if size > maxPayload || size > uint64(db.nPages)*uint64(db.usable) {
		return 0, nil, fmt.Errorf("%w: payload of %d bytes", ErrCorrupt, size)
	}
	total := int(size)
	local := db.localPayload(total)
	if off+local > len(p) {
		return 0, nil, fmt.Errorf("%w: payload of %d bytes overruns its page", ErrCorrupt, local)
	}
	buf = append(buf, p[off:off+local]...)
	if local == total {
		return int64(rowid), buf, nil
	}
	if off+local+4 > len(p) {
		return 0, nil, fmt.Errorf("%w: truncated overflow pointer", ErrCorrupt)
	}
	next := binary.BigEndian.Uint32(p[off+local:])
	page := make([]byte, db.pageSize)
	for len(buf) < total {
		if err := visit(next); err != nil {
			return 0, nil, fmt.Errorf("overflow chain: %w", err)
		}
		if err := db.readPage(next, page); err != nil {
			return 0, nil, err
		}
		next = binary.BigEndian.Uint32(page)
		chunk := page[4:db.usable]
		if rest := total - len(buf); len(chunk) > rest {
			chunk = chunk[:rest]
		}
		buf = append(buf, chunk...)
	}
	return int64(rowid), buf, nil
}

// localPayload is how many bytes of a table leaf cell's payload of size p
// are stored on the page itself (fileformat.html, "Cell Payload Overflow").
func (db *DB) localPayload(p int) int {
	u := db.usable
	x := u - 35
	if p <= x {
		return p
	}
	m := (u-12)*32/255 - 23
	k := m + (p-m)%(u-4)
	if k <= x {
		return k
	}
	return m
}

// readPage reads page n (1-based) into buf, from the WAL when it holds a
// committed copy.
func (db *DB) readPage(n uint32, buf []byte) error {
	r, off := db.r, int64(n-1)*int64(db.pageSize)
	if o, ok := db.wal[n]; ok {
		r, off = db.walR, o
	}
	if _, err := r.ReadAt(buf, off); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: page %d beyond the end of the file", ErrCorrupt, n)
		}
		return fmt.Errorf("read page %d: %w", n, err)
	}
	return nil
}

// decodeRecord splits a record (fileformat.html, "Record Format") into values
// appended to vals; text and blob values alias rec.
func decodeRecord(rec []byte, vals []Value) ([]Value, error) {
	hsize, n := varint(rec)
	if n == 0 || hsize < uint64(n) || hsize > uint64(len(rec)) {
		return nil, fmt.Errorf("%w: record header size %d", ErrCorrupt, hsize)
	}
	hdr, body := rec[n:hsize], rec[hsize:]
	for len(hdr) > 0 {
		st, n := varint(hdr)
		if n == 0 {
			return nil, fmt.Errorf("%w: truncated record header", ErrCorrupt)
		}
		hdr = hdr[n:]
		if len(vals) >= maxColumns {
			return nil, fmt.Errorf("%w: more than %d columns", ErrCorrupt, maxColumns)
		}
		var v Value
		size := 0
		switch {
		case st == 0:
		case st >= 1 && st <= 6:
			v.Type = Integer
			size = [...]int{0, 1, 2, 3, 4, 6, 8}[st]
		case st == 7:
			v.Type, size = Float, 8
		case st == 8 || st == 9:
			v.Type, v.Int = Integer, int64(st-8)
		case st >= 12:
			v.Type = Blob
			if st%2 == 1 {
				v.Type = Text
			}
			if (st-12)/2 > uint64(len(body)) {
				return nil, fmt.Errorf("%w: value of %d bytes overruns its record", ErrCorrupt, (st-12)/2)
			}
			size = int((st - 12) / 2)
		default:
			return nil, fmt.Errorf("%w: reserved serial type %d", ErrCorrupt, st)
		}
		if size > len(body) {
			return nil, fmt.Errorf("%w: value overruns its record", ErrCorrupt)
		}
		b := body[:size]
		body = body[size:]
		switch v.Type {
		case Integer:
			if size > 0 {
				var u uint64
				for _, c := range b {
					u = u<<8 | uint64(c)
				}
				shift := 64 - 8*uint(size)
				v.Int = int64(u<<shift) >> shift // sign-extend
			}
		case Float:
			v.Float = math.Float64frombits(binary.BigEndian.Uint64(b))
		case Text, Blob:
			v.Bytes = b
		}
		vals = append(vals, v)
	}
	return vals, nil
}

// varint decodes an SQLite varint (big-endian, 1 to 9 bytes, the ninth
// contributing all 8 bits); n is 0 if b is too short.
func varint(b []byte) (v uint64, n int) {
	for i := 0; i < 8; i++ {
		if i >= len(b) {
			return 0, 0
		}
		v = v<<7 | uint64(b[i]&0x7f)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	if len(b) < 9 {
		return 0, 0
	}
	return v<<8 | uint64(b[8]), 9
}
