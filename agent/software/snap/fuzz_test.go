package snap

import "testing"

func FuzzParseYAML(f *testing.F) {
	f.Add(readFile(f, "core-snap.yaml"))
	f.Add(readFile(f, "pc-gadget-manifest.yaml"))
	f.Add([]byte("name: \"\\\narchitectures: [\nversion: '\n"))
	f.Add([]byte("architectures:\n-\n- -\n  - ''\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseYAML(data)
		if err == nil && m.Name == "" {
			t.Fatal("no name accepted")
		}
	})
}

func FuzzParseAPI(f *testing.F) {
	f.Add(readFile(f, "snapd-api-v2-snaps.json"))
	f.Add([]byte(`{"type":"sync","result":[{"name":"a","install-date":"x"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseAPI(data)
	})
}
