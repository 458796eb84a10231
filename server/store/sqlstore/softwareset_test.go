package sqlstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"testing"
)

func TestSoftwareSetRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name       string
		ids, dates []int64
		idLen      int // expected size of the IDs blob, 0: not checked
		dateLen    int
	}{
		{name: "empty", ids: []int64{}, dates: []int64{}, idLen: 2, dateLen: 2},
		{name: "one", ids: []int64{1}, dates: []int64{0}, idLen: 3, dateLen: 3},
		{name: "dense, no dates", ids: []int64{1, 2, 3, 4, 5}, dates: []int64{0, 0, 0, 0, 0}, idLen: 7, dateLen: 7},
		{name: "zero ID", ids: []int64{0, 1}, dates: []int64{5, 5}},
		{name: "dates up and down", ids: []int64{10, 300, 70_000}, dates: []int64{1_700_000_000, 1_600_000_000, 0}},
		{name: "negative dates", ids: []int64{1, 2}, dates: []int64{-5, math.MinInt64}},
		{name: "extremes", ids: []int64{0, math.MaxInt64}, dates: []int64{math.MaxInt64, math.MinInt64}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ib, db, err := encodeSoftwareSet(c.ids, c.dates)
			if err != nil {
				t.Fatal(err)
			}
			if (c.idLen != 0 && len(ib) != c.idLen) || (c.dateLen != 0 && len(db) != c.dateLen) {
				t.Fatalf("blobs of %d and %d bytes, want %d and %d", len(ib), len(db), c.idLen, c.dateLen)
			}
			ids, dates, err := decodeSoftwareSet(ib, db)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids, c.ids) || !slices.Equal(dates, c.dates) {
				t.Fatalf("decoded %v %v, want %v %v", ids, dates, c.ids, c.dates)
			}
		})
	}
}

func TestSoftwareSetEncodeRefuses(t *testing.T) {
	for _, c := range []struct {
		name       string
		ids, dates []int64
	}{
		{"unsorted", []int64{2, 1}, []int64{0, 0}},
		{"duplicate", []int64{1, 1}, []int64{0, 0}},
		{"negative", []int64{-1}, []int64{0}},
		{"counts differ", []int64{1, 2}, []int64{0}},
	} {
		if _, _, err := encodeSoftwareSet(c.ids, c.dates); err == nil {
			t.Errorf("%s: encoded", c.name)
		}
	}
}

