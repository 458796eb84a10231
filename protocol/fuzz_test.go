package protocol

import (
	"reflect"
	"testing"
)

// FuzzDecodeRequest feeds arbitrary bytes to the strict decoder: it must
// never panic, and whatever it accepts must survive encode → decode
// unchanged. The seed corpus runs in every `go test`.
func FuzzDecodeRequest(f *testing.F) {
	inv, _ := NewRequest(KindInventory, 7, sampleInventory())
	withUsers, _ := NewRequest(KindInventory, 8, sampleInventoryWithUsers())
	enr, _ := NewRequest(KindEnroll, 1, &EnrollRequest{Secret: "0123456789abcdef", Hostname: "h", Hints: Hints{InstanceID: "i", MACs: []string{"52:54:00:12:34:56"}}})
	for _, s := range [][]byte{inv, withUsers, enr, inv[:len(inv)/2], {0xa0}, {0xbf, 0xff}, {0xd8, 0x20, 0x60}, {0x81, 0x81, 0x81, 0x00},
		{0xa4, 0x01, 0x01, 0x01, 0x01, 0x03, 0x02, 0x04, 0x01}, []byte("garbage")} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeRequest(data)
		if err != nil {
			return
		}
		again, err := Marshal(req)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		req2, err := DecodeRequest(again)
		if err != nil {
			t.Fatalf("decode of re-encoded request: %v", err)
		}
		if !reflect.DeepEqual(req, req2) {
			t.Fatalf("round trip changed the request: %+v → %+v", req, req2)
		}
		switch req.Kind {
		case KindInventory:
			var b InventoryRequest
			_ = DecodeBody(req.Body, &b)
		case KindEnroll:
			var b EnrollRequest
			_ = DecodeBody(req.Body, &b)
		}
	})
}

// FuzzDecodeInventoryBody targets the largest body type directly.
func FuzzDecodeInventoryBody(f *testing.F) {
	b, _ := Marshal(sampleInventory())
	f.Add(b)
	b, _ = Marshal(sampleInventoryWithUsers())
	f.Add(b)
	f.Add([]byte{0xa1, 0x01, 0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var inv InventoryRequest
		if err := DecodeBody(data, &inv); err != nil {
			return
		}
		_ = inv.Validate() // the users' checks among the others: no panic on any accepted body
		enc, err := Marshal(&inv)
		if err != nil {
			t.Fatal(err)
		}
		var inv2 InventoryRequest
		if err := DecodeBody(enc, &inv2); err != nil {
			t.Fatalf("accepted body fails after re-encoding: %v", err)
		}
	})
}
