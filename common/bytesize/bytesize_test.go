package bytesize

import (
	"math"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := map[string]int64{
		"0": 0, "1024": 1024, "100": 100, "64MiB": 64 << 20, "64 mib": 64 << 20, "1GiB": 1 << 30, "1gb": 1e9, "1GB": 1e9,
		"512KiB": 512 << 10, "5kB": 5000, "3TiB": 3 << 40, "7B": 7, "10 MB": 10e6, "2GiB": 2 << 30,
		"8589934591GiB": 8589934591 << 30,
	}
	for in, want := range good {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	// A size too large for a byte count is refused, not wrapped into a
	// small or negative one; every error names what it refused.
	for _, in := range []string{"", "MiB", "-1", "-1MiB", "+1", "1.5MiB", "1 2", "1XB", "lots", "9223372036854775807KiB",
		"9000000000GiB", "8589934592GiB", "9223372036854775807KB", "99999999999TiB", "9223372036854775808", strings.Repeat("9", 1000)} {
		got, err := Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) = %v, want an error", in, got)
		} else if !strings.Contains(err.Error(), in) {
			t.Errorf("Parse(%q): the error does not name it: %v", in, err)
		}
	}
}

func TestFormat(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 64 << 20: "64.0 MiB",
		3<<30 + 200<<20: "3.2 GiB", 1 << 40: "1.0 TiB", math.MaxUint64: "16.0 EiB",
	} {
		if got := Format(n); got != want {
			t.Errorf("Format(%d) = %q, want %q", n, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"64MiB", "1 gb", "+1", "-0", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err == nil && n < 0 {
			t.Fatalf("Parse(%q) = %d", s, n)
		}
	})
}
