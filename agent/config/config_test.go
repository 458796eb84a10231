package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const fp = "8c7b0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4f69e"

func TestParseGoodFile(t *testing.T) {
	file := "\xef\xbb\xbf# Tally agent\r\n" + `
data        = /srv/tally-agent     # a comment after a space
server      = tally.example.com:4433
fingerprint = ` + fp + `
machine-id  = "golden # image"   # quotes keep the #
interval    = 30m
jitter      = 0.25
max-backoff = 5m
spool-max-bytes = 128 MiB
spool-max-age   = 7d12h
log-format  = json
	log-level = DEBUG
`
	a := Defaults()
	if err := Parse("agent.conf", []byte(file), &a); err != nil {
		t.Fatal(err)
	}
	want := Agent{Data: "/srv/tally-agent", Server: "tally.example.com:4433", Fingerprint: fp, MachineID: "golden # image",
		Interval: 30 * time.Minute, Jitter: 0.25, MaxBackoff: 5 * time.Minute, SpoolMaxBytes: 128 << 20,
		SpoolMaxAge: 180 * time.Hour, LogFormat: "json", LogLevel: "debug"}
	if a != want {
		t.Fatalf("got  %+v\nwant %+v", a, want)
	}
}

func TestEmptyFileKeepsDefaults(t *testing.T) {
	for _, f := range []string{"", "\n\n", "# only comments\n   # indented\n", "\xef\xbb\xbf"} {
		a := Defaults()
		if err := Parse("agent.conf", []byte(f), &a); err != nil || a != Defaults() {
			t.Errorf("%q: %+v %v", f, a, err)
		}
	}
}

func TestParseMistakes(t *testing.T) {
	cases := []struct {
		what, file, want string
	}{
		{"unknown key", "interval = 1h\n\n\n\n\n\nintervall = 2h\n", `agent.conf:7: unknown key "intervall" (known: data, server, fingerprint, machine-id, interval, jitter, max-backoff, spool-max-bytes, spool-max-age, log-format, log-level, plugins)`},
		{"bad duration", "\n\ninterval = 5x\n", `agent.conf:3: interval: "5x" is not a duration like 30m or 1h`},
		{"duration too short", "interval = 10ms", `agent.conf:1: interval: "10ms" is shorter than 1s`},
		{"negative duration", "max-backoff = -1m", `max-backoff: "-1m" is shorter than 1s`},
		{"bad days", "spool-max-age = xd", `spool-max-age: "xd" is not a duration like 30d or 72h`},
		{"age too short", "spool-max-age = 5m", `spool-max-age: "5m" is shorter than 1h0m0s`},
		{"huge days", "spool-max-age = 999999999999d", `spool-max-age: "999999999999d" is not a duration`},
		{"jitter above 1", "jitter = 1.5", `agent.conf:1: jitter: "1.5" is not a number from 0 to 1`},
		{"jitter not a number", "jitter = NaN", `jitter: "NaN" is not a number from 0 to 1`},
		{"bad size", "spool-max-bytes = 64XB", `agent.conf:1: spool-max-bytes: "64XB" is not a size like 64MiB or 1GiB`},
		{"fractional size", "spool-max-bytes = 1.5GiB", `is not a size like 64MiB`},
		{"size too small", "spool-max-bytes = 1000", `spool-max-bytes: "1000" is less than 1MiB`},
		{"size overflows", "spool-max-bytes = 99999999999TiB", `spool-max-bytes: "99999999999TiB" is too large`},
		{"bad server", "server = tally.example.com", `server: "tally.example.com" is not HOST:PORT`},
		{"server port 0", "server = h:0", `server: "h:0": "0" is not a port number`},
		{"server list with an empty address", "server = a:1,,b:2", `server: server address 2 of 3 in "a:1,,b:2" is empty`},
		{"server list with a bad port", "server = a:1,b:x", `server: server address 2: "b:x": "x" is not a port number`},
		{"server listed twice", "server = a:1, b:2, a:1", `server: server address a:1 is listed twice (1 and 3)`},
		{"bad fingerprint", "fingerprint = abc", `fingerprint: "abc" is not 64 hex digits`},
		{"relative data", "data = ./agent", `data: "./agent" is not an absolute path`},
		{"bad log format", "log-format = xml", `log-format: "xml" is not text or json`},
		{"bad log level", "log-level = loud", `log-level: "loud" is not debug, info, warn or error`},
		{"duplicate key", "interval = 1h\njitter = 0\ninterval = 2h\n", `agent.conf:3: interval: duplicate key (first set on line 1); keep one`},
		{"no equals sign", "interval 1h", `agent.conf:1: expected key = value, got "interval 1h"`},
		{"no key", "= 1h", `agent.conf:1: no key before =`},
		{"empty value", "interval =   # later", `agent.conf:1: interval: no value`},
		{"unclosed quote", `machine-id = "abc`, `machine-id: no closing "`},
		{"text after quotes", `machine-id = "abc" def`, `machine-id: unexpected "def" after the quoted value`},
		{"huge line", "machine-id = " + strings.Repeat("x", 5000), "agent.conf:1: line longer than 4096 bytes"},
		{"long machine-id", "machine-id = " + strings.Repeat("x", 300), "machine-id: longer than 256 bytes"},
		{"binary junk", "interval = 1h\n\x7fELF\x02\x01\x01\x00\x00", "agent.conf:2: control character U+007F; is this the right file?"},
		{"not UTF-8", "interval = 1h\xff\xfe", "agent.conf:1: not UTF-8 text"},
		{"NUL", "log-level = info\x00", "agent.conf:1: control character U+0000"},
		{"bad plug-in name", "plugins = inventory, Monitor", `plugins: plug-in name "Monitor" is not valid`},
		{"plug-in twice", "plugins = monitor monitor", "plugins: plug-in monitor is listed twice"},
		{"no plug-in", "plugins = ,,", `plugins: ",," names no plug-in`},
		{"too many plug-ins", "plugins = " + strings.Repeat("a,", 20) + strings.Repeat("b ", 20), "listed twice"},
	}
	for _, c := range cases {
		t.Run(c.what, func(t *testing.T) {
			a := Defaults()
			err := Parse("agent.conf", []byte(c.file), &a)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v\nwant it to contain %s", err, c.want)
			}
			var le *LineError
			if !errors.As(err, &le) || le.File != "agent.conf" || le.Line == 0 {
				t.Errorf("error %#v is not a *LineError naming the file and line", err)
			}
			if a != Defaults() {
				t.Errorf("a failed parse changed the settings: %+v", a)
			}
		})
	}
}

