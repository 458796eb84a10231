// Package bytesize reads and writes byte counts as people type and read
// them (64MiB, 1 GB, 3.2 GiB), so that the agent's configuration, the
// server's flags, its CLI and its console agree on what a size means.
package bytesize

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// units are the suffixes Parse reads, longest first, so that "KiB" is not
// read as "B".
var units = []struct {
	suffix string
	factor int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"b", 1},
}

// Parse reads a byte count: a whole number, optionally followed by B, KB,
// MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), in
// any case, with or without a space. The error names s.
func Parse(s string) (int64, error) {
	bad := fmt.Errorf("%q is not a size like 64MiB or 1GiB", s)
	num, factor := strings.TrimSpace(s), int64(1)
	lower := strings.ToLower(num)
	for _, u := range units {
		if strings.HasSuffix(lower, u.suffix) {
			num, factor = strings.TrimSpace(num[:len(num)-len(u.suffix)]), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || num[0] == '+' {
		return 0, bad
	}
	if n > math.MaxInt64/factor { // would wrap into another size
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * factor, nil
}

// Format writes n in powers of 1024 with one decimal: "512 B", "1.5 KiB",
// "3.2 GiB".
func Format(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for x := n / unit; x >= unit; x /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
