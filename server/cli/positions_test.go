package cli_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/common/exitcode"
	"github.com/tallyhq/tally/server/cli"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

// posRun runs an admin command and returns its exit code and outputs.
func posRun(srv *servertest.Server, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	m := &cli.Main{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
	args = append(args, "--admin-url", srv.Addresses().AdminURL, "--token", srv.Identity().Token)
	code := m.Run(context.Background(), args)
	return code, out.String(), errOut.String()
}

func csvRows(t *testing.T, s string) [][]string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(s)).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v\n%s", err, s)
	}
	return rows
}

// The README's worked example, from 'applications add' to 'report expiry
// --within 30d', and the bad input each command refuses without
// changing anything.
func TestPositionsWorkedExample(t *testing.T) {
	clk := clock.NewManual(time.Date(2027, 3, 1, 10, 0, 0, 0, time.UTC))
	srv := servertest.New(t, servertest.WithClock(clk), inZone("UTC"))
	ok := func(args ...string) string {
		t.Helper()
		return adminStdout(t, srv, args...)
	}
	ok("applications", "add", "CAD Pro", "--package", "cadpro*", "--versions", ">=2024", "--publisher", "Acme")
	ok("swlicense", "add", "CAD Pro site", "--application", "CAD Pro")
	ok("swlicense", "add", "CAD Pro lab", "--application", "CAD Pro")
	ok("swlicense", "add", "CAD Pro field", "--application", "CAD Pro", "--duration", "subscription", "--expiry", "2027-03-12")
	ok("purchase", "add", "--po", "PO-100", "--item", "CAD Pro seats", "--vendor", "Reseller", "--quantity", "30", "--unit-price", "400",
		"--type", "license", "--link", "SW-1:10", "--link", "SW-2:10", "--link", "SW-3:10")
	ok("purchase", "add", "--po", "PO-101", "--item", "CAD Pro maintenance", "--vendor", "Reseller", "--quantity", "30", "--unit-price", "80",
		"--type", "maintenance", "--effective", "2026-03-16", "--expiry", "2027-03-15", "--link", "SW-1:10", "--link", "SW-2:10", "--link", "SW-3:10")

	// One maintenance purchase split over three licenses: three rows; the
	// field license also expires by its own date: a fourth, without
	// purchase columns.
	rows := csvRows(t, ok("report", "expiry", "--within", "30d", "--csv"))
	if len(rows) != 5 {
		t.Fatalf("expiry within 30d: %d rows, want a header and 4:\n%v", len(rows), rows)
	}
	var own, maint int
	for _, r := range rows[1:] {
		switch r[4] {
		case "license expiry":
			own++
			if r[0] != "SW-3" || r[6] != "11" || r[7] != "" || r[8] != "" {
				t.Errorf("license-expiry row: %v", r)
			}
		case "maintenance expiry":
			maint++
			if r[6] != "14" || r[8] != "PO-101" || r[10] != "Reseller" || r[12] != "10" || r[14] != "yes" || r[16] != "800.00" {
				t.Errorf("maintenance row: %v", r)
			}
		}
	}
	if own != 1 || maint != 3 {
		t.Fatalf("rows: %d own, %d maintenance", own, maint)
	}
	table := ok("report", "expiry", "--within", "30d")
	if !strings.Contains(table, "maintenance expiry") || !strings.Contains(table, "PO-101") {
		t.Fatalf("table:\n%s", table)
	}
	if got := ok("report", "expiry", "--within", "7d"); !strings.Contains(got, "Nothing expires") {
		t.Fatalf("7 days:\n%s", got)
	}
	// Planned non-renewal: the lab's row leaves the window at once.
	ok("swlicense", "set", "CAD Pro lab", "--planned-non-renewal")
	if rows := csvRows(t, ok("report", "expiry", "--within", "30d", "--csv")); len(rows) != 4 {
		t.Fatalf("after planned non-renewal: %d rows, want 4", len(rows))
	}
	// Sixteen days later the maintenance is overdue: negative days, the
	// lab included; the subscription's entitlements are gone.
	clk.Advance(16 * 24 * time.Hour)
	rows = csvRows(t, ok("report", "expiry", "--overdue", "--csv"))
	if len(rows) != 5 {
		t.Fatalf("overdue: %v", rows)
	}
	for _, r := range rows[1:] {
		if !strings.HasPrefix(r[6], "-") {
			t.Errorf("overdue row with days %s: %v", r[6], r)
		}
	}
	comp := csvRows(t, ok("report", "compliance", "--csv"))
	if last := comp[len(comp)-1]; last[0] != "TOTAL" {
		t.Fatalf("compliance CSV ends with %v", last)
	}
	if !strings.Contains(ok("report", "compliance"), "maintenance covers 0 of 10") {
		t.Fatal("no maintenance mismatch alert after expiry")
	}

	// Bad input: a clear error, and nothing changes.
	before := ok("purchase", "list", "--json")
	eventsBefore, err := srv.Admin.Events(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	badCSV := filepath.Join(t.TempDir(), "bad.csv")
	os.WriteFile(badCSV, []byte("po,item,quantity,type,links\nPO-200,Seats,5,license,SW-1:5\nPO-201,\"broken,5,license\n"), 0o600)
	unknownCSV := filepath.Join(t.TempDir(), "unknown.csv")
	os.WriteFile(unknownCSV, []byte("po,item,quantity,type,links\nPO-200,Seats,5,license,SW-1:5\nPO-201,Seats,5,license,Nope:5\n"), 0o600)
	for _, c := range []struct {
		name string
		code int
		want string
		args []string
	}{
		{"negative quantity", exitcode.Usage, "positive", []string{"purchase", "add", "--po", "X", "--item", "x", "--quantity", "-5", "--type", "license"}},
		{"expiry before effective", exitcode.Usage, "before the effective date", []string{"purchase", "add", "--po", "X", "--item", "x", "--quantity", "5",
			"--type", "maintenance", "--effective", "2027-05-01", "--expiry", "2027-04-30"}},
		{"split exceeding", exitcode.Usage, "would take 6", []string{"purchase", "add", "--po", "X", "--item", "x", "--quantity", "5",
			"--type", "license", "--link", "SW-1:3", "--link", "SW-2:3"}},
		{"link exceeding", exitcode.Error, "would take 31", []string{"purchase", "link", "1", "SW-1", "--quantity", "11"}},
		{"unknown license", exitcode.NotFound, "no license", []string{"purchase", "add", "--po", "X", "--item", "x", "--quantity", "5",
			"--type", "license", "--link", "Nope:5"}},
		{"unknown license link", exitcode.NotFound, "no license", []string{"purchase", "link", "1", "SW-9", "--quantity", "1"}},
		{"malformed CSV row", exitcode.Error, "nothing was imported", []string{"purchase", "import", badCSV}},
		{"CSV with an unknown license", exitcode.NotFound, "nothing was added", []string{"purchase", "import", unknownCSV}},
		{"bad date", exitcode.Usage, "YYYY-MM-DD", []string{"purchase", "add", "--po", "X", "--item", "x", "--quantity", "5", "--type", "license", "--date", "03/01/2027"}},
		{"bad window", exitcode.Usage, "--within", []string{"report", "expiry", "--within", "soon"}},
		{"license type typo", exitcode.Error, "want device (per computer) or user", []string{"swlicense", "add", "U", "--application", "CAD Pro", "--type", "usr"}},
		{"bad rule", exitcode.Usage, "every package", []string{"applications", "add", "All", "--package", "*"}},
		{"subscription without expiry", exitcode.Error, "needs an expiry date", []string{"swlicense", "add", "S", "--application", "CAD Pro", "--duration", "subscription"}},
	} {
		code, _, stderr := posRun(srv, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d (want %d), %q (want %q)", c.name, code, c.code, stderr, c.want)
		}
	}
	if after := ok("purchase", "list", "--json"); after != before {
		t.Fatalf("purchases changed:\n%s\n%s", before, after)
	}
	if ev, _ := srv.Admin.Events(context.Background(), nil); len(ev) != len(eventsBefore) {
		t.Fatalf("the audit log grew from %d to %d events", len(eventsBefore), len(ev))
	}
	// The API refuses a bad body the same way.
	for _, body := range []string{`[{"po":"X","item":"x","quantity":-1,"type":"license"}]`, `{"po":"X"}`, `[{"po":"X","item":"x","quantity":1,"type":"license","bogus":1}]`} {
		req, _ := http.NewRequest(http.MethodPost, srv.Addresses().AdminURL+"/api/v1/purchases", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+srv.Identity().Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("API body %s: %s", body, resp.Status)
		}
	}
	if after := ok("purchase", "list", "--json"); after != before {
		t.Fatal("purchases changed after bad API bodies")
	}
	// Applications: an import is all or none; hostile rules are refused.
	appsBefore := ok("applications", "list", "--json")
	manyRules := `[{"name":"Many","rules":[` + strings.TrimSuffix(strings.Repeat(`{"package":"a"},`, 65), ",") + `]}]`
	for _, body := range []string{
		`[{"name":"Good","rules":[{"package":"good"}]},{"name":"Bad","rules":[{"package":"x","versions":">=>"}]}]`,
		`[{"name":"Good","rules":[{"package":"good"}]},{"name":"good","rules":[{"package":"y"}]}]`,
		`[{"name":"CAD Pro","rules":[{"package":"again"}]}]`,
		`[{"name":"Wild","rules":[{"package":"*a*b*c*d*e*f*g*h*i*"}]}]`,
		`[{"name":"","rules":[{"package":"x"}]}]`,
		`[{"name":"NoRules","rules":[]}]`,
		manyRules,
		`[{"name":"Src","rules":[{"package":"x","source":"pip"}]}]`,
	} {
		req, _ := http.NewRequest(http.MethodPost, srv.Addresses().AdminURL+"/api/v1/applications", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+srv.Identity().Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusConflict {
			t.Errorf("API applications body %.60s: %s", body, resp.Status)
		}
	}
	if after := ok("applications", "list", "--json"); after != appsBefore {
		t.Fatalf("applications changed:\n%s\n%s", appsBefore, after)
	}
	for _, u := range []string{"ftp://example.com/x", "not a url", "http://"} {
		if code, _, stderr := posRun(srv, "alerts", "add", "webhook", u); code == 0 || !strings.Contains(stderr, "webhook URL") {
			t.Errorf("webhook %q: exit %d, %s", u, code, stderr)
		}
	}
	if code, _, stderr := posRun(srv, "alerts", "add", "webhook", "http://127.0.0.1:1/x", "--secret", "short"); code == 0 || !strings.Contains(stderr, "16 to 256") {
		t.Errorf("short secret: exit %d, %s", code, stderr)
	}
	// Each change is in the audit log, with what it was before and after.
	ev, err := srv.Admin.Events(context.Background(), map[string][]string{"kind": {store.EventSWLicenseChanged}})
	if err != nil || len(ev) != 1 || !strings.Contains(ev[0].Reason, `"planned_non_renewal":false`) || !strings.Contains(ev[0].Reason, `"planned_non_renewal":true`) {
		t.Fatalf("change event: %+v, %v", ev, err)
	}
	for _, cmd := range [][]string{{"applications", "add", "--help"}, {"swlicense", "set", "--help"}, {"purchase", "import", "--help"}, {"report", "expiry", "--help"}} {
		if code, out, _ := posRun(srv, cmd...); code != 0 || !strings.Contains(out, "Usage") {
			t.Errorf("%v: exit %d", cmd, code)
		}
	}
}
