package machineid

import (
	"slices"
	"testing"

	"github.com/tallyhq/tally/protocol"
)

func TestIsJunk(t *testing.T) {
	junk := []string{
		"", "   ", "None", "NULL", "N/A", "unknown", "Not Specified", "Not Applicable", "Default string",
		"To be Filled By O.E.M.", "TO BE FILLED BY OEM", " To Be Filled By O.E.M. ", "System Serial Number",
		"System Product Name", "Chassis Serial Number", "0123456789", "1234567890", "O.E.M.", "Invalid", "empty",
		"03000200-0400-0500-0006-000700080009", "03000200-0400-0500-0006-000700080009 ",
		"00000000-0000-0000-0000-000000000000", "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", "ffffffff-ffff-ffff-ffff-ffffffffffff",
		"0000000000", "00:00:00:00:00:00", "11111111", "xxxx", "abc", "a-b", "0.0.0.0",
	}
	for _, v := range junk {
		if !IsJunk(v) {
			t.Errorf("IsJunk(%q) = false, want true", v)
		}
	}
	real := []string{
		"4c4c4544-0042-3510-8052-b4c04f333832", "VMware-56 4d 0d 3b", "C02XK0AAJGH5", "PF2ABCDE",
		"6b29fc40ca471c8d3e0a6f3b2c1d9e7f", "abcd", "00000001", "12345678-aaaa-bbbb-cccc-1234567890ab",
	}
	for _, v := range real {
		if IsJunk(v) {
			t.Errorf("IsJunk(%q) = true, want false", v)
		}
	}
}

func TestPrimaryMAC(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"00:1A:2B:3C:4D:5E", "00:1a:2b:3c:4d:5e", true},
		{" 00-1a-2b-3c-4d-5e ", "00:1a:2b:3c:4d:5e", true},
		{"001a.2b3c.4d5e", "00:1a:2b:3c:4d:5e", true},
		{"a4:83:e7:01:02:03", "a4:83:e7:01:02:03", true},
		{"02:42:ac:11:00:02", "", false}, // locally administered (docker)
		{"52:54:00:12:34:56", "", false}, // locally administered (qemu default)
		{"fe:ff:ff:ff:ff:ff", "", false}, // locally administered
		{"01:00:5e:00:00:fb", "", false}, // multicast
		{"ff:ff:ff:ff:ff:ff", "", false}, // broadcast
		{"00:00:00:00:00:00", "", false},
		{"", "", false},
		{"not a mac", "", false},
		{"00:1a:2b:3c:4d", "", false},                                              // too short
		{"00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01", "", false}, // 20-byte InfiniBand
		{"00:1a:2b:3c:4d:5e:6f:70", "", false},                                     // EUI-64
	}
	for _, c := range cases {
		got, ok := PrimaryMAC(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("PrimaryMAC(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestClean(t *testing.T) {
	in := protocol.Hints{
		InstanceID:  "  3f0c9a52-1111-4222-8333-944455556666 ",
		ProductUUID: " 4C4C4544-0042-3510-8052-B4C04F333832 ",
		Serial:      " C02XK0AAJGH5 ",
		MachineID:   "6B29FC40CA471C8D3E0A6F3B2C1D9E7F\n",
		MACs: []string{
			"00:1A:2B:3C:4D:5E", "02:42:ac:11:00:02", "a4:83:e7:01:02:03", "00-1a-2b-3c-4d-5e",
			"01:00:5e:00:00:fb", "00:00:00:00:00:00", "garbage",
		},
	}
	got := Clean(in)
	want := protocol.Hints{
		InstanceID:  "3f0c9a52-1111-4222-8333-944455556666",
		ProductUUID: "4c4c4544-0042-3510-8052-b4c04f333832",
		Serial:      "C02XK0AAJGH5", // serials keep their case
		MachineID:   "6b29fc40ca471c8d3e0a6f3b2c1d9e7f",
		MACs:        []string{"00:1a:2b:3c:4d:5e", "a4:83:e7:01:02:03"},
	}
	if got.InstanceID != want.InstanceID || got.ProductUUID != want.ProductUUID || got.Serial != want.Serial ||
		got.MachineID != want.MachineID || !slices.Equal(got.MACs, want.MACs) {
		t.Fatalf("Clean =\n %+v\nwant\n %+v", got, want)
	}
	if in.MACs[0] != "00:1A:2B:3C:4D:5E" {
		t.Error("Clean changed its input")
	}
}

func TestCleanDropsEveryPlaceholder(t *testing.T) {
	got := Clean(protocol.Hints{
		ProductUUID: "03000200-0400-0500-0006-000700080009",
		Serial:      "To be Filled By O.E.M.",
		MachineID:   "00000000000000000000000000000000",
		MACs:        []string{"02:00:00:00:00:01", "00:00:00:00:00:00"},
	})
	if got.ProductUUID != "" || got.Serial != "" || got.MachineID != "" || len(got.MACs) != 0 {
		t.Fatalf("placeholders survived: %+v", got)
	}
	// Clean is idempotent: the server cleans what the agent cleaned.
	h := protocol.Hints{InstanceID: "i", ProductUUID: "ABCD-1234", Serial: "S1", MachineID: "M-1", MACs: []string{"00:1A:2B:3C:4D:5E"}}
	once := Clean(h)
	twice := Clean(once)
	if once.ProductUUID != twice.ProductUUID || once.Serial != twice.Serial || once.MachineID != twice.MachineID || !slices.Equal(once.MACs, twice.MACs) {
		t.Fatalf("Clean is not idempotent: %+v then %+v", once, twice)
	}
}

func FuzzClean(f *testing.F) {
	f.Add("To be filled by O.E.M.", "0000", "00:1a:2b:3c:4d:5e")
	f.Add("4c4c4544-0042-3510-8052-b4c04f333832", "C02XK0AAJGH5", "02:42:ac:11:00:02")
	f.Fuzz(func(t *testing.T, uuid, serial, mac string) {
		once := Clean(protocol.Hints{ProductUUID: uuid, Serial: serial, MachineID: uuid, MACs: []string{mac, mac}})
		twice := Clean(once)
		if once.ProductUUID != twice.ProductUUID || once.Serial != twice.Serial || once.MachineID != twice.MachineID || !slices.Equal(once.MACs, twice.MACs) {
			t.Fatalf("Clean is not idempotent: %+v then %+v", once, twice)
		}
		if len(once.MACs) > 1 {
			t.Fatalf("a MAC listed twice kept twice: %v", once.MACs)
		}
		for _, m := range once.MACs {
			if n, ok := PrimaryMAC(m); !ok || n != m {
				t.Fatalf("kept MAC %q is not a normalised primary MAC", m)
			}
		}
	})
}
