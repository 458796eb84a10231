package bdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"slices"
	"testing"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

type record struct {
	key   []byte
	value int // length
}

func records(data []byte) ([]record, []error, error) {
	var recs []record
	var bad []error
	err := Records(bytes.NewReader(data), int64(len(data)), func(k, v []byte) error {
		recs = append(recs, record{slices.Clone(k), len(v)})
		return nil
	}, func(err error) { bad = append(bad, err) })
	return recs, bad, err
}

func TestFixtures(t *testing.T) {
	for _, tt := range []struct {
		file    string
		records int
		maxLen  int
	}{
		{"../testdata/bdb/centos-dive/Packages", 2, 1324},
		{"../testdata/bdb/rhel8-libuuid/Packages", 2, 0},
	} {
		t.Run(tt.file, func(t *testing.T) {
			recs, bad, err := records(readFile(t, tt.file))
			if err != nil || len(bad) != 0 {
				t.Fatal(err, bad)
			}
			if len(recs) != tt.records {
				t.Errorf("%d records, want %d", len(recs), tt.records)
			}
			var counter, pkg bool
			for _, r := range recs {
				if bytes.Equal(r.key, []byte{0, 0, 0, 0}) && r.value == 4 {
					counter = true
				} else if r.value > 1000 {
					pkg = true
					if tt.maxLen != 0 && r.value != tt.maxLen {
						t.Errorf("package record of %d bytes, want %d", r.value, tt.maxLen)
					}
				}
			}
			if !counter || !pkg {
				t.Errorf("records %v: want rpm's counter and one package", recs)
			}
		})
	}
}

// overflowPage finds the first overflow page of a fixture.
func overflowPage(t *testing.T, data []byte) uint32 {
	for n := 1; n*4096 < len(data); n++ {
		if data[n*4096+25] == pageOverflow {
			return uint32(n)
		}
	}
	t.Fatal("no overflow page")
	return 0
}

func TestHostile(t *testing.T) {
	orig := readFile(t, "../testdata/bdb/rhel8-libuuid/Packages")
	ovf := overflowPage(t, orig)
	for name, tt := range map[string]struct {
		mutate func([]byte) []byte
		fatal  bool // Records fails; otherwise the record is skipped
	}{
		"overflow loops to itself": {mutate: func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[int(ovf)*4096+16:], ovf)
			return b
		}},
		"overflow points past the end": {mutate: func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[int(ovf)*4096+16:], 0x7fffffff)
			return b
		}},
		"overflow claims more than a page": {mutate: func(b []byte) []byte {
			binary.LittleEndian.PutUint16(b[int(ovf)*4096+22:], 0xffff)
			return b
		}},
		"truncated": {mutate: func(b []byte) []byte { return b[:len(b)/2] }},
		"not bdb":   {mutate: func(b []byte) []byte { b[12] = 0; return b }, fatal: true},
		"short":     {mutate: func(b []byte) []byte { return b[:100] }, fatal: true},
		"page size": {mutate: func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[20:], 3000)
			return b
		}, fatal: true},
		"encrypted": {mutate: func(b []byte) []byte { b[24] = 1; return b }, fatal: true},
	} {
		t.Run(name, func(t *testing.T) {
			data := tt.mutate(slices.Clone(orig))
			recs, bad, err := records(data)
			if tt.fatal {
				if err == nil {
					t.Errorf("no error, %d records", len(recs))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if r.value > 1000 {
					t.Errorf("damaged package record read (%d bytes)", r.value)
				}
			}
			if len(bad) == 0 {
				t.Error("damage not reported")
			}
			for _, e := range bad {
				if !errors.Is(e, ErrCorrupt) {
					t.Errorf("reported %v, want ErrCorrupt", e)
				}
			}
		})
	}
}
