package recognize

import (
	"fmt"
	"strings"
)

// Compare orders two version strings as dpkg does (epoch, then
// alternating runs of non-digits, compared with ~ before everything and
// letters before other characters, and of digits, compared as numbers),
// which also orders rpm, Windows and macOS versions sensibly. It returns
// -1, 0 or 1.
func Compare(a, b string) int {
	ea, ra := epoch(a)
	eb, rb := epoch(b)
	if c := compareDigits(ea, eb); c != 0 {
		return c
	}
	return verrevcmp(ra, rb)
}

func epoch(v string) (string, string) {
	if i := strings.IndexByte(v, ':'); i > 0 && isDigits(v[:i]) {
		return v[:i], v[i+1:]
	}
	return "0", v
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// order is dpkg's weight of a non-digit character (0 for a digit or the
// end of the string).
func order(c byte) int {
	switch {
	case c == 0, isDigit(c):
		return 0
	case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		return int(c)
	case c == '~':
		return -1
	}
	return int(c) + 256
}

// verrevcmp is dpkg's comparison of an upstream version or revision.
func verrevcmp(a, b string) int {
	at := func(s string, i int) byte {
		if i < len(s) {
			return s[i]
		}
		return 0
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			oa, ob := order(at(a, i)), order(at(b, j))
			if oa != ob {
				return sign(oa - ob)
			}
			i++
			j++
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		first := 0
		for i < len(a) && j < len(b) && isDigit(a[i]) && isDigit(b[j]) {
			if first == 0 {
				first = int(a[i]) - int(b[j])
			}
			i++
			j++
		}
		if i < len(a) && isDigit(a[i]) {
			return 1
		}
		if j < len(b) && isDigit(b[j]) {
			return -1
		}
		if first != 0 {
			return sign(first)
		}
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// compareDigits compares runs of digits as numbers of any length.
func compareDigits(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return sign(len(a) - len(b))
	}
	return strings.Compare(a, b)
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

type bound struct {
	op, version string
}

// Range is a set of version constraints that must all hold.
type Range struct {
	bounds []bound
}

var ops = []string{">=", "<=", "!=", ">", "<", "="}

// ParseRange reads constraints separated by commas or spaces: >=2.0,
// >2, <=3, <3, =2.5 (or a bare 2.5), !=2.6. Empty is any version.
func ParseRange(s string) (Range, error) {
	var r Range
	fields := strings.FieldsFunc(s, func(c rune) bool { return c == ',' || c == ' ' })
	if len(fields) > 8 {
		return r, fmt.Errorf("version range %q: at most 8 constraints", s)
	}
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		op := "="
		for _, o := range ops {
			if strings.HasPrefix(f, o) {
				op, f = o, f[len(o):]
				break
			}
		}
		if f == "" && i+1 < len(fields) { // ">= 2.0"
			i++
			f = fields[i]
		}
		if f == "" || strings.ContainsAny(f, "<>=!") || len(f) > 128 {
			return Range{}, fmt.Errorf("version range %q: want constraints such as >=2.0, <3 (operators >=, >, <=, <, =, !=)", s)
		}
		r.bounds = append(r.bounds, bound{op, f})
	}
	return r, nil
}

// Contains reports whether version v satisfies every constraint.
func (r Range) Contains(v string) bool {
	for _, b := range r.bounds {
		c := Compare(v, b.version)
		var ok bool
		switch b.op {
		case ">=":
			ok = c >= 0
		case ">":
			ok = c > 0
		case "<=":
			ok = c <= 0
		case "<":
			ok = c < 0
		case "=":
			ok = c == 0
		case "!=":
			ok = c != 0
		}
		if !ok {
			return false
		}
	}
	return true
}
