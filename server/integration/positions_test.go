package integration

import (
	"context"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/agent/software/softwaretest"
	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/recognize"
	"github.com/tallyhq/tally/server/store"
)

// ubuntu1804 is the dpkg status of a real Ubuntu 18.04 base system (the
// copy of ../shared/fixtures the agent's dpkg tests read).
const ubuntu1804 = "../../agent/software/dpkg/testdata/status/ubuntu-18.04-base.status"

// withoutPackages drops the stanzas of the packages whose name starts
// with prefix.
func withoutPackages(status []byte, prefix string) []byte {
	var keep []string
	for _, st := range strings.Split(string(status), "\n\n") {
		if !strings.HasPrefix(strings.TrimLeft(st, "\n"), "Package: "+prefix) {
			keep = append(keep, st)
		}
	}
	return []byte(strings.Join(keep, "\n\n"))
}

// Must hold: a real software set (the Ubuntu 18.04 dpkg status) posted by
// a real agent over QUIC is recognised by a rule with a glob and a
// version range; removing the packages in a delta post lowers
// consumption at once.
func TestRecognitionFromARealAgent(t *testing.T) {
	status, err := os.ReadFile(ubuntu1804)
	if err != nil {
		t.Fatal(err)
	}
	srv := licensedServer(t, "inventory", 10)
	ctx := context.Background()
	// libpam-runtime, libpam-modules, libpam-modules-bin and libpam0g are
	// 1.1.8-3.6ubuntu2; the second rule's range leaves every ncurses
	// package of 18.04 (6.1) out.
	if _, err := srv.Admin.AddApplications(ctx, []store.Application{
		{Name: "Linux PAM", Publisher: "Ubuntu", Rules: []recognize.Rule{{Package: "libpam*", Versions: ">=1.1.8, <1.2", Source: "dpkg"}}},
		{Name: "ncurses 6.2+", Rules: []recognize.Rule{{Package: "libncurses*", Versions: ">=6.2"}}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Admin.AddSoftwareLicense(ctx, store.SoftwareLicense{License: positions.License{Name: "PAM site", Duration: positions.Perpetual},
		Applications: []string{"Linux PAM"}}); err != nil {
		t.Fatal(err)
	}
	var agents []*agenttest.Agent
	var roots []string
	for range 2 {
		root := softwaretest.Dir(t, fstest.MapFS{"var/lib/dpkg/status": {Data: status}})
		a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret, SoftwareRoot: root})
		a.Install(t, "inventory", "")
		if posts := inventoryPosts(a.Cycle(t)); len(posts) != 1 || !strings.Contains(posts[0].Form, "software-full") {
			t.Fatalf("first post %+v", posts)
		}
		agents, roots = append(agents, a), append(roots, root)
	}
	app, err := srv.Admin.Application(ctx, "Linux PAM")
	if err != nil {
		t.Fatal(err)
	}
	if app.Installed != 2 || len(app.Computers) != 2 || app.Computers[0].Packages != 4 {
		t.Fatalf("Linux PAM: %+v", app)
	}
	if other, _ := srv.Admin.Application(ctx, "ncurses 6.2+"); other.Installed != 0 {
		t.Fatalf("ncurses 6.1 recognised by >=6.2: %+v", other)
	}
	lic, err := srv.Admin.SoftwareLicense(ctx, "PAM site")
	if err != nil || lic.Consumed != 2 || lic.Raw != 8 {
		t.Fatalf("PAM site: %+v, %v", lic, err)
	}

	// The first machine removes PAM: a delta of four removals.
	rewriteStatus(t, roots[0], withoutPackages(status, "libpam"))
	if posts := inventoryPosts(agents[0].Cycle(t)); len(posts) != 1 || posts[0].Form != "basic-hash software-delta +0 -4" {
		t.Fatalf("removal post %+v", posts)
	}
	lic, err = srv.Admin.SoftwareLicense(ctx, "PAM site")
	if err != nil || lic.Consumed != 1 || lic.Raw != 4 {
		t.Fatalf("after the removal: %+v, %v", lic, err)
	}
	app, _ = srv.Admin.Application(ctx, "Linux PAM")
	if len(app.Computers) != 1 || app.Computers[0].ComputerID != agents[1].Enrollment().ComputerID {
		t.Fatalf("Linux PAM after the removal: %+v", app.Computers)
	}
	// The compliance report reads the same consumption.
	rep, err := srv.Admin.ComplianceReport(ctx, positions.DefaultOverLicensedPercent)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Rows {
		if r.Name == "PAM site" && (r.Consumed != 1 || r.Status != positions.UnderLicensed || r.Available != -1) {
			t.Fatalf("compliance: %+v", r)
		}
	}
}
