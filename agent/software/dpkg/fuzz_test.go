package dpkg

import (
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, name := range []string{
		"status/postgresql-small.status",
		"status.d/debian-misc/dash",
		"status.d/distroless-debian11-arm64/libsqlite3-0",
	} {
		f.Add(readFixture(f, name))
	}
	f.Add([]byte("Package: a\nVersion: 1\nSource: x (\nStatus: install ok installed\n"))
	f.Add([]byte("Package: a\n\x00\n:\n \n\r\n"))
	f.Add([]byte("Source: (((\nMaintainer: <<<>\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, skipped := Parse(data)
		for _, e := range entries {
			if e.Package == "" {
				t.Fatalf("entry without package: %+v", e)
			}
			_ = e.Installed()
			_ = e.Publisher()
		}
		_ = skipped
	})
}
