package sqlitefile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"slices"
	"testing"
	"time"
)

func open(t testing.TB, data []byte) *DB {
	t.Helper()
	db, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// rows returns rowid → blob length of the Packages table.
func rows(t testing.TB, db *DB) (map[int64]int, error) {
	t.Helper()
	tab, err := db.Table("packages")
	if err != nil {
		return nil, err
	}
	got := map[int64]int{}
	err = db.Rows(tab, func(rowid int64, v []Value) error {
		if len(v) != 2 || v[0].Type != Null {
			t.Errorf("row %d: %d values, first %v", rowid, len(v), v)
		}
		got[rowid] = len(v[len(v)-1].Bytes)
		return nil
	})
	return got, err
}

func TestTiny(t *testing.T) {
	db := open(t, readFile(t, "testdata/tiny.sqlite"))
	tab, err := db.Table("Packages")
	if err != nil {
		t.Fatal(err)
	}
	if cols := tab.Columns(); !slices.Equal(cols, []string{"hnum", "blob"}) {
		t.Errorf("columns %q", cols)
	}
	var ids []int64
	err = db.Rows(tab, func(rowid int64, v []Value) error {
		ids = append(ids, rowid)
		b := v[1].Bytes
		switch {
		case rowid >= 1 && rowid <= 12:
			if v[1].Type != Blob || len(b) != int(rowid)*37 || b[0] != byte(rowid) || b[len(b)-1] != byte(rowid) {
				t.Errorf("row %d: type %d, %d bytes", rowid, v[1].Type, len(b))
			}
		case rowid == 13:
			want := bytes.Repeat(func() []byte {
				r := make([]byte, 256)
				for i := range r {
					r[i] = byte(i)
				}
				return r
			}(), 8)
			if !bytes.Equal(b, want) {
				t.Errorf("overflowing row 13 differs (%d bytes)", len(b))
			}
		case rowid == 1000000000000:
			if v[1].Type != Text || string(b) != "text, not a blob" {
				t.Errorf("row %d: %v", rowid, v[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{-5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 1000000000000}
	if !slices.Equal(ids, want) {
		t.Errorf("rowids %v, want %v", ids, want)
	}

	other, err := db.Table("OTHER")
	if err != nil {
		t.Fatal(err)
	}
	err = db.Rows(other, func(_ int64, v []Value) error {
		if len(v) != 3 || v[0].Type != Integer || v[0].Int != 1 || v[1].Type != Float || v[1].Float != 2.5 || v[2].Type != Null {
			t.Errorf("other row %+v", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Table("missing"); !IsNoTable(err) {
		t.Errorf("missing table: %v", err)
	}
}

func TestAmazonLinux(t *testing.T) {
	got, err := rows(t, open(t, readFile(t, "../testdata/sqlite/amazonlinux2023/rpmdb.sqlite")))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 103 || got[1] != 32888 || got[5] != 3692 {
		t.Errorf("%d rows, row 1 %d bytes, row 5 %d bytes", len(got), got[1], got[5])
	}
}

func TestWAL(t *testing.T) {
	main := readFile(t, "../testdata/wal/rpmdb.sqlite")
	wal := readFile(t, "../testdata/wal/rpmdb.sqlite-wal")
	const frame = walFrameHeaderSize + 4096

	withWAL := func(wal []byte) map[int64]int {
		t.Helper()
		db := open(t, main)
		if err := db.WithWAL(bytes.NewReader(wal), int64(len(wal))); err != nil {
			t.Fatal(err)
		}
		got, err := rows(t, db)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	before := map[int64]int{3: 14584, 4: 9292, 5: 3692}
	after := map[int64]int{3: 14584, 5: 3692, 6: 32016}

	got, err := rows(t, open(t, main))
	if err != nil {
		t.Fatal(err)
	}
	if !equal(got, before) {
		t.Errorf("without wal: %v", got)
	}
	if got := withWAL(wal); !equal(got, after) {
		t.Errorf("with wal: %v, want %v", got, after)
	}
	if got := withWAL(nil); !equal(got, before) {
		t.Errorf("empty wal: %v", got)
	}
	// The commit frame cut short: the transaction never committed.
	if got := withWAL(wal[:len(wal)-100]); !equal(got, before) {
		t.Errorf("torn commit: %v", got)
	}
	// A damaged frame breaks the checksum chain from there on.
	bad := slices.Clone(wal)
	bad[walHeaderSize+frame+walFrameHeaderSize+10] ^= 0xff
	if got := withWAL(bad); !equal(got, before) {
		t.Errorf("damaged frame: %v", got)
	}
	// Frames of an older generation (other salt) are ignored.
	stale := slices.Clone(wal)
	stale[walHeaderSize+8] ^= 1
	if got := withWAL(stale); !equal(got, before) {
		t.Errorf("stale salt: %v", got)
	}
	// A bad header checksum: nothing in the log counts.
	hdr := slices.Clone(wal)
	hdr[12] ^= 1
	if got := withWAL(hdr); !equal(got, before) {
		t.Errorf("bad header checksum: %v", got)
	}
}

func equal(a, b map[int64]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// pageOf returns the offset of page n (1-based).
func pageOf(n uint32, pageSize int) int { return int(n-1) * pageSize }

// TestCycles plants pointer loops in a real database: each must end in an
// error quickly, never a hang.
func TestCycles(t *testing.T) {
	orig := readFile(t, "../testdata/sqlite/amazonlinux2023/rpmdb.sqlite")
	db := open(t, orig)
	tab, err := db.Table("Packages")
	if err != nil {
		t.Fatal(err)
	}
	ps := db.pageSize
	root := orig[pageOf(tab.RootPage, ps):]
	if root[0] != pageInteriorTable {
		t.Fatalf("root page type %#x, want an interior page", root[0])
	}

	t.Run("child points to root", func(t *testing.T) {
		data := slices.Clone(orig)
		binary.BigEndian.PutUint32(data[pageOf(tab.RootPage, ps)+8:], tab.RootPage)
		expectCorrupt(t, data)
	})
	t.Run("overflow chain loops", func(t *testing.T) {
		data := slices.Clone(orig)
		// The first leaf's first cell overflows; point its overflow page to itself.
		p := data[pageOf(tab.RootPage, ps):]
		cell := int(binary.BigEndian.Uint16(p[12:]))
		leaf := binary.BigEndian.Uint32(p[cell:])
		lp := data[pageOf(leaf, ps):]
		off := int(binary.BigEndian.Uint16(lp[8:]))
		size, n := varint(lp[off:])
		_, m := varint(lp[off+n:])
		local := db.localPayload(int(size))
		ovf := binary.BigEndian.Uint32(lp[off+n+m+local:])
		binary.BigEndian.PutUint32(data[pageOf(ovf, ps):], ovf)
		expectCorrupt(t, data)
	})
	t.Run("page out of range", func(t *testing.T) {
		data := slices.Clone(orig)
		binary.BigEndian.PutUint32(data[pageOf(tab.RootPage, ps)+8:], 0xfffffff0)
		expectCorrupt(t, data)
	})
	t.Run("truncated file", func(t *testing.T) {
		expectCorrupt(t, orig[:len(orig)/3])
	})
	t.Run("cell pointer past page", func(t *testing.T) {
		data := slices.Clone(orig)
		binary.BigEndian.PutUint16(data[pageOf(tab.RootPage, ps)+12:], 0xffff)
		expectCorrupt(t, data)
	})
	t.Run("huge payload size", func(t *testing.T) {
		data := slices.Clone(orig)
		p := data[pageOf(tab.RootPage, ps):]
		cell := int(binary.BigEndian.Uint16(p[12:]))
		leaf := binary.BigEndian.Uint32(p[cell:])
		lp := data[pageOf(leaf, ps):]
		off := int(binary.BigEndian.Uint16(lp[8:]))
		copy(lp[off:], []byte{0xff, 0xff, 0xff, 0xff, 0x7f})
		expectCorrupt(t, data)
	})
}

func expectCorrupt(t *testing.T, data []byte) {
	t.Helper()
	start := time.Now()
	db, err := Open(bytes.NewReader(data), int64(len(data)))
	if err == nil {
		_, err = rows(t, db)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("got %v, want ErrCorrupt", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestOpenRejects(t *testing.T) {
	tiny := readFile(t, "testdata/tiny.sqlite")
	for name, mutate := range map[string]func([]byte){
		"magic":     func(b []byte) { b[0] = 'X' },
		"page size": func(b []byte) { binary.BigEndian.PutUint16(b[16:], 1000) },
		"reserved":  func(b []byte) { b[20] = 255 },
		"utf16":     func(b []byte) { binary.BigEndian.PutUint32(b[56:], 2) },
	} {
		data := slices.Clone(tiny)
		mutate(data)
		if _, err := Open(bytes.NewReader(data), int64(len(data))); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Open(bytes.NewReader(tiny[:50]), 50); err == nil {
		t.Error("short file: no error")
	}
}

func TestColumns(t *testing.T) {
	for sql, want := range map[string][]string{
		"CREATE TABLE t (a INTEGER PRIMARY KEY, \"b c\" TEXT DEFAULT (1,2), [d], `e`)": {"a", "b c", "d", "e"},
		"CREATE TABLE t (a, b, PRIMARY KEY (a, b), CONSTRAINT x UNIQUE (b))":           {"a", "b"},
		"CREATE TABLE t":   nil,
		"CREATE TABLE t)(": nil,
	} {
		if got := (Table{SQL: sql}).Columns(); !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", sql, got, want)
		}
	}
}

func TestVarint(t *testing.T) {
	for _, tt := range []struct {
		in []byte
		v  uint64
		n  int
	}{
		{[]byte{0x7f}, 0x7f, 1},
		{[]byte{0x81, 0x00}, 0x80, 2},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0xffffffffffffffff, 9},
		{[]byte{0x81}, 0, 0},
		{nil, 0, 0},
	} {
		if v, n := varint(tt.in); v != tt.v || n != tt.n {
			t.Errorf("varint(%x) = %d, %d; want %d, %d", tt.in, v, n, tt.v, tt.n)
		}
	}
}
