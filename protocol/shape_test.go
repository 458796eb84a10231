package protocol

import (
	"bytes"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
)

// cborHead appends a CBOR header of major type major and argument n.
func cborHead(b *bytes.Buffer, major byte, n uint64) {
	switch {
	case n < 24:
		b.WriteByte(major<<5 | byte(n))
	case n < 1<<8:
		b.Write([]byte{major<<5 | 24, byte(n)})
	case n < 1<<16:
		b.Write([]byte{major<<5 | 25, byte(n >> 8), byte(n)})
	default:
		b.Write([]byte{major<<5 | 26, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
	}
}

// hugeAddresses is an inventory body of nics interfaces holding addrs
// empty addresses each: four million of them fit in the 4 MB a request
// may have.
func hugeAddresses(nics, addrs int) []byte {
	var b bytes.Buffer
	cborHead(&b, 5, 1) // InventoryRequest{Basic:
	cborHead(&b, 0, 1)
	cborHead(&b, 5, 3) // BasicInventory{Hostname, NICs, Hints}
	cborHead(&b, 0, 2)
	cborHead(&b, 3, 1)
	b.WriteString("h")
	cborHead(&b, 0, 15)
	cborHead(&b, 4, uint64(nics))
	for range nics {
		cborHead(&b, 5, 2) // NIC{Name, Addrs}
		cborHead(&b, 0, 1)
		cborHead(&b, 3, 3)
		b.WriteString("eth")
		cborHead(&b, 0, 3)
		cborHead(&b, 4, uint64(addrs))
		b.Write(bytes.Repeat([]byte{0x60}, addrs)) // empty text strings
	}
	cborHead(&b, 0, 16)
	cborHead(&b, 5, 1)
	cborHead(&b, 0, 1)
	cborHead(&b, 3, 1)
	b.WriteString("i")
	return b.Bytes()
}

// emptyPackages is a software inventory delta of three lists of n empty
// packages each.
func emptyPackages(lists, n int) []byte {
	var b bytes.Buffer
	cborHead(&b, 5, 1)
	cborHead(&b, 0, 2) // Software:
	cborHead(&b, 5, uint64(lists))
	for i := range lists {
		cborHead(&b, 0, uint64(3+i)) // Packages, Added, Removed
		cborHead(&b, 4, uint64(n))
		b.Write(bytes.Repeat([]byte{0xa0}, n)) // empty maps
	}
	return b.Bytes()
}

// A body of huge lists of empty entries, each within the size of a
// request, is refused with a sentence naming the list before anything of
// it is decoded: four million empty addresses (issue 14: 44 MB decoded
// each, 702 MB for 16 at once) and 196,608 empty packages cost a few
// small allocations and a few kilobytes.
func TestHugeListsAreRefusedBeforeDecoding(t *testing.T) {
	for _, c := range []struct {
		name, want string
		body       []byte
	}{
		{"4M addresses on 63 interfaces", "too many interface addresses: 65536 in one list, at most 1024", hugeAddresses(63, 65536)},
		{"1024 addresses on each of 1024 interfaces", "too many interface addresses: more than 16384 in one request", hugeAddresses(1024, 1024)},
		{"3 x 65536 empty packages", "too many packages: more than 131072 in one request", emptyPackages(3, 65536)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if len(c.body) > MaxRequestSize {
				t.Fatalf("body of %d bytes is over the request size: the test proves nothing", len(c.body))
			}
			var inv InventoryRequest
			err := DecodeBody(c.body, &inv)
			var pe *Error
			if !errors.As(err, &pe) || pe.Status != StatusBadRequest || !strings.Contains(pe.Message, c.want) {
				t.Fatalf("DecodeBody: %v, want bad-request %q", err, c.want)
			}
			allocs := testing.AllocsPerRun(5, func() {
				var inv InventoryRequest
				_ = DecodeBody(c.body, &inv)
			})
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_ = DecodeBody(c.body, &InventoryRequest{})
			runtime.ReadMemStats(&after)
			bytes := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d bytes of body: %.0f allocations, %d bytes", len(c.body), allocs, bytes)
			if allocs > 20 || bytes > 64<<10 {
				t.Fatalf("refusing %d bytes of body cost %.0f allocations and %d bytes: it was decoded", len(c.body), allocs, bytes)
			}
		})
	}
}

// Lists at their limits still decode: the shape check refuses only what
// Validate would.
func TestListsAtTheirLimitsDecode(t *testing.T) {
	inv := sampleInventory()
	inv.Basic.NICs = nil
	for i := range 256 {
		inv.Basic.NICs = append(inv.Basic.NICs, NIC{Name: "eth" + strings.Repeat("x", i%5), Addrs: make([]string, 64)})
		for j := range inv.Basic.NICs[i].Addrs {
			inv.Basic.NICs[i].Addrs[j] = "10.0.0.1/8"
		}
	}
	raw, err := Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	var got InventoryRequest
	if err := DecodeBody(raw, &got); err != nil {
		t.Fatalf("256 interfaces of 64 addresses, what an agent sends at most: %v", err)
	}
}

// Every request kind has a body type whose shape is checked.
func TestEveryKindHasAShape(t *testing.T) {
	for k := range kindNames {
		if _, ok := requestBodies[k]; !ok {
			t.Errorf("kind %s has no body type in requestBodies", k)
		}
	}
}

// FuzzShape feeds arbitrary bytes to the shape check: it never panics, and
// a body it refuses as too long never decodes and validates.
func FuzzShape(f *testing.F) {
	b, _ := Marshal(sampleInventory())
	f.Add(b)
	f.Add(hugeAddresses(2, 3))
	f.Add(emptyPackages(2, 2))
	f.Fuzz(func(t *testing.T, data []byte) {
		var inv InventoryRequest
		err := DecodeBody(data, &inv)
		if err == nil {
			if enc, err := Marshal(&inv); err != nil || DecodeBody(enc, &InventoryRequest{}) != nil {
				t.Fatalf("accepted body fails after re-encoding: %v", err)
			}
		}
	})
}

// The largest valid enrollment, and the goodbye an uninstalled agent may
// send again, fit in what a key the server does not know may send.
func TestLargestEnrollmentFitsUnauthenticated(t *testing.T) {
	long := strings.Repeat("x", maxShortString)
	e := EnrollRequest{Secret: strings.Repeat("s", maxSecretLen), Hostname: long, AgentVersion: long, OS: long,
		Hints: Hints{InstanceID: long, ProductUUID: long, Serial: long, MachineID: long}}
	for range 64 {
		e.Hints.MACs = append(e.Hints.MACs, "52:54:00:12:34:56:78:9a")
	}
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	g := GoodbyeRequest{Reason: strings.Repeat("r", maxLongString)}
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	for kind, body := range map[Kind]any{KindEnroll: &e, KindGoodbye: &g} {
		raw, err := NewRequest(kind, math.MaxInt64, body)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) > MaxUnauthenticatedSize {
			t.Errorf("the largest %s is %d bytes, over MaxUnauthenticatedSize (%d)", kind, len(raw), MaxUnauthenticatedSize)
		}
		t.Logf("the largest %s: %d bytes", kind, len(raw))
	}
}
