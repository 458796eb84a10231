package plist

import "testing"

func FuzzDecode(f *testing.F) {
	for _, name := range []string{
		"testdata/all-types.binary.plist",
		"testdata/all-types.xml.plist",
		"../testdata/info-plist/gMacInformation-Info.binary.plist",
		"../testdata/info-plist/GoogleChrome-130-Info.plist",
	} {
		f.Add(readFile(f, name))
	}
	f.Add(bplist([]byte{0xa1, 0}))
	f.Add(bplist([]byte{0xd1, 1, 2}, []byte{0x51, 'k'}, []byte{0x6f, 0x10, 3, 0, 'a', 0xd8, 0x00, 0, 'b'}))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Decode(data)
	})
}
