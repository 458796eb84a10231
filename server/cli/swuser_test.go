package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/server/servertest"
)

// A per-user software license is added with --type user, shown in users
// rather than computers, and reported by report compliance like any
// other software license.
func TestUserSoftwareLicenseCLI(t *testing.T) {
	clk := clock.NewManual(time.Date(2027, 3, 1, 10, 0, 0, 0, time.UTC))
	srv := servertest.New(t, servertest.WithClock(clk), inZone("UTC"))
	adminStdout(t, srv, "applications", "add", "CAD Pro", "--package", "cadpro*")
	adminStdout(t, srv, "swlicense", "add", "CAD users", "--application", "CAD Pro", "--type", "user", "--extra", "5")
	show := adminStdout(t, srv, "swlicense", "show", "CAD users")
	if !strings.Contains(show, "type:                 user") || !strings.Contains(show, "consumed:             0 users") {
		t.Fatalf("swlicense show:\n%s", show)
	}
	var rep struct {
		Rows []struct {
			License  string `json:"license"`
			Type     string `json:"license_type"`
			Consumed int    `json:"consumed"`
		} `json:"licenses"`
	}
	out := adminStdout(t, srv, "report", "compliance", "--json")
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(rep.Rows) != 1 || rep.Rows[0].License != "SW-1" || rep.Rows[0].Type != "user" || rep.Rows[0].Consumed != 0 {
		t.Fatalf("compliance report: %s", out)
	}
}
