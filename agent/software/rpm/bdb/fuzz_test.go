package bdb

import (
	"bytes"
	"testing"
)

func FuzzRecords(f *testing.F) {
	for _, name := range []string{"../testdata/bdb/centos-dive/Packages", "../testdata/bdb/rhel8-libuuid/Packages"} {
		data := readFile(f, name)
		f.Add(data[:4096*4])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = Records(bytes.NewReader(data), int64(len(data)), func(k, v []byte) error { return nil }, nil)
	})
}
