package spool_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/spool"
	"github.com/tallyhq/tally/protocol"
)

// Decode reads what power loss, disks and people leave on disk: it must
// never panic, and whatever it accepts is exactly what Encode writes.
func FuzzDecode(f *testing.F) {
	recs := []spool.Record{
		{Seq: 1, Kind: protocol.KindInventory, Class: spool.Snapshot, Key: "inventory", Created: time.UnixMilli(1_700_000_000_000), Body: []byte{0xa1, 0x01, 0x02}},
		{Seq: 1<<64 - 1, Kind: 0xffff, Class: spool.Event, Created: time.UnixMilli(-1)},
		{Seq: 42, Kind: protocol.KindInventory, Class: spool.Event, Key: "goodbye", Created: time.UnixMilli(0), Body: bytes.Repeat([]byte("x"), 300)},
	}
	for _, r := range recs {
		b, err := spool.Encode(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
		f.Add(append(append([]byte(nil), b...), 0))
		flipped := append([]byte(nil), b...)
		flipped[len(flipped)-5] ^= 0x10
		f.Add(flipped)
	}
	f.Add([]byte{})
	f.Add([]byte("TSP1"))
	f.Add([]byte("not a spool record at all, but long enough for a header"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := spool.Decode(b)
		if err != nil {
			return
		}
		again, err := spool.Encode(r)
		if err != nil {
			t.Fatalf("Decode accepted a record Encode refuses: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("Decode(%x) = %+v, which encodes as %x", b, r, again)
		}
	})
}

// Whatever Encode accepts, Decode gives back unchanged.
func FuzzEncodeDecode(f *testing.F) {
	f.Add(uint64(1), uint16(2), byte(1), "inventory", int64(1_700_000_000_000), []byte{0xa0})
	f.Add(uint64(1<<64-1), uint16(0xffff), byte(2), "", int64(-1<<63), []byte(nil))
	f.Add(uint64(0), uint16(0), byte(0), "k", int64(1<<63-1), []byte("x"))
	f.Fuzz(func(t *testing.T, seq uint64, kind uint16, class byte, key string, created int64, body []byte) {
		in := spool.Record{Seq: seq, Kind: protocol.Kind(kind), Class: spool.Class(class), Key: key, Created: time.UnixMilli(created), Body: body}
		b, err := spool.Encode(in)
		if err != nil {
			return
		}
		out, err := spool.Decode(b)
		if err != nil {
			t.Fatalf("Decode(Encode(%+v)): %v", in, err)
		}
		if out.Seq != in.Seq || out.Kind != in.Kind || out.Class != in.Class || out.Key != in.Key ||
			out.Created.UnixMilli() != created || !bytes.Equal(out.Body, in.Body) {
			t.Fatalf("round trip changed %+v into %+v", in, out)
		}
	})
}
