package ndb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/adler32"
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

const fixture = "../testdata/ndb/sle15-bci/Packages.db"

func blobs(data []byte) (ids []uint32, bad []error, err error) {
	err = Blobs(bytes.NewReader(data), int64(len(data)), func(id uint32, blob []byte) error {
		if len(blob) < 8 {
			return errors.New("short blob")
		}
		ids = append(ids, id)
		return nil
	}, func(err error) { bad = append(bad, err) })
	return ids, bad, err
}

func TestFixture(t *testing.T) {
	ids, bad, err := blobs(readFile(t, fixture))
	if err != nil || len(bad) != 0 {
		t.Fatal(err, bad)
	}
	if len(ids) != 36 {
		t.Errorf("%d blobs, want 36", len(ids))
	}
}

func TestHostile(t *testing.T) {
	orig := readFile(t, fixture)
	slot := func(i int) []byte { return orig[headerSize+slotSize*i:] }
	firstOff := int(binary.LittleEndian.Uint32(slot(0)[8:])) * blockSize
	for name, tt := range map[string]struct {
		mutate func([]byte) []byte
		fatal  bool
		bad    int
	}{
		"blob byte flipped": {mutate: func(b []byte) []byte { b[firstOff+headSize+5] ^= 1; return b }, bad: 1},
		"slot past the end": {mutate: func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[headerSize+8:], 0xffffff00)
			return b
		}, bad: 1},
		"slot inside the slot pages": {mutate: func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[headerSize+8:], 1)
			return b
		}, bad: 1},
		"huge blob length": {mutate: func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[firstOff+12:], 0xffffffff)
			return b
		}, bad: 1},
		"truncated":      {mutate: func(b []byte) []byte { return b[:len(b)/2] }, bad: -1},
		"bad magic":      {mutate: func(b []byte) []byte { b[0] = 0; return b }, fatal: true},
		"bad slot magic": {mutate: func(b []byte) []byte { b[headerSize] = 0; return b }, fatal: true},
		"slot pages": {mutate: func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[12:], 0xffffffff)
			return b
		}, fatal: true},
		"short": {mutate: func(b []byte) []byte { return b[:1000] }, fatal: true},
	} {
		t.Run(name, func(t *testing.T) {
			ids, bad, err := blobs(tt.mutate(slices.Clone(orig)))
			if tt.fatal {
				if err == nil {
					t.Errorf("no error, %d blobs", len(ids))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.bad >= 0 && len(bad) != tt.bad || tt.bad < 0 && len(bad) == 0 {
				t.Errorf("%d damaged blobs reported (%v), want %d", len(bad), bad, tt.bad)
			}
			if len(ids)+len(bad) != 36 {
				t.Errorf("%d blobs read and %d damaged, want 36 in all", len(ids), len(bad))
			}
		})
	}
}

// build writes a minimal NDB file holding blobs, the way rpm lays it out.
func build(blobs ...[]byte) []byte {
	le := binary.LittleEndian
	out := make([]byte, pageSize)
	le.PutUint32(out[0:], magicDB)
	le.PutUint32(out[12:], 1)
	le.PutUint32(out[16:], uint32(len(blobs)+1))
	for off := headerSize; off < pageSize; off += slotSize {
		le.PutUint32(out[off:], magicSlot)
	}
	for i, b := range blobs {
		blocks := (headSize + len(b) + tailSize + blockSize - 1) / blockSize
		region := make([]byte, blocks*blockSize)
		le.PutUint32(region[0:], magicHead)
		le.PutUint32(region[4:], uint32(i+1))
		le.PutUint32(region[12:], uint32(len(b)))
		copy(region[headSize:], b)
		tail := region[len(region)-tailSize:]
		le.PutUint32(tail[0:], adler32Of(region[:len(region)-tailSize]))
		le.PutUint32(tail[4:], uint32(len(b)))
		le.PutUint32(tail[8:], magicTail)
		s := out[headerSize+slotSize*i:]
		le.PutUint32(s[4:], uint32(i+1))
		le.PutUint32(s[8:], uint32(len(out)/blockSize))
		le.PutUint32(s[12:], uint32(blocks))
		out = append(out, region...)
	}
	return out
}

func TestBuilt(t *testing.T) {
	data := build([]byte("first blob"), []byte("second, longer blob"))
	var got []string
	err := Blobs(bytes.NewReader(data), int64(len(data)), func(id uint32, b []byte) error {
		got = append(got, string(b))
		return nil
	}, func(err error) { t.Error(err) })
	if err != nil || !slices.Equal(got, []string{"first blob", "second, longer blob"}) {
		t.Errorf("got %q, %v", got, err)
	}
}

func adler32Of(b []byte) uint32 { return adler32.Checksum(b) }
