package rpm

import (
	"encoding/binary"
	"errors"
	"testing"
)

// entry is one index entry of a handmade header.
type entry struct {
	tag, typ, off, count uint32
}

func blob(entries []entry, data []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(entries)))
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	for _, e := range entries {
		b = binary.BigEndian.AppendUint32(b, e.tag)
		b = binary.BigEndian.AppendUint32(b, e.typ)
		b = binary.BigEndian.AppendUint32(b, e.off)
		b = binary.BigEndian.AppendUint32(b, e.count)
	}
	return append(b, data...)
}

func TestParseHeader(t *testing.T) {
	data := []byte("bash\x005.2\x001.fc40\x00x86_64\x00Fedora Project\x00\x00\x00") // 40 bytes
	data = binary.BigEndian.AppendUint32(data, 1)                                   // epoch at 40
	data = binary.BigEndian.AppendUint32(data, 0x66000000)                          // install time at 44
	good := []entry{
		{tagName, typeString, 0, 1},
		{tagVersion, typeString, 5, 1},
		{tagRelease, typeString, 9, 1},
		{tagArch, typeString, 16, 1},
		{tagVendor, typeI18NString, 23, 1},
		{tagEpoch, typeInt32, 40, 1},
		{tagInstallTime, typeInt32, 44, 1},
		{1004, typeString, 1000, 1}, // an unused tag out of range: ignored
	}
	h, err := ParseHeader(blob(good, data))
	if err != nil {
		t.Fatal(err)
	}
	want := Header{Name: "bash", Version: "5.2", Release: "1.fc40", Arch: "x86_64", Vendor: "Fedora Project", Epoch: 1, HasEpoch: true, InstallTime: 0x66000000}
	if h != want {
		t.Errorf("got %+v, want %+v", h, want)
	}

	for name, tt := range map[string][]byte{
		"empty":               nil,
		"no entries":          blob(nil, data),
		"data overruns blob":  blob(good, data)[:50],
		"unterminated":        blob([]entry{{tagName, typeString, 0, 1}}, []byte("bash")),
		"name as int":         blob([]entry{{tagName, typeInt32, 0, 1}}, data),
		"epoch as string":     blob([]entry{{tagName, typeString, 0, 1}, {tagEpoch, typeString, 0, 1}}, data),
		"epoch at the end":    blob([]entry{{tagName, typeString, 0, 1}, {tagEpoch, typeInt32, uint32(len(data) - 2), 1}}, data),
		"offset out of range": blob([]entry{{tagName, typeString, 0xffffffff, 1}}, data),
		"no name":             blob([]entry{{tagVersion, typeString, 5, 1}}, data),
		"huge counts":         {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	} {
		if _, err := ParseHeader(tt); !errors.Is(err, ErrBadHeader) {
			t.Errorf("%s: %v, want ErrBadHeader", name, err)
		}
	}
}
