package ndb

import (
	"bytes"
	"testing"
)

func FuzzBlobs(f *testing.F) {
	data := readFile(f, fixture)
	f.Add(data[:2*pageSize])
	f.Add(data[:pageSize])
	f.Add(build([]byte("a blob"), make([]byte, 100)))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = Blobs(bytes.NewReader(data), int64(len(data)), func(uint32, []byte) error { return nil }, nil)
	})
}
