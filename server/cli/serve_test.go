package cli

import (
	"strings"
	"testing"
)

// --memory-limit reads a size or refuses it with a sentence; a size too
// large for a byte count is refused, not wrapped into a small or negative
// limit (9000000000GiB wrapped to a negative one).
func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"512MiB": 512 << 20, "2GiB": 2 << 30, "1GB": 1e9, "100": 100, "8589934591GiB": 8589934591 << 30} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("%s: %d %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"9000000000GiB", "8589934592GiB", "9223372036854775807KB", "-1MiB", "lots"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("%s: accepted as %d", in, got)
		} else if !strings.Contains(err.Error(), in) {
			t.Errorf("%s: the error does not name it: %v", in, err)
		}
	}
}
