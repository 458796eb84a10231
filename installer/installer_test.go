package installer

import (
	"encoding/xml"
	"io/fs"
	"strings"
	"testing"
)

// The units start the binaries the way the README documents, and stop
// them with SIGTERM (clean shutdown); the launchd job is well-formed XML.
func TestServiceDefinitions(t *testing.T) {
	for path, want := range map[string][]string{
		"systemd/tally-server.service": {"ExecStart=/usr/bin/tally-server serve --data /var/lib/tally-server", "KillSignal=SIGTERM", "[Install]"},
		"systemd/tally-agent.service":  {"ExecStart=/usr/bin/tally-agent run --data /var/lib/tally-agent", "KillSignal=SIGTERM", "[Install]"},
	} {
		b, err := fs.ReadFile(Files, path)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s lacks %q", path, w)
			}
		}
	}
	b, err := fs.ReadFile(Files, "launchd/com.tallyhq.agent.plist")
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(strings.NewReader(string(b)))
	d.Strict = true
	for {
		if _, err := d.Token(); err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("launchd plist: %v", err)
		}
	}
}
