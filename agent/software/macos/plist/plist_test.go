package plist

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"reflect"
	"testing"
	"time"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestAllTypes(t *testing.T) {
	want := map[string]any{
		"s": "héllo ✓", "ascii": "plain", "i": int64(-42), "big": int64(1 << 40), "f": 1.5, "t": true, "n": false,
		"d": time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), "b": []byte{0, 1, 2},
		"a":       []any{int64(1), "two", []any{3.0}},
		"nested":  map[string]any{"k": map[string]any{"deeper": "yes"}},
		"shared1": "same", "shared2": "same",
	}
	for _, name := range []string{"testdata/all-types.binary.plist", "testdata/all-types.xml.plist"} {
		v, err := Decode(readFile(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m := v.(map[string]any)
		// Dates compare by instant.
		if d, ok := m["d"].(time.Time); !ok || !d.Equal(want["d"].(time.Time)) {
			t.Errorf("%s: date %v", name, m["d"])
		}
		m["d"] = want["d"]
		if !reflect.DeepEqual(m, want) {
			t.Errorf("%s:\n got %#v\nwant %#v", name, m, want)
		}
	}
}

func TestAppFixtures(t *testing.T) {
	for _, tt := range []struct{ file, key, want string }{
		{"../testdata/info-plist/GoogleChrome-130-Info.plist", "CFBundleShortVersionString", "130.0.6723.69"},
		{"../testdata/info-plist/gMacInformation-Info.binary.plist", "CFBundleIdentifier", "com.google.corp.gMacInformation"},
	} {
		v, err := Decode(readFile(t, tt.file))
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		if got := v.(map[string]any)[tt.key]; got != tt.want {
			t.Errorf("%s: %s = %v, want %s", tt.file, tt.key, got, tt.want)
		}
	}
}

// bplist assembles a binary plist from encoded objects (1-byte references
// and offsets), the first being the top object.
func bplist(objects ...[]byte) []byte {
	out := []byte("bplist00")
	var offsets []byte
	for _, o := range objects {
		offsets = append(offsets, byte(len(out)))
		out = append(out, o...)
	}
	table := len(out)
	out = append(out, offsets...)
	trailer := make([]byte, 32)
	trailer[6], trailer[7] = 1, 1
	binary.BigEndian.PutUint64(trailer[8:], uint64(len(objects)))
	binary.BigEndian.PutUint64(trailer[24:], uint64(table))
	return append(out, trailer...)
}

func TestBinaryHostile(t *testing.T) {
	tests := map[string][]byte{
		"array contains itself":  bplist([]byte{0xa1, 0}),
		"dict value loops":       bplist([]byte{0xd1, 1, 0}, []byte{0x51, 'k'}),
		"indirect loop":          bplist([]byte{0xa1, 1}, []byte{0xa1, 0}),
		"reference out of range": bplist([]byte{0xa1, 9}),
		"count overruns":         bplist([]byte{0xaf, 0x10, 200, 0}),
		"string overruns":        bplist([]byte{0x5f, 0x13, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}),
		"non-string key":         bplist([]byte{0xd1, 1, 1}, []byte{0x10, 1}),
		"unknown marker":         bplist([]byte{0xf0}),
		"truncated":              bplist([]byte{0x5a, 'a'})[:20],
		"bad trailer":            append([]byte("bplist00"), make([]byte, 40)...),
	}
	for name, data := range tests {
		if _, err := Decode(data); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}

	// 30 levels of arrays each holding its child twice: 2^30 paths, but 31
	// objects decoded once each.
	var objs [][]byte
	for i := 0; i < 30; i++ {
		objs = append(objs, []byte{0xa2, byte(i + 1), byte(i + 1)})
	}
	objs = append(objs, []byte{0x51, 'x'})
	start := time.Now()
	if _, err := Decode(bplist(objs...)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("shared objects took %v", d)
	}

	// Nesting deeper than maxDepth.
	objs = objs[:0]
	for i := 0; i < 200; i++ {
		objs = append(objs, []byte{0xa1, byte(i + 1)})
	}
	objs = append(objs, []byte{0x09})
	if len(objs) < 256 {
		if _, err := Decode(bplist(objs...)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("deep nesting: %v", err)
		}
	}
}

func TestXMLHostile(t *testing.T) {
	for name, in := range map[string]string{
		"empty":             "",
		"not xml":           "\x00\x01",
		"empty plist":       "<plist></plist>",
		"key without value": "<plist><dict><key>a</key></dict></plist>",
		"value without key": "<plist><dict><string>a</string></dict></plist>",
		"bad integer":       "<plist><integer>x</integer></plist>",
		"bad date":          "<plist><date>yesterday</date></plist>",
		"bad data":          "<plist><data>!!!</data></plist>",
		"unknown element":   "<plist><blob/></plist>",
		"element in string": "<plist><string>a<b/></string></plist>",
		"unclosed":          "<plist><dict><key>a</key><string>b",
		"too deep":          "<plist>" + string(bytes.Repeat([]byte("<array>"), 200)),
	} {
		if _, err := Decode([]byte(in)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	v, err := Decode([]byte(`<?xml version="1.0"?><!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd"><plist version="1.0"><dict><key>a&amp;b</key><string>&lt;x&gt;</string><key>n</key><integer>0x10</integer></dict></plist>`))
	if err != nil || !reflect.DeepEqual(v, map[string]any{"a&b": "<x>", "n": int64(16)}) {
		t.Errorf("got %#v, %v", v, err)
	}
}
