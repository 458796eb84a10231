// Package config provides the agent's settings: the defaults, the
// configuration file (agent.conf, one "key = value" per line) and the rules
// that merge them with the command line: defaults first, then the file,
// then the flags the user set. docs/agent-config.md documents every key.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tallyhq/tally/agent/spool"
	"github.com/tallyhq/tally/common/addrlist"
	"github.com/tallyhq/tally/common/bytesize"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
)

// Keys of the file; each is also the name of the flag that overrides it.
const (
	KeyData          = "data"
	KeyServer        = "server"
	KeyFingerprint   = "fingerprint"
	KeyMachineID     = "machine-id"
	KeyInterval      = "interval"
	KeyJitter        = "jitter"
	KeyMaxBackoff    = "max-backoff"
	KeySpoolMaxBytes = "spool-max-bytes"
	KeySpoolMaxAge   = "spool-max-age"
	KeyLogFormat     = "log-format"
	KeyLogLevel      = "log-level"
	KeyPlugins       = "plugins"
)

// DefaultDataDir is the agent's data folder when nothing else names one.
const DefaultDataDir = "/var/lib/tally-agent"

// Agent holds the agent's settings.
type Agent struct {
	Data string // data folder
	// Server is the server's address, HOST:PORT, for enroll and install;
	// several replicas are listed in order of preference, kept as the
	// normalized list "a:7443,b:7443" so that settings compare with ==
	// (ServerList splits it).
	Server        string
	Fingerprint   string        // the server's pinned fingerprint, for enroll
	MachineID     string        // identity override instead of hardware hints
	Interval      time.Duration // between inventory posts
	Jitter        float64       // fraction of Interval added at random
	MaxBackoff    time.Duration // longest wait between attempts to reach the server
	SpoolMaxBytes int64
	SpoolMaxAge   time.Duration
	LogFormat     string // text or json
	LogLevel      string // debug, info, warn or error
	// Plugins are the plug-ins 'run' and 'install' make sure are
	// installed, so that one file rolls a fleet out; removing a name does
	// not remove the plug-in ('tally-agent plugin remove' does, and tells
	// the server, which frees its seat). Kept as the normalized list
	// "inventory,monitor" so that settings compare with ==; PluginList
	// splits it.
	Plugins string
	// File is the configuration file that was read; empty if none was.
	File string
}

// Defaults returns the settings before any file or flag.
func Defaults() Agent {
	return Agent{
		Data:          DefaultDataDir,
		Interval:      time.Hour,
		Jitter:        0.1,
		MaxBackoff:    10 * time.Minute,
		SpoolMaxBytes: spool.DefaultMaxBytes,
		SpoolMaxAge:   spool.DefaultMaxAge,
		LogFormat:     "text",
		LogLevel:      "info",
	}
}

// DefaultPath is where the agent looks for its file when --config is not
// given: /etc/tally/agent.conf, %ProgramData%\Tally\agent.conf on Windows,
// /Library/Application Support/Tally/agent.conf on macOS.
func DefaultPath() string { return defaultPath(runtime.GOOS, os.Getenv) }

func defaultPath(goos string, getenv func(string) string) string {
	switch goos {
	case "windows":
		pd := getenv("ProgramData")
		if pd == "" {
			pd = `C:\ProgramData`
		}
		return strings.TrimRight(pd, `\/`) + `\Tally\agent.conf`
	case "darwin":
		return "/Library/Application Support/Tally/agent.conf"
	default:
		return "/etc/tally/agent.conf"
	}
}

// Limits on the file, so that pointing --config at the wrong file (a log,
// a binary) fails at once with a clear message.
const (
	MaxFileSize = 1 << 20
	MaxLine     = 4096
	maxErrors   = 10
)

// Load reads the file at path over defaults. A missing file is fine
// unless explicit says the user named it (--config).
func Load(path string, explicit bool, defaults Agent) (Agent, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return defaults, nil
	}
	if err != nil {
		return defaults, fmt.Errorf("configuration file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return defaults, fmt.Errorf("configuration file %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return defaults, fmt.Errorf("configuration file %s: larger than %d bytes; is it the right file?", path, MaxFileSize)
	}
	a := defaults
	if err := Parse(path, data, &a); err != nil {
		return defaults, err
	}
	a.File = path
	return a, nil
}

// LineError is a mistake on one line of the file.
type LineError struct {
	File string
	Line int
	Key  string // empty when the line has no key
	Err  error
}

