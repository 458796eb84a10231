package apk

import "testing"

func FuzzParse(f *testing.F) {
	f.Add(fixture(f))
	f.Add([]byte("P:a\nV:1\nt:99999999999999999999999\n\n\n"))
	f.Add([]byte("P:\nV:\n\x00:\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, _ := Parse(data)
		for _, e := range entries {
			if e.Name == "" || e.Version == "" {
				t.Fatalf("incomplete entry %+v", e)
			}
			_ = e.Publisher()
		}
	})
}
