package protocol

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sampleInventory() *InventoryRequest {
	return &InventoryRequest{Basic: BasicInventory{
		CollectedAt: 1764000000, Hostname: "web-01", OS: "linux", Platform: "debian", PlatformVersion: "12",
		Arch: "x86_64", CPUModel: "AMD EPYC", CPUCores: 2, CPUThreads: 4, MemoryBytes: 8 << 30,
		Disks:   []Disk{{Device: "/dev/vda1", Mountpoint: "/", FSType: "ext4", TotalBytes: 100, FreeBytes: 50}},
		NICs:    []NIC{{Name: "eth0", MAC: "52:54:00:12:34:56", Addrs: []string{"192.0.2.10/24"}}},
		Hints:   Hints{InstanceID: "6f1c", MachineID: "abc", MACs: []string{"52:54:00:12:34:56"}},
		Plugins: []Plugin{{Name: "inventory", Version: "7.1.0", BuildDate: "2026-10-01"}},
	}}
}

func TestRequestRoundTrip(t *testing.T) {
	b, err := NewRequest(KindInventory, 42, sampleInventory())
	if err != nil {
		t.Fatal(err)
	}
	req, err := DecodeRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if req.Kind != KindInventory || req.Seq != 42 || req.Major != Major || req.Rev != Revision {
		t.Fatalf("envelope %+v", req)
	}
	var inv InventoryRequest
	if err := DecodeBody(req.Body, &inv); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&inv, sampleInventory()) {
		t.Fatalf("body changed in transit: %+v", inv)
	}
}

// Integer keys keep messages compact: a whole basic inventory is a few
// hundred bytes.
func TestEncodingIsCompact(t *testing.T) {
	b, _ := NewRequest(KindInventory, 42, sampleInventory())
	if len(b) > 400 {
		t.Fatalf("inventory envelope is %d bytes; keyasint encoding should keep it under 400", len(b))
	}
	if bytes.Contains(b, []byte("hostname")) {
		t.Fatal("field names leaked into the encoding")
	}
}

func TestDecodeRequestRefusals(t *testing.T) {
	good, _ := NewRequest(KindInventory, 1, sampleInventory())
	unknown, _ := Marshal(Request{Major: Major, Rev: 1, Kind: 4242, Seq: 1})
	major2, _ := Marshal(Request{Major: 2, Rev: 1, Kind: KindInventory, Seq: 1})
	seq0, _ := Marshal(Request{Major: Major, Rev: 1, Kind: KindInventory, Seq: 0})
	unknownField := []byte{0xa5, 0x01, 0x01, 0x02, 0x01, 0x03, 0x02, 0x04, 0x01, 0x18, 0x63, 0x00} // key 99
	cases := []struct {
		name string
		in   []byte
		want Status
	}{
		{"empty", nil, StatusBadRequest},
		{"truncated", good[:len(good)-3], StatusBadRequest},
		{"trailing", append(append([]byte{}, good...), 0x01), StatusBadRequest},
		{"unknown kind", unknown, StatusUnknownKind},
		{"major 2", major2, StatusUnsupportedVersion},
		{"seq 0", seq0, StatusBadRequest},
		{"unknown field", unknownField, StatusBadRequest},
		{"duplicate key", []byte{0xa4, 0x01, 0x01, 0x01, 0x01, 0x03, 0x02, 0x04, 0x01}, StatusBadRequest},
		{"indefinite map", []byte{0xbf, 0x01, 0x01, 0xff}, StatusBadRequest},
		{"tag", []byte{0xd8, 0x20, 0x60}, StatusBadRequest},
		{"array not map", []byte{0x83, 0x01, 0x02, 0x03}, StatusBadRequest},
	}
	for _, c := range cases {
		_, err := DecodeRequest(c.in)
		var pe *Error
		if !errors.As(err, &pe) || pe.Status != c.want {
			t.Errorf("%s: err = %v, want status %s", c.name, err, c.want)
		}
	}
}

func TestLimits(t *testing.T) {
	// Nesting beyond MaxNestedLevels.
	deep := bytes.Repeat([]byte{0x81}, MaxNestedLevels+2)
	deep = append(deep, 0x00)
	var v any
	if err := Unmarshal(deep, &v); err == nil {
		t.Fatal("nesting beyond the limit was accepted")
	}
	// An array longer than MaxArrayElements, declared in its header.
	long := []byte{0x9a, 0x00, 0x10, 0x00, 0x01} // array of 1,048,577 elements
	if err := Unmarshal(long, &v); err == nil {
		t.Fatal("array length beyond the limit was accepted")
	}
	// A map with more pairs than MaxMapPairs.
	bigMap := []byte{0xb9, 0x01, 0x01} // map of 257 pairs
	if err := Unmarshal(bigMap, &v); err == nil {
		t.Fatal("map size beyond the limit was accepted")
	}
	if _, err := ReadMessage(bytes.NewReader(make([]byte, 11)), 10); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ReadMessage over limit: %v", err)
	}
	if b, err := ReadMessage(bytes.NewReader(make([]byte, 10)), 10); err != nil || len(b) != 10 {
		t.Fatalf("ReadMessage at limit: %d %v", len(b), err)
	}
}

func TestValidate(t *testing.T) {
	bad := []func(*InventoryRequest){
		func(r *InventoryRequest) { r.Basic.Hostname = "" },
		func(r *InventoryRequest) { r.Basic.Hostname = strings.Repeat("x", 300) },
		func(r *InventoryRequest) { r.Basic.Hints.InstanceID = "" },
		func(r *InventoryRequest) { r.Basic.Hints.MACs = []string{"not-a-mac"} },
		func(r *InventoryRequest) { r.Basic.Plugins = append(r.Basic.Plugins, r.Basic.Plugins[0]) },
		func(r *InventoryRequest) { r.Basic.Plugins[0].Name = "Bad Name" },
		func(r *InventoryRequest) { r.Basic.Plugins[0].BuildDate = "yesterday" },
		func(r *InventoryRequest) { r.Basic.OS = string([]byte{0xff, 0xfe}) },
	}
	for i, f := range bad {
		r := sampleInventory()
		f(r)
		if err := r.Validate(); err == nil {
			t.Errorf("case %d: invalid inventory accepted", i)
		}
	}
	if err := sampleInventory().Validate(); err != nil {
		t.Fatal(err)
	}
	e := EnrollRequest{Secret: "", Hostname: "h", Hints: Hints{InstanceID: "i"}}
	if e.Validate() == nil {
		t.Fatal("enroll without secret accepted")
	}
}

func TestVerdictNames(t *testing.T) {
	for v := Verdict(0); v.Known(); v++ {
		p, err := ParseVerdict(v.String())
		if err != nil || p != v {
			t.Fatalf("verdict %d: %q round-trips to %d, %v", v, v.String(), p, err)
		}
	}
	if VerdictDiscardedNoSeat.String() != "discarded:no-seat" || !VerdictDeniedNoSeat.Discarded() || VerdictLicensed.Discarded() {
		t.Fatal("verdict names or classes wrong")
	}
}
