package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/agent/config"
	"github.com/tallyhq/tally/common/exitcode"
)

func writeConf(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.conf")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func env(kv ...string) func(string) string {
	return func(k string) string {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == k {
				return kv[i+1]
			}
		}
		return ""
	}
}

// settingsFor parses args as the named command would and merges them.
func settingsFor(t *testing.T, m *Main, command string, args ...string) (config.Agent, error) {
	t.Helper()
	var cmd *cobra.Command
	switch command {
	case "run":
		cmd = m.runCmd()
	case "enroll":
		cmd = m.enrollCmd()
	case "status":
		cmd = m.statusCmd()
	case "inventory":
		cmd = m.inventoryCmd()
	}
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	return m.settings(cmd)
}

func TestSettingsPrecedence(t *testing.T) {
	conf := writeConf(t, "data = /from/file\ninterval = 30m\njitter = 0.5\nspool-max-bytes = 2MiB\nlog-level = warn\n")
	m := &Main{Getenv: env("TALLY_AGENT_DATA", "/from/env"), ConfigFile: filepath.Join(t.TempDir(), "absent.conf")}

	// No file: defaults, with the environment's data folder.
	a, err := settingsFor(t, m, "run")
	if err != nil || a.Data != "/from/env" || a.Interval != time.Hour || a.File != "" {
		t.Fatalf("defaults: %+v %v", a, err)
	}
	// The file over the defaults and the environment.
	a, err = settingsFor(t, m, "run", "--config", conf)
	if err != nil || a.Data != "/from/file" || a.Interval != 30*time.Minute || a.Jitter != 0.5 ||
		a.SpoolMaxBytes != 2<<20 || a.LogLevel != "warn" || a.MaxBackoff != 10*time.Minute || a.File != conf {
		t.Fatalf("file: %+v %v", a, err)
	}
	// Flags given over the file; flags not given leave it alone, even
	// when their default differs from the file's value.
	a, err = settingsFor(t, m, "run", "--config", conf, "--interval", "5m", "--data", "/from/flag", "--spool-max-age", "2d", "--log-level", "debug")
	if err != nil || a.Data != "/from/flag" || a.Interval != 5*time.Minute || a.Jitter != 0.5 ||
		a.SpoolMaxAge != 48*time.Hour || a.LogLevel != "debug" {
		t.Fatalf("flags: %+v %v", a, err)
	}
	// The default file is read when it exists.
	m.ConfigFile = conf
	if a, err = settingsFor(t, m, "status"); err != nil || a.Data != "/from/file" {
		t.Fatalf("default file: %+v %v", a, err)
	}
}

func TestSettingsEnrollTakesServerFromTheFile(t *testing.T) {
	fp := strings.Repeat("ab", 32)
	m := &Main{Getenv: env(), ConfigFile: writeConf(t, "server = tally.example.com:4433\nfingerprint = "+fp+"\nmachine-id = golden\n")}
	a, err := settingsFor(t, m, "enroll", "--secret", "s")
	if err != nil || a.Server != "tally.example.com:4433" || a.Fingerprint != fp || a.MachineID != "golden" {
		t.Fatalf("%+v %v", a, err)
	}
	a, err = settingsFor(t, m, "enroll", "--server", "other:1", "--machine-id", "m2")
	if err != nil || a.Server != "other:1" || a.Fingerprint != fp || a.MachineID != "m2" {
		t.Fatalf("flags over the file: %+v %v", a, err)
	}
}

func TestSettingsMistakesAreUsageErrors(t *testing.T) {
	m := &Main{Getenv: env(), ConfigFile: filepath.Join(t.TempDir(), "absent.conf")}
	bad := writeConf(t, "# agent\n\ninterval = 5x\n")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--config", bad}, bad + `:3: interval: "5x" is not a duration like 30m or 1h`},
		{[]string{"--config", filepath.Join(t.TempDir(), "missing.conf")}, "missing.conf: no such file"},
		{[]string{"--jitter", "5"}, `--jitter: "5" is not a number from 0 to 1`},
		{[]string{"--spool-max-bytes", "lots"}, `--spool-max-bytes: "lots" is not a size like 64MiB or 1GiB`},
	}
	for _, c := range cases {
		_, err := settingsFor(t, m, "run", c.args...)
		if code, ok := exitcode.Of(err); !ok || code != ExitUsage || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v; want exit %d and %q", c.args, err, ExitUsage, c.want)
		}
	}
}

// The whole command: a bad file stops it before it touches anything, with
// the file, line and key in the message and exit code 2.
func TestBadConfigFileStopsEveryCommand(t *testing.T) {
	conf := writeConf(t, "intervall = 2h\n")
	data := filepath.Join(t.TempDir(), "agent")
	for _, args := range [][]string{
		{"run", "--once"}, {"status"}, {"inventory"}, {"enroll", "--server", "h:1", "--fingerprint", strings.Repeat("ab", 32), "--secret", "s"},
	} {
		var out bytes.Buffer
		m := &Main{Stdout: &out, Stderr: &out, Getenv: env(), ConfigFile: conf}
		code := m.Run(context.Background(), append(args, "--data", data))
		if code != ExitUsage || !strings.Contains(out.String(), conf+`:1: unknown key "intervall" (known: data, server,`) {
			t.Errorf("%v: exit %d, %q", args, code, out.String())
		}
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a command with a bad configuration created the data folder: %v", err)
	}
}

func TestStatusReadsTheDataFolderFromTheFile(t *testing.T) {
	data := filepath.Join(t.TempDir(), "agent")
	conf := writeConf(t, "data = "+data+"\n")
	var out bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &out, Getenv: env("TALLY_AGENT_DATA", filepath.Join(t.TempDir(), "not-this"))}
	if code := m.Run(context.Background(), []string{"status", "--config", conf}); code != ExitRefused || !strings.Contains(out.String(), "(no data folder "+data+")") {
		t.Fatalf("status did not use the file's data folder: %d %s", code, out.String())
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("status created the data folder: %v", err)
	}
}
