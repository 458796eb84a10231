package rpm

import (
	"bytes"
	"os"
	"testing"

	"github.com/tallyhq/tally/agent/software/rpm/bdb"
)

func FuzzParseHeader(f *testing.F) {
	// A real installed-package header, from the BerkeleyDB fixture.
	data, err := os.ReadFile("testdata/bdb/centos-dive/Packages")
	if err != nil {
		f.Fatal(err)
	}
	err = bdb.Records(bytes.NewReader(data), int64(len(data)), func(_, v []byte) error {
		f.Add(bytes.Clone(v))
		return nil
	}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(blob([]entry{{tagName, typeString, 0, 1}, {tagEpoch, typeInt32, 2, 1}}, []byte("a\x00\x00\x00\x00\x01")))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err == nil && h.Name == "" {
			t.Fatal("header without a name accepted")
		}
		_ = h.EVR()
	})
}
