package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/server/cli"
	"github.com/tallyhq/tally/server/license"
)

// run runs tally-server's command line in-process at the given time, in
// an environment whose TZ is Europe/Paris.
func run(t *testing.T, now time.Time, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := map[string]string{"TZ": "Europe/Paris"}
	m := &cli.Main{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }, Clock: clock.NewManual(now)}
	code = m.Run(context.Background(), args)
	return out.String(), errOut.String(), code
}

func issuerKey(t *testing.T) (dir string, trusted license.Trusted) {
	t.Helper()
	dir = t.TempDir()
	if _, errOut, code := run(t, time.Now(), "issuer", "init", "--out", dir); code != 0 {
		t.Fatalf("issuer init: %s", errOut)
	}
	data, err := os.ReadFile(filepath.Join(dir, "issuer.pub"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := license.DecodePublicKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return dir, license.Trusted{license.IssuerID(pub): pub}
}

func parseFile(t *testing.T, path string, trusted license.Trusted) license.Payload {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := license.Parse(data, trusted)
	if err != nil {
		t.Fatal(err)
	}
	return f.Payload
}

// --expires and --upgrade-until name the last day covered, in --timezone:
// the license is valid through that whole day there, not until 00:00 UTC.
func TestLicenseIssueDatesAreTheEndOfTheDayInItsZone(t *testing.T) {
	dir, trusted := issuerKey(t)
	now := time.Date(2027, 1, 10, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		zone string
		want time.Time
	}{
		{"America/Los_Angeles", time.Date(2027, 7, 1, 6, 59, 59, 999999999, time.UTC)},
		{"Asia/Tokyo", time.Date(2027, 6, 30, 14, 59, 59, 999999999, time.UTC)},
	} {
		out := filepath.Join(t.TempDir(), "cad.lic")
		stdout, stderr, code := run(t, now, "license", "issue", "--key", filepath.Join(dir, "issuer.key"), "--product", "monitor", "--seats", "5",
			"--expires", "2027-06-30", "--upgrade-until", "2027-06-30", "--timezone", c.zone, "--out", out)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", c.zone, code, stderr)
		}
		if !strings.Contains(stdout, "dates are in "+c.zone) || !strings.Contains(stdout, "expires 2027-06-30") {
			t.Errorf("%s: output does not state the zone and the day:\n%s", c.zone, stdout)
		}
		p := parseFile(t, out, trusted)
		if !p.ExpiresAt().Equal(c.want) || !p.UpgradeUntilAt().Equal(c.want) {
			t.Errorf("%s: expires %v, upgrades until %v; want %v", c.zone, p.ExpiresAt(), p.UpgradeUntilAt(), c.want)
		}
	}
	// TZ is honoured when --timezone is not given.
	var out, errOut bytes.Buffer
	m := &cli.Main{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return map[string]string{"TZ": "Asia/Tokyo"}[k] }, Clock: clock.NewManual(now)}
	file := filepath.Join(t.TempDir(), "tz.lic")
	if code := m.Run(context.Background(), []string{"license", "issue", "--key", filepath.Join(dir, "issuer.key"), "--product", "monitor", "--seats", "5",
		"--expires", "2027-06-30", "--out", file}); code != 0 || !strings.Contains(out.String(), "Asia/Tokyo") {
		t.Fatalf("TZ=Asia/Tokyo: exit %d: %s%s", code, out.String(), errOut.String())
	}
	if p := parseFile(t, file, trusted); !p.ExpiresAt().Equal(time.Date(2027, 6, 30, 14, 59, 59, 999999999, time.UTC)) {
		t.Errorf("TZ=Asia/Tokyo: expires %v", p.ExpiresAt())
	}
}

// An expiry in the past is refused with a sentence and writes nothing; one
// within a day is issued with a warning on stderr. Seats outside 1..10,000,000
// are refused instead of wrapping around (4294967297 was once 1 seat).
func TestLicenseIssueRefusesBadInput(t *testing.T) {
	dir, trusted := issuerKey(t)
	paris, _ := time.LoadLocation("Europe/Paris")
	now := time.Date(2027, 6, 30, 18, 0, 0, 0, paris)
	key := filepath.Join(dir, "issuer.key")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--seats", "5", "--expires", "2027-06-29"}, "in the past"},
		{[]string{"--seats", "4294967297"}, "between 1 and 10,000,000 seats"},
		{[]string{"--seats", "-3"}, "between 1 and 10,000,000 seats"},
		{[]string{"--seats", "10000001"}, "between 1 and 10,000,000 seats"},
		{[]string{"--seats", "5", "--timezone", "Mars/Olympus_Mons"}, "unknown time zone"},
		{[]string{"--seats", "5", "--expires", "30/06/2027"}, "not a date like 2027-06-30"},
	} {
		out := filepath.Join(t.TempDir(), "x.lic")
		args := append([]string{"license", "issue", "--key", key, "--product", "monitor", "--out", out}, c.args...)
		_, stderr, code := run(t, now, args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %q; want a refusal saying %q", c.args, code, stderr, c.want)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%v: refused but wrote the file", c.args)
		}
	}
	out := filepath.Join(t.TempDir(), "today.lic")
	_, stderr, code := run(t, now, "license", "issue", "--key", key, "--product", "monitor", "--seats", "5",
		"--expires", "2027-06-30", "--out", out)
	if code != 0 || !strings.Contains(stderr, "warning: the license expires within a day") {
		t.Fatalf("expiry today: exit %d, stderr %q; want a warning and the file", code, stderr)
	}
	if p := parseFile(t, out, trusted); p.Seats != 5 {
		t.Fatalf("seats %d", p.Seats)
	}
}

// Every list has --json, the issuers too.
func TestIssuerListJSON(t *testing.T) {
	dir, trusted := issuerKey(t)
	data := t.TempDir()
	if _, stderr, code := run(t, time.Now(), "issuer", "trust", filepath.Join(dir, "issuer.pub"), "--data", data); code != 0 {
		t.Fatal(stderr)
	}
	stdout, stderr, code := run(t, time.Now(), "issuer", "list", "--json", "--data", data)
	if code != 0 {
		t.Fatalf("issuer list --json: exit %d: %s", code, stderr)
	}
	var got []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || len(got) != 1 {
		t.Fatalf("issuer list --json: %q %v", stdout, err)
	}
	for id := range trusted {
		if got[0].ID != id {
			t.Fatalf("issuer %s, want %s", got[0].ID, id)
		}
	}
}