func (e *LineError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s:%d: %s: %v", e.File, e.Line, e.Key, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// ErrUnknownKey is wrapped by the errors of keys the agent does not know.
var ErrUnknownKey = errors.New("unknown key")

// Parse applies the settings in data, the content of the file called name,
// to a. It reports every mistake (up to ten), each as a *LineError naming
// the file, the line and the key; on error a is left as it was.
//
// The format: one "key = value" per line; blank lines and lines starting
// with # are ignored, and so is the rest of a line after a # that follows
// a space. A value may be put in double quotes to keep a # or leading
// spaces. A key may appear once.
func Parse(name string, data []byte, a *Agent) error {
	out := *a
	var errs []error
	fail := func(line int, key string, err error) {
		errs = append(errs, &LineError{File: name, Line: line, Key: key, Err: err})
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a byte-order mark, as Notepad writes
	seen := map[string]int{}
	for i, raw := range bytes.Split(data, []byte("\n")) {
		if len(errs) >= maxErrors {
			errs = append(errs, fmt.Errorf("%s: too many mistakes; stopped reading", name))
			break
		}
		n := i + 1
		raw = bytes.TrimSuffix(raw, []byte("\r"))
		if len(raw) > MaxLine {
			fail(n, "", fmt.Errorf("line longer than %d bytes", MaxLine))
			continue
		}
		if err := checkText(raw); err != nil {
			fail(n, "", err)
			continue
		}
		key, value, ok, err := splitLine(string(raw))
		if err != nil {
			fail(n, key, err)
			continue
		}
		if !ok {
			continue
		}
		if _, known := setters[key]; !known {
			fail(n, "", fmt.Errorf("%w %q (known: %s)", ErrUnknownKey, key, strings.Join(Keys(), ", ")))
			continue
		}
		if first, dup := seen[key]; dup {
			fail(n, key, fmt.Errorf("duplicate key (first set on line %d); keep one", first))
			continue
		}
		seen[key] = n
		if key == KeyData && !filepath.IsAbs(value) {
			fail(n, key, fmt.Errorf("%q is not an absolute path", value))
			continue
		}
		if err := out.Set(key, value); err != nil {
			fail(n, key, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	*a = out
	return nil
}

// checkText refuses what no one types into a configuration file: bytes
// that are not UTF-8 and control characters other than tab.
func checkText(b []byte) error {
	if !utf8.Valid(b) {
		return errors.New("not UTF-8 text; is this the right file?")
	}
	for _, r := range string(b) {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return fmt.Errorf("control character %U; is this the right file?", r)
		}
	}
	return nil
}

// splitLine splits "key = value # comment"; ok is false for a blank or
// comment line.
func splitLine(line string) (key, value string, ok bool, err error) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return "", "", false, nil
	}
	k, rest, found := strings.Cut(line, "=")
	key = strings.TrimSpace(k)
	if !found {
		return "", "", false, fmt.Errorf("expected key = value, got %q", truncate(line))
	}
	if key == "" {
		return "", "", false, errors.New("no key before =")
	}
	if strings.ContainsAny(key, " \t") {
		return "", "", false, fmt.Errorf("expected key = value, got %q", truncate(line))
	}
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, `"`) {
		end := strings.IndexByte(rest[1:], '"')
		if end < 0 {
			return key, "", false, errors.New("no closing \" for the quoted value")
		}
		value = rest[1 : 1+end]
		if after := strings.TrimSpace(rest[2+end:]); after != "" && after[0] != '#' {
			return key, "", false, fmt.Errorf("unexpected %q after the quoted value", truncate(after))
		}
	} else {
		value = rest
		for i := 0; i < len(rest); i++ {
			if rest[i] == '#' && (i == 0 || rest[i-1] == ' ' || rest[i-1] == '\t') {
				value = strings.TrimSpace(rest[:i])
				break
			}
		}
	}
	if value == "" {
		return key, "", false, errors.New("no value (remove the line to keep the default)")
	}
	return key, value, true, nil
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

var setters = map[string]func(a *Agent, v string) error{
	KeyData: func(a *Agent, v string) error {
		a.Data = v
		return nil
	},
	KeyServer: func(a *Agent, v string) error {
		list, err := addrlist.Parse(v)
		if err != nil {
			return err
		}
		a.Server = addrlist.Join(list)
		return nil
	},
	KeyFingerprint: func(a *Agent, v string) error {
		if _, err := identity.ParseFingerprint(v); err != nil {
			return fmt.Errorf("%q is not 64 hex digits (the SHA-256 that 'tally-server enroll-info' prints)", v)
		}
		a.Fingerprint = v
		return nil
	},
	KeyMachineID: func(a *Agent, v string) error {
		if len(v) > 256 {
			return errors.New("longer than 256 bytes")
		}
		a.MachineID = v
		return nil
	},
	KeyInterval: func(a *Agent, v string) (err error) {
		a.Interval, err = duration(v, "30m or 1h", time.Second)
		return err
	},
	KeyJitter: func(a *Agent, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f >= 0 && f <= 1) {
			return fmt.Errorf("%q is not a number from 0 to 1 (like 0.1, for up to 10%% of the interval)", v)
		}
		a.Jitter = f
		return nil
	},
	KeyMaxBackoff: func(a *Agent, v string) (err error) {
		a.MaxBackoff, err = duration(v, "10m or 1h", time.Second)
		return err
	},
	KeySpoolMaxBytes: func(a *Agent, v string) error {
		n, err := bytesize.Parse(v)
		if err != nil {
			return err
		}
		if n < 1<<20 {
			return fmt.Errorf("%q is less than 1MiB", v)
		}
		a.SpoolMaxBytes = n
		return nil
	},
	KeySpoolMaxAge: func(a *Agent, v string) (err error) {
		a.SpoolMaxAge, err = duration(v, "30d or 72h", time.Hour)
		return err
	},
	KeyLogFormat: func(a *Agent, v string) error {
		if v != "text" && v != "json" {
			return fmt.Errorf("%q is not text or json", v)
		}
		a.LogFormat = v
		return nil
	},
	KeyPlugins: func(a *Agent, v string) error {
		ps, err := ParsePlugins(v)
		if err != nil {
			return err
		}
		a.Plugins = strings.Join(ps, ",")
		return nil
	},
	KeyLogLevel: func(a *Agent, v string) error {
		switch l := strings.ToLower(v); l {
		case "debug", "info", "warn", "error":
			a.LogLevel = l
			return nil
		}
		return fmt.Errorf("%q is not debug, info, warn or error", v)
	},
}

// Keys lists the known keys in the order docs/agent-config.md gives them.
func Keys() []string {
	return []string{KeyData, KeyServer, KeyFingerprint, KeyMachineID, KeyInterval, KeyJitter,
		KeyMaxBackoff, KeySpoolMaxBytes, KeySpoolMaxAge, KeyLogFormat, KeyLogLevel, KeyPlugins}
}

// ServerList returns the server addresses the settings list, in order of
// preference.
func (a Agent) ServerList() []string {
	if a.Server == "" {
		return nil
	}
	return strings.Split(a.Server, ",")
}

// PluginList returns the plug-ins the settings list.
func (a Agent) PluginList() []string {
	if a.Plugins == "" {
		return nil
	}
	return strings.Split(a.Plugins, ",")
}

// MaxPlugins bounds the plugins list: a build has a handful.
const MaxPlugins = 32

// ParsePlugins reads a list of plug-in names separated by commas or
// spaces ("inventory, monitor"), without duplicates; whether this build
// has each is for the caller to say.
func ParsePlugins(v string) ([]string, error) {
	var out []string
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if err := (&protocol.Plugin{Name: f}).Validate(); err != nil {
			return nil, err
		}
		if slices.Contains(out, f) {
			return nil, fmt.Errorf("plug-in %s is listed twice", f)
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%q names no plug-in (like inventory, monitor)", v)
	}
	if len(out) > MaxPlugins {
		return nil, fmt.Errorf("more than %d plug-ins listed", MaxPlugins)
	}
	return out, nil
}

// Set checks value and sets key to it. Its errors do not name the key:
// callers say where the value came from (a file line, a flag).
func (a *Agent) Set(key, value string) error {
	set, ok := setters[key]
	if !ok {
		return fmt.Errorf("%w %q (known: %s)", ErrUnknownKey, key, strings.Join(Keys(), ", "))
	}
	return set(a, strings.TrimSpace(value))
}

// ParseDuration reads a Go duration ("90s", "1h30m") or a number of days
// ("30d"), optionally followed by a Go duration ("1d12h").
func ParseDuration(s string) (time.Duration, error) {
	var days time.Duration
	rest := s
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseUint(s[:i], 10, 64)
		if err != nil || n > math.MaxInt64/uint64(24*time.Hour) {
			return 0, fmt.Errorf("bad number of days in %q", s)
		}
		days, rest = time.Duration(n)*24*time.Hour, s[i+1:]
		if rest == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(rest)
	if err != nil {
		return 0, err
	}
	if d < 0 && days > 0 {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	if d > math.MaxInt64-days {
		return 0, fmt.Errorf("%q is too long", s)
	}
	return days + d, nil
}

func duration(v, example string, least time.Duration) (time.Duration, error) {
	d, err := ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration like %s", v, example)
	}
	if d < least {
		return 0, fmt.Errorf("%q is shorter than %s", v, least)
	}
	return d, nil
}
