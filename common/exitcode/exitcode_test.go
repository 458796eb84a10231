package exitcode

import (
	"bufio"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The README's "Exit codes" table lists exactly the codes of this package:
// a code added here without its row, or a row with no code, fails.
func TestREADMETableIsTheCodeTable(t *testing.T) {
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile(`^\| (\d+) \| (.+) \|$`)
	readme := map[int]string{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			in = strings.TrimLeft(line, "# ") == "Exit codes"
			continue
		}
		if m := row.FindStringSubmatch(line); in && m != nil {
			code, _ := strconv.Atoi(m[1])
			if _, dup := readme[code]; dup {
				t.Errorf("README lists exit code %d twice", code)
			}
			readme[code] = m[2]
		}
	}
	if len(readme) == 0 {
		t.Fatal(`README.md has no "Exit codes" section with a | code | meaning | table`)
	}
	code := map[int]bool{}
	for _, c := range All {
		code[c] = true
		if readme[c] == "" {
			t.Errorf("exit code %d is in package exitcode but not in the README's table", c)
		}
	}
	for c, meaning := range readme {
		if !code[c] {
			t.Errorf("the README's exit code %d (%s) is not in package exitcode", c, meaning)
		}
	}
}

func TestOfFindsAWrappedCode(t *testing.T) {
	err := New(Usage, os.ErrInvalid)
	if c, ok := Of(err); !ok || c != Usage {
		t.Fatalf("Of = %d %v", c, ok)
	}
	if _, ok := Of(os.ErrInvalid); ok {
		t.Fatal("a plain error has no code")
	}
}