func TestSoftwareSetDecodeRejects(t *testing.T) {
	okIDs, okDates, err := encodeSoftwareSet([]int64{3, 7}, []int64{0, 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		ids, date []byte
	}{
		{"empty IDs blob", nil, okDates},
		{"empty dates blob", okIDs, nil},
		{"unknown version", []byte{2, 0}, []byte{2, 0}},
		{"truncated count", []byte{1, 0x80}, []byte{1, 0x80}},
		{"count beyond the bytes", []byte{1, 3, 1, 1}, []byte{1, 3, 0, 0}},
		{"huge count", []byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, okDates},
		{"truncated ID", []byte{1, 2, 3, 0x84}, okDates},
		{"truncated date", okIDs, []byte{1, 2, 0, 0xc8}},
		{"ID not increasing", []byte{1, 2, 3, 0}, okDates},
		{"ID past int64", []byte{1, 2, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 2}, okDates},
		{"first ID past int64", []byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, []byte{1, 1, 0}},
		{"varint overflow", []byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, []byte{1, 1, 0}},
		{"overlong varint", []byte{1, 2, 0x83, 0x00, 4}, okDates},
		{"overlong count", []byte{1, 0x82, 0x00, 3, 4}, okDates},
		{"fewer dates", okIDs, []byte{1, 1, 0}},
		{"more dates", okIDs, []byte{1, 3, 0, 0, 0}},
		{"trailing ID bytes", append(slices.Clone(okIDs), 1), okDates},
		{"trailing date bytes", okIDs, append(slices.Clone(okDates), 0)},
	} {
		ids, dates, err := decodeSoftwareSet(c.ids, c.date)
		if !errors.Is(err, errBadSoftwareSet) {
			t.Errorf("%s: decoded %v %v, err %v; want errBadSoftwareSet", c.name, ids, dates, err)
		}
	}
}

// A set of 2,000 packages of a fleet's pool (IDs a few apart, real dates)
// takes about five bytes a package, and 2,000 unknown dates one byte each.
func TestSoftwareSetSize(t *testing.T) {
	ids := make([]int64, 2000)
	dates := make([]int64, 2000)
	for i := range ids {
		ids[i] = int64(1 + 3*i)
		dates[i] = 1_700_000_000 + int64(i*7919%40_000_000)*13%40_000_000
	}
	ib, db, err := encodeSoftwareSet(ids, dates)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("2,000 packages: %d + %d bytes", len(ib), len(db))
	if len(ib)+len(db) > 6*2000 {
		t.Fatalf("2,000 packages take %d + %d bytes", len(ib), len(db))
	}
	_, db, err = encodeSoftwareSet(ids, make([]int64, 2000))
	if err != nil {
		t.Fatal(err)
	}
	if len(db) != 2003 {
		t.Fatalf("2,000 unknown dates take %d bytes, want 2,003", len(db))
	}
}

// FuzzSoftwareSet checks that any blobs either decode to a valid set that
// encodes back to the same bytes, or fail with errBadSoftwareSet, and never
// panic; and that any set read from the input round-trips.
func FuzzSoftwareSet(f *testing.F) {
	ib, db, _ := encodeSoftwareSet([]int64{1, 5, 300, 70_000}, []int64{1_700_000_000, 0, 0, -3})
	f.Add(ib, db)
	f.Add([]byte{1, 0}, []byte{1, 0})
	f.Add([]byte{1, 2, 3, 0}, []byte{1, 2, 0, 0})
	f.Add([]byte{1, 2, 0x83, 0x00, 4}, []byte{1, 1, 0})
	f.Add([]byte{}, []byte{2})
	f.Fuzz(func(t *testing.T, idBlob, dateBlob []byte) {
		ids, dates, err := decodeSoftwareSet(idBlob, dateBlob)
		if err != nil {
			if !errors.Is(err, errBadSoftwareSet) {
				t.Fatalf("error %v does not wrap errBadSoftwareSet", err)
			}
		} else {
			ib, db, err := encodeSoftwareSet(ids, dates)
			if err != nil {
				t.Fatalf("decoded set %v %v does not encode: %v", ids, dates, err)
			}
			if !bytes.Equal(ib, idBlob) || !bytes.Equal(db, dateBlob) {
				t.Fatalf("decoded and encoded again: %x %x, was %x %x", ib, db, idBlob, dateBlob)
			}
		}
		// The input read as a set: each 4-byte word of idBlob is the step
		// to the next ID, each 8-byte word of dateBlob a date (0 past its end).
		var set, when []int64
		id := int64(-1)
		for b := idBlob; len(b) >= 4; b = b[4:] {
			id += 1 + int64(binary.LittleEndian.Uint32(b))
			set = append(set, id)
			var d int64
			if k := 8 * len(when); k+8 <= len(dateBlob) {
				d = int64(binary.LittleEndian.Uint64(dateBlob[k:]))
			}
			when = append(when, d)
		}
		ib, db, err := encodeSoftwareSet(set, when)
		if err != nil {
			t.Fatalf("encode %v %v: %v", set, when, err)
		}
		gotIDs, gotDates, err := decodeSoftwareSet(ib, db)
		if err != nil || !slices.Equal(gotIDs, set) || !slices.Equal(gotDates, when) {
			t.Fatalf("round trip of %v %v: %v %v %v", set, when, gotIDs, gotDates, err)
		}
	})
}
