package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/server/cli"
	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

// adminStdout runs an admin command against a running test server and
// returns its standard output alone (what a script would capture).
func adminStdout(t *testing.T, srv *servertest.Server, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	m := &cli.Main{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
	args = append(args, "--admin-url", srv.Addresses().AdminURL, "--token", srv.Identity().Token)
	if code := m.Run(context.Background(), args); code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, errOut.String())
	}
	return out.String()
}

func inZone(name string) servertest.Option {
	return func(c *daemon.Config) { c.TimeZone = name }
}

// A license that expires in 14 days is not just "valid": license list,
// usage, maintenance run, the console and the API's JSON say how near
// each end is (licenses, upgrade protection, Activation IDs), in calendar
// days of the server's time zone, and say it again once it has passed.
func TestExpiryIsShownToAdmins(t *testing.T) {
	paris, _ := time.LoadLocation("Europe/Paris")
	clk := clock.NewManual(time.Date(2027, 6, 16, 10, 0, 0, 0, paris))
	srv := servertest.New(t, servertest.WithClock(clk), inZone("Europe/Paris"))
	iss := srv.TrustNewIssuer(t)
	day := func(s string) int64 {
		e, err := license.ParseEndDate(s, paris)
		if err != nil {
			t.Fatal(err)
		}
		return e.Unix()
	}
	lic := func(id, product, kind, expires, upgrade string) {
		p := license.Payload{ID: id, Product: product, Seats: 5, Kind: kind, Zone: "Europe/Paris", IssuedAt: clk.Now().Unix()}
		if expires != "" {
			p.Expires = day(expires)
		}
		if upgrade != "" {
			p.UpgradeUntil = day(upgrade)
		}
		srv.ImportLicense(t, iss, p)
	}
	lic("L-soon", "monitor", license.KindNode, "2027-06-30", "")
	lic("L-upgrades", "monitor", license.KindNode, "", "2027-06-26")
	lic("L-today", "inventory", license.KindNode, "2027-06-16", "")
	lic("L-later", "patch", license.KindNode, "2027-12-31", "")
	lic("L-locked", "monitor", license.KindNodeLocked, "", "")
	act := strings.TrimSpace(adminStdout(t, srv, "activation", "create", "--product", "monitor", "--quantity", "2", "--expires", "2027-07-01"))

	list := adminStdout(t, srv, "license", "list")
	for _, want := range []string{"expires in 14 days", "expires today", "upgrade protection ends in 10 days"} {
		if !strings.Contains(list, want) {
			t.Errorf("license list does not say %q:\n%s", want, list)
		}
	}
	if row := line(list, "L-later"); !strings.Contains(row, "2027-12-31") || !strings.HasSuffix(strings.TrimSpace(row), "valid") {
		t.Errorf("a license ending in six months: %q", row)
	}
	var ls []store.License
	if err := json.Unmarshal([]byte(adminStdout(t, srv, "license", "list", "--json")), &ls); err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.ID == "L-soon" && (l.ExpiryState != license.StateExpiring || l.DaysLeft == nil || *l.DaysLeft != 14 || l.Expiry != "expires in 14 days" ||
			l.ExpiresAt == nil || l.ExpiresAt.Format(time.RFC3339) != "2027-06-30T23:59:59+02:00") {
			t.Errorf("license list --json, L-soon: %+v (expires %v)", l.EndDates, l.ExpiresAt)
		}
	}

	usage := adminStdout(t, srv, "usage")
	if !strings.Contains(line(usage, "monitor "), "expires in 14 days") || !strings.Contains(line(usage, "inventory "), "expires today") {
		t.Errorf("usage does not say what expires:\n%s", usage)
	}
	var us []store.Usage
	if err := json.Unmarshal([]byte(adminStdout(t, srv, "usage", "--json")), &us); err != nil {
		t.Fatal(err)
	}
	for _, u := range us {
		if u.Product == "patch" && u.Expires != "" {
			t.Errorf("usage --json: patch ends in six months but says %q", u.Expires)
		}
	}

	acts := adminStdout(t, srv, "activation", "list")
	if !strings.Contains(line(acts, act), "2027-07-01 (expires in 15 days)") {
		t.Errorf("activation list:\n%s", acts)
	}
	a, err := srv.Admin.Activation(context.Background(), act)
	if err != nil || a.ExpiresAt == nil || !a.ExpiresAt.Equal(time.Date(2027, 7, 1, 23, 59, 59, 999_000_000, paris)) {
		t.Errorf("activation %s expires %v (%v), want the end of 2027-07-01 in Paris", act, a.ExpiresAt, err)
	}

	maint := adminStdout(t, srv, "maintenance", "run")
	for _, want := range []string{"L-soon", "L-today", "L-upgrades", act, "upgrade protection ends in 10 days"} {
		if !strings.Contains(maint, want) {
			t.Errorf("maintenance run does not list %s:\n%s", want, maint)
		}
	}
	if strings.Contains(maint, "L-later") {
		t.Errorf("maintenance run lists a license ending in six months:\n%s", maint)
	}

	page := consolePage(t, srv, "/licenses") + consolePage(t, srv, "/activations")
	for _, want := range []string{"expires in 14 days", "expires today", "upgrade protection ends in 10 days", "expires in 15 days", "Europe/Paris"} {
		if !strings.Contains(page, want) {
			t.Errorf("the console's license page does not say %q", want)
		}
	}

	clk.Advance(20 * 24 * time.Hour) // 2027-07-06
	list = adminStdout(t, srv, "license", "list")
	if !strings.Contains(line(list, "L-soon"), "expired 6 days ago") || !strings.Contains(line(list, "L-today"), "expired 20 days ago") {
		t.Errorf("after the end:\n%s", list)
	}
}