func TestParseReportsEveryMistakeUpToALimit(t *testing.T) {
	a := Defaults()
	err := Parse("agent.conf", []byte("interval = x\njitter = 7\nbogus = 1\n"), &a)
	if err == nil || strings.Count(err.Error(), "agent.conf:") != 3 {
		t.Fatalf("want three mistakes reported, got %v", err)
	}
	if !errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown key not found with errors.Is: %v", err)
	}
	junk := strings.Repeat("\x00\x01binary\n", 1000)
	err = Parse("agent.conf", []byte(junk), &a)
	if err == nil || strings.Count(err.Error(), "\n") > 12 || !strings.Contains(err.Error(), "too many mistakes") {
		t.Fatalf("a binary file should give a short error, got %d lines: %.300v", strings.Count(err.Error(), "\n"), err)
	}
}

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{
		"30m": 30 * time.Minute, "1h30m": 90 * time.Minute, "30d": 30 * 24 * time.Hour,
		"1d12h": 36 * time.Hour, "0d": 0, "2d30s": 48*time.Hour + 30*time.Second,
	}
	for in, want := range good {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "1.5d", "-1d", "1d-1h", "1w", "d1h", "1h1d", "106752d1h"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.conf")
	a, err := Load(missing, false, Defaults())
	if err != nil || a != Defaults() {
		t.Fatalf("missing default file: %+v %v; want the defaults", a, err)
	}
	if _, err := Load(missing, true, Defaults()); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing --config file: %v; want an error naming it", err)
	}
	p := filepath.Join(dir, "agent.conf")
	if err := os.WriteFile(p, []byte("interval = 2h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := Defaults()
	base.Data = "/from/the/environment"
	a, err = Load(p, false, base)
	if err != nil || a.Interval != 2*time.Hour || a.Data != "/from/the/environment" || a.File != p {
		t.Fatalf("load: %+v %v", a, err)
	}
	if err := os.WriteFile(p, []byte("interval = 2x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p, false, base); err == nil || !strings.HasPrefix(err.Error(), p+":1: interval:") {
		t.Fatalf("bad file: %v; want an error starting with %s:1: interval:", err, p)
	}
	big := filepath.Join(dir, "big.conf")
	if err := os.WriteFile(big, make([]byte, MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big, true, base); err == nil || !strings.Contains(err.Error(), "is it the right file?") {
		t.Fatalf("huge file: %v", err)
	}
	if _, err := Load(dir, true, base); err == nil {
		t.Fatal("a folder given as the file: no error")
	}
}

func TestSetNamesNothingButTheProblem(t *testing.T) {
	a := Defaults()
	if err := a.Set("interval", "5x"); err == nil || strings.Contains(err.Error(), "interval") {
		t.Fatalf("Set error %v: the caller names the key or flag", err)
	}
	if err := a.Set("nope", "1"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown key: %v", err)
	}
	for _, k := range Keys() {
		if _, ok := setters[k]; !ok {
			t.Errorf("key %s has no setter", k)
		}
	}
	if len(setters) != len(Keys()) {
		t.Errorf("%d setters for %d keys", len(setters), len(Keys()))
	}
}

func TestDefaultPath(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "ProgramData" {
				return v
			}
			return ""
		}
	}
	cases := []struct{ goos, programData, want string }{
		{"linux", "", "/etc/tally/agent.conf"},
		{"freebsd", "", "/etc/tally/agent.conf"},
		{"darwin", "", "/Library/Application Support/Tally/agent.conf"},
		{"windows", `D:\PD`, `D:\PD\Tally\agent.conf`},
		{"windows", `D:\PD\`, `D:\PD\Tally\agent.conf`},
		{"windows", "", `C:\ProgramData\Tally\agent.conf`},
	}
	for _, c := range cases {
		if got := defaultPath(c.goos, env(c.programData)); got != c.want {
			t.Errorf("%s with ProgramData=%q: %s, want %s", c.goos, c.programData, got, c.want)
		}
	}
}

// The commented example in docs/agent-config.md parses, and documents
// every key.
func TestDocumentedExampleParses(t *testing.T) {
	doc, err := os.ReadFile("../../docs/agent-config.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```conf\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/agent-config.md has no ```conf example")
	}
	a := Defaults()
	if err := Parse("example", []byte(example), &a); err != nil {
		t.Fatalf("the documented example does not parse: %v", err)
	}
	// Every key appears in the example, set or commented out.
	for _, k := range Keys() {
		if !strings.Contains(example, k+" ") || !strings.Contains(string(doc), "`"+k+"`") {
			t.Errorf("key %s is not documented in the example and the table", k)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("interval = 1h\njitter = 0.1 # c\nmachine-id = \"a # b\"\n"))
	f.Add([]byte("spool-max-bytes = 64MiB\nspool-max-age = 30d\n"))
	f.Add([]byte("\xef\xbb\xbf= \n\"\n#\nx=\"\"\"\n"))
	f.Add([]byte("server = [::1]:4433\r\nfingerprint = " + fp + "\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a := Defaults()
		err := Parse("fuzz.conf", data, &a)
		if err != nil {
			if a != Defaults() {
				t.Fatalf("failed parse changed the settings: %+v", a)
			}
			if !strings.HasPrefix(err.Error(), "fuzz.conf") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		// What parses is within the documented bounds.
		if a.Interval < time.Second || a.MaxBackoff < time.Second || a.SpoolMaxAge < time.Hour ||
			a.Jitter < 0 || a.Jitter > 1 || a.SpoolMaxBytes < 1<<20 {
			t.Fatalf("out-of-bounds settings accepted: %+v", a)
		}
	})
}

// Update sets keys in place, appends missing ones, keeps everything else,
// and refuses a result that does not parse.
func TestUpdate(t *testing.T) {
	file := "# mine\ninterval = 5m # short\nserver = old.example.com:1\n"
	got, err := Update("agent.conf", []byte(file), map[string]string{KeyServer: "new.example.com:4433", KeyPlugins: "inventory,monitor"})
	if err != nil {
		t.Fatal(err)
	}
	want := "# mine\ninterval = 5m # short\nserver = new.example.com:4433\nplugins = inventory,monitor\n"
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	a := Defaults()
	if err := Parse("agent.conf", got, &a); err != nil || a.Interval != 5*time.Minute || len(a.PluginList()) != 2 {
		t.Fatalf("%+v %v", a, err)
	}
	fresh, err := Update("agent.conf", nil, map[string]string{KeyFingerprint: fp})
	if err != nil || !strings.HasPrefix(string(fresh), "# Tally agent settings") || !strings.Contains(string(fresh), "fingerprint = "+fp) {
		t.Fatalf("new file: %v\n%s", err, fresh)
	}
	if _, err := Update("agent.conf", []byte(file), map[string]string{KeyServer: "no port"}); err == nil {
		t.Fatal("a bad value was written")
	}
	if _, err := Update("agent.conf", []byte("bogus = 1\n"), map[string]string{KeyServer: "h:1"}); err == nil {
		t.Fatal("a file with an unknown key was accepted")
	}
}

// The server key lists replicas in order of preference; the single-address
// form that every existing agent.conf has loads as a list of one.
func TestServerList(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"server = tally.example.com:4433", []string{"tally.example.com:4433"}},
		{"server = a.example.com:7443, b.example.com:7443 # two replicas", []string{"a.example.com:7443", "b.example.com:7443"}},
		{`server = "a:7443,[::1]:7443,c:1"`, []string{"a:7443", "[::1]:7443", "c:1"}},
	} {
		path := filepath.Join(dir, "agent.conf")
		if err := os.WriteFile(path, []byte("fingerprint = "+fp+"\n"+tc.line+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		a, err := Load(path, true, Defaults())
		if err != nil {
			t.Fatalf("%s: %v", tc.line, err)
		}
		if got := a.ServerList(); strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s: servers %q, want %q", tc.line, got, tc.want)
		}
	}
	if got := Defaults().ServerList(); got != nil {
		t.Errorf("no server key: %q", got)
	}
}
