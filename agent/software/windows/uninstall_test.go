package windows

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/tallyhq/tally/protocol"
)

// fixtureKey is one Uninstall key of testdata/uninstall.json (synthetic:
// see testdata/README.md).
type fixtureKey struct {
	Key    string `json:"key"`
	View   string `json:"view"` // "64", "32" or "user"
	Values map[string]struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	} `json:"values"`
	Want *protocol.Package `json:"want"`
	Why  string            `json:"why"`
}

func (k fixtureKey) values(t *testing.T) Values {
	v := Values{}
	for name, val := range k.Values {
		switch val.Type {
		case "REG_SZ", "REG_EXPAND_SZ":
			var s string
			if err := json.Unmarshal(val.Data, &s); err != nil {
				t.Fatal(err)
			}
			v[name] = s
		case "REG_DWORD", "REG_QWORD":
			var n uint64
			if err := json.Unmarshal(val.Data, &n); err != nil {
				t.Fatal(err)
			}
			v[name] = n
		default:
			t.Fatalf("%s: value type %s", k.Key, val.Type)
		}
	}
	return v
}

func TestProgramFixture(t *testing.T) {
	data, err := os.ReadFile("testdata/uninstall.json")
	if err != nil {
		t.Fatal(err)
	}
	var keys []fixtureKey
	if err := json.Unmarshal(data, &keys); err != nil {
		t.Fatal(err)
	}
	if len(keys) < 10 {
		t.Fatalf("%d keys", len(keys))
	}
	for _, k := range keys {
		arch := ""
		if k.View == "32" {
			arch = "x86"
		}
		p, ok := Program(k.values(t), arch)
		switch {
		case k.Want == nil && ok:
			t.Errorf("%s: listed %+v, want skipped (%s)", k.Key, p, k.Why)
		case k.Want != nil && !ok:
			t.Errorf("%s: skipped, want %+v", k.Key, *k.Want)
		case k.Want != nil && p != *k.Want:
			t.Errorf("%s:\n got %+v\nwant %+v (%s)", k.Key, p, *k.Want, k.Why)
		}
	}
}

func TestInstallDate(t *testing.T) {
	for in, want := range map[string]int64{
		"20240815": 1723680000,
		"19700101": 0, // before 1980: a placeholder
		"2024081":  0,
		"2024-8-1": 0,
		"20241301": 0,
		"abcdefgh": 0,
		"":         0,
	} {
		if got := installDate(in); got != want {
			t.Errorf("installDate(%q) = %d, want %d", in, got, want)
		}
	}
}