func line(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, prefix) {
			return l
		}
	}
	return ""
}

func consolePage(t *testing.T, srv *servertest.Server, path string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar}
	base := srv.Addresses().AdminURL
	resp, err := cl.PostForm(base+"/login", url.Values{"token": {srv.Identity().Token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = cl.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// An unknown --timezone stops serve with a sentence before anything is
// created; a bad --expiry-warning too.
func TestServeRefusesAnUnknownTimeZone(t *testing.T) {
	for _, c := range []struct{ flag, value, want string }{
		{"--timezone", "Mars/Olympus_Mons", "unknown time zone"},
		{"--expiry-warning", "soon", "not a window like 30d"},
	} {
		data := filepath.Join(t.TempDir(), "new")
		_, stderr, code := run(t, time.Now(), "serve", "--data", data, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", c.flag, c.value)
		if code == 0 || !strings.Contains(stderr, c.flag) || !strings.Contains(stderr, c.want) {
			t.Errorf("serve %s %s: exit %d, %q", c.flag, c.value, code, stderr)
		}
		if _, err := os.Stat(data); !os.IsNotExist(err) {
			t.Errorf("serve %s %s failed but created its data folder", c.flag, c.value)
		}
	}
}

// The CLI shows times in the server's time zone, as the server names it,
// whatever the zone of the host the command runs on.
func TestTimesAreShownInTheServersZone(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	srv := servertest.New(t, servertest.WithClock(clk), inZone("Asia/Tokyo"))
	if out := adminStdout(t, srv, "events"); !strings.Contains(out, "2026-12-06 21:00:00") {
		t.Fatalf("events at 12:00 UTC are not shown at 21:00 in Tokyo:\n%s", out)
	}
	if out := adminStdout(t, srv, "secrets", "list"); !strings.Contains(out, "2026-12-06 21:00:00") {
		t.Fatalf("the secret created at 12:00 UTC is not shown at 21:00 in Tokyo:\n%s", out)
	}
}
