package config

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// header starts a file that Update creates.
const header = `# Tally agent settings (docs/agent-config.md lists every key).
# Written by 'tally-agent install'; edits to other keys are kept when it runs again.
`

// Update returns the file data with each key of set given its value: a
// line that sets the key is replaced, a key the file lacks is appended,
// and every other line (comments, other keys) is kept as it was. The
// result must parse, or nothing is returned. Empty data starts a new file.
func Update(name string, data []byte, set map[string]string) ([]byte, error) {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return slices.Index(Keys(), a) - slices.Index(Keys(), b) })
	var out bytes.Buffer
	if len(bytes.TrimSpace(data)) == 0 {
		out.WriteString(header)
		data = nil
	}
	done := map[string]bool{}
	if len(data) > 0 {
		lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
		for _, raw := range lines {
			key, _, ok, _ := splitLine(string(bytes.TrimSuffix(raw, []byte("\r"))))
			if v, mine := set[key]; ok && mine {
				if !done[key] {
					fmt.Fprintf(&out, "%s = %s\n", key, quote(v))
					done[key] = true
				}
				continue
			}
			out.Write(raw)
			out.WriteByte('\n')
		}
	}
	for _, k := range keys {
		if !done[k] {
			fmt.Fprintf(&out, "%s = %s\n", k, quote(set[k]))
		}
	}
	a := Defaults()
	if err := Parse(name, out.Bytes(), &a); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// quote puts a value in double quotes when a # or surrounding spaces
// would otherwise be lost.
func quote(v string) string {
	if strings.Contains(v, "#") || strings.TrimSpace(v) != v {
		return `"` + v + `"`
	}
	return v
}
