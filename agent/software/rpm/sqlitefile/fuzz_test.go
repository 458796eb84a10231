package sqlitefile

import (
	"bytes"
	"testing"
)

func FuzzRows(f *testing.F) {
	tiny := readFile(f, "testdata/tiny.sqlite")
	f.Add(tiny)
	f.Add(tiny[:1024])
	f.Add(readFile(f, "../testdata/wal/rpmdb.sqlite")[:8192])
	f.Add([]byte(headerMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		db, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		for _, name := range []string{"Packages", "other"} {
			tab, err := db.Table(name)
			if err != nil {
				continue
			}
			_ = tab.Columns()
			_ = db.Rows(tab, func(int64, []Value) error { return nil })
		}
	})
}

func FuzzWAL(f *testing.F) {
	wal := readFile(f, "../testdata/wal/rpmdb.sqlite-wal")
	f.Add(wal[:walHeaderSize+walFrameHeaderSize+4096])
	f.Add(wal[:walHeaderSize])
	main := readFile(f, "../testdata/wal/rpmdb.sqlite")
	f.Fuzz(func(t *testing.T, w []byte) {
		db, err := Open(bytes.NewReader(main), int64(len(main)))
		if err != nil {
			t.Fatal(err)
		}
		if db.WithWAL(bytes.NewReader(w), int64(len(w))) != nil {
			return
		}
		tab, err := db.Table("Packages")
		if err != nil {
			return
		}
		_ = db.Rows(tab, func(int64, []Value) error { return nil })
	})
}
