package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/agenttest"
	agentcli "github.com/tallyhq/tally/agent/cli"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/cli"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

// admin runs a tally-server admin command against srv and returns its
// output (stdout and stderr) and exit code.
func admin(t *testing.T, srv *servertest.Server, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	m := &cli.Main{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
	args = append(args, "--admin-url", srv.Addresses().AdminURL, "--token", srv.Identity().Token)
	code := m.Run(context.Background(), args)
	return out.String(), code
}

// mustAdmin is admin failing the test on a non-zero exit.
func mustAdmin(t *testing.T, srv *servertest.Server, args ...string) string {
	t.Helper()
	out, code := admin(t, srv, args...)
	if code != 0 {
		t.Fatalf("tally-server %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// agentCmd runs tally-agent's command line on an agent's data folder.
func agentCmd(t *testing.T, data string, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	m := &agentcli.Main{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }, ConfigFile: filepath.Join(t.TempDir(), "none.conf")}
	code := m.Run(context.Background(), append(args, "--data", data))
	return out.String(), code
}

// machine enrolls a real agent and posts its basic inventory under
// hostname, listing plugins (the agent's own hostname is the test host's).
func machine(t *testing.T, srv *servertest.Server, hostname string, plugins ...string) *agenttest.Agent {
	t.Helper()
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	basic, _ := a.CollectBasic(context.Background())
	basic.Hostname = hostname
	basic.Plugins = []protocol.Plugin{}
	for _, p := range plugins {
		basic.Plugins = append(basic.Plugins, protocol.Plugin{Name: p, Version: "7.5", BuildDate: "2026-01-15"})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var resp protocol.InventoryResponse
	if _, err := a.RawClient(t).Call(ctx, protocol.KindInventory, a.NextSeq(t), &protocol.InventoryRequest{Basic: basic}, &resp); err != nil {
		t.Fatalf("post %s: %v", hostname, err)
	}
	return a
}

func id(a *agenttest.Agent) string { return strconv.FormatInt(a.Enrollment().ComputerID, 10) }

// listed runs 'computers list' with args and returns the IDs it shows.
func listed(t *testing.T, srv *servertest.Server, args ...string) []string {
	t.Helper()
	out := mustAdmin(t, srv, append([]string{"computers", "list"}, args...)...)
	var ids []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && regexp.MustCompile(`^\d+$`).MatchString(f[0]) {
			ids = append(ids, f[0])
		}
	}
	return ids
}

// Must hold: every filter of 'computers list' selects exactly the
// computers it names, alone and combined, in the table and in JSON.
func TestComputersListFilters(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 1})
	web1 := machine(t, srv, "web-01", "monitor")
	web2 := machine(t, srv, "WEB-02", "monitor")
	db := machine(t, srv, "db-01")
	mustAdmin(t, srv, "computers", "retire", id(db))

	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{id(web1), id(web2), id(db)}},
		{[]string{"--hostname", "web"}, []string{id(web1), id(web2)}},
		{[]string{"--hostname", "Web-0?"}, []string{id(web1), id(web2)}},
		{[]string{"--hostname", "eb-01"}, []string{id(web1)}},
		{[]string{"--hostname", "db*"}, []string{id(db)}},
		{[]string{"--hostname", "b-0"}, []string{id(web1), id(web2), id(db)}},
		{[]string{"--status", "retired"}, []string{id(db)}},
		{[]string{"--status", "Active"}, []string{id(web1), id(web2)}},
		{[]string{"--product", "monitor"}, []string{id(web1)}},
		{[]string{"--plugin", "monitor"}, []string{id(web1), id(web2)}},
		{[]string{"--plugin", "monitor", "--hostname", "02"}, []string{id(web2)}},
		{[]string{"--not-seen-since", "1h"}, nil},
		{[]string{"--not-seen-since", time.Now().AddDate(0, 0, 2).Format("2006-01-02")}, []string{id(web1), id(web2), id(db)}},
		{[]string{"--flag", "duplicate-hints"}, nil},
		{[]string{"--flag", "agent-uninstalled"}, nil},
	} {
		if got := listed(t, srv, tc.args...); !slices.Equal(got, tc.want) {
			t.Errorf("computers list %v: %v, want %v", tc.args, got, tc.want)
		}
	}
	if out := mustAdmin(t, srv, "computers", "list", "--hostname", "nosuch"); !strings.Contains(out, "No computer matches.") {
		t.Errorf("no match: %q", out)
	}
	var page store.ComputerPage
	out := mustAdmin(t, srv, "computers", "list", "--plugin", "monitor", "--json")
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Computers) != 2 || page.Next != 0 {
		t.Fatalf("--json: %v %+v\n%s", err, page, out)
	}
}

// Must hold: a bad filter value is refused with a sentence naming it, by
// the command (exit non-zero) and by the API (400).
func TestComputersListBadFilters(t *testing.T) {
	srv := servertest.New(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--status", "Nope"}, `status "Nope" does not exist`},
		{[]string{"--product", "nope"}, `product "nope" does not exist`},
		{[]string{"--plugin", "nope"}, `no product uses a plug-in named "nope"`},
		{[]string{"--not-seen-since", "soon"}, `not seen since "soon": use a duration (720h, 30d) or a date`},
		{[]string{"--flag", "odd"}, `flag "odd" does not exist (flags: duplicate-hints, agent-uninstalled)`},
		{[]string{"--limit", "0"}, `limit "0": ask for 1 to 10000 computers a page`},
		{[]string{"--limit", "10001"}, `limit "10001"`},
	} {
		out, code := admin(t, srv, append([]string{"computers", "list"}, tc.args...)...)
		if code == 0 || !strings.Contains(out, tc.want) {
			t.Errorf("computers list %v: exit %d, want %q in\n%s", tc.args, code, tc.want, out)
		}
	}
	for q, want := range map[string]string{
		"status=Nope":          `status \"Nope\" does not exist`,
		"not_seen_since=later": `not seen since \"later\"`,
		"after=-3":             `after \"-3\"`,
		"limit=x":              `limit \"x\"`,
		"colour=red":           `unknown parameter \"colour\"`,
		"flag=x":               `flag \"x\" does not exist`,
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.Addresses().AdminURL+"/api/v1/computers?"+q, nil)
		req.Header.Set("Authorization", "Bearer "+srv.Identity().Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), want) {
			t.Errorf("GET ?%s: %d %s, want 400 with %s", q, resp.StatusCode, b, want)
		}
	}
}

// Must hold: pages of --limit follow each other with --after, each says
// how to get the next, and together they list every computer once.
func TestComputersListPaging(t *testing.T) {
	srv := servertest.New(t)
	var all []string
	for i := range 5 {
		all = append(all, id(machine(t, srv, fmt.Sprintf("pc-%d", i))))
	}
	if out := mustAdmin(t, srv, "computers", "list"); strings.Contains(out, "--after") {
		t.Fatalf("one page says there is another:\n%s", out)
	}
	var got []string
	args := []string{"computers", "list", "--limit", "2"}
	for pages := 1; ; pages++ {
		out := mustAdmin(t, srv, args...)
		ids := listed(t, srv, args[2:]...)
		got = append(got, ids...)
		m := regexp.MustCompile(`add --after (\d+) for the next page`).FindStringSubmatch(out)
		if m == nil {
			if pages != 3 || len(ids) != 1 {
				t.Fatalf("page %d (last) lists %v:\n%s", pages, ids, out)
			}
			break
		}
		if len(ids) != 2 || m[1] != ids[1] {
			t.Fatalf("page %d lists %v, next after %s:\n%s", pages, ids, m[1], out)
		}
		args = []string{"computers", "list", "--limit", "2", "--after", m[1]}
	}
	if !slices.Equal(got, all) {
		t.Fatalf("pages listed %v, want %v", got, all)
	}
	var page store.ComputerPage
	out := mustAdmin(t, srv, "computers", "list", "--limit", "3", "--json")
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Computers) != 3 || strconv.FormatInt(page.Next, 10) != all[2] {
		t.Fatalf("--json page: %v %+v", err, page)
	}
}

// Must hold: 'computers show' takes an ID, a hostname or a machine ID,
// lists the seats held, and refuses an ambiguous hostname naming the
// candidates; the other computer commands resolve the same way.
func TestComputersShowByHostnameAndMachineID(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	lic := srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 5})
	web := machine(t, srv, "web-01", "monitor")
	for _, ref := range []string{id(web), "web-01", "WEB-01", web.MachineID} {
		out := mustAdmin(t, srv, "computers", "show", ref)
		if !strings.Contains(out, "Computer "+id(web)+": web-01") || !strings.Contains(out, "seat:         monitor (node), license "+lic.ID) {
			t.Errorf("show %s:\n%s", ref, out)
		}
	}
	if out := mustAdmin(t, srv, "computers", "why", "web-01", "monitor"); !strings.Contains(out, "Computer "+id(web)+" (web-01)") {
		t.Errorf("why by hostname:\n%s", out)
	}
	a, b := machine(t, srv, "twin"), machine(t, srv, "twin")
	out, code := admin(t, srv, "computers", "show", "twin")
	if code == 0 || !strings.Contains(out, `"twin" names 2 computers: `+id(a)+" (twin,") || !strings.Contains(out, "; "+id(b)+" (twin,") || !strings.Contains(out, "use the ID") {
		t.Errorf("ambiguous hostname: exit %d\n%s", code, out)
	}
	out, code = admin(t, srv, "computers", "retire", "twin")
	if code == 0 || !strings.Contains(out, "names 2 computers") {
		t.Errorf("retire by an ambiguous hostname: exit %d\n%s", code, out)
	}
	out, code = admin(t, srv, "computers", "show", "nosuch")
	if code == 0 || !strings.Contains(out, `no computer has the hostname or machine ID "nosuch"`) {
		t.Errorf("unknown hostname: exit %d\n%s", code, out)
	}
}

// Must hold: a blocked machine is listed with when, by whom and what is
// refused; it gets one message that says what to do, whatever it asks;
// after 'computers unblock' (audited) it enrolls again as a new computer.
func TestComputersBlockedAndUnblock(t *testing.T) {
	srv := servertest.New(t)
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	a.Cycle(t)
	old := id(a)
	if out := mustAdmin(t, srv, "computers", "blocked"); !strings.Contains(out, "No machine is blocked.") {
		t.Fatalf("blocked before any block:\n%s", out)
	}
	mustAdmin(t, srv, "computers", "delete", old, "--block")
	out := mustAdmin(t, srv, "computers", "blocked")
	if !regexp.MustCompile(`(?m)^` + old + `\s+\S+\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+admin\s+key=\S+ .*machine-id=` + regexp.QuoteMeta(a.MachineID)).MatchString(out) {
		t.Fatalf("computers blocked:\n%s", out)
	}
	var bs []store.Blocked
	if err := json.Unmarshal([]byte(mustAdmin(t, srv, "computers", "blocked", "--json")), &bs); err != nil || len(bs) != 1 || bs[0].By != "admin" {
		t.Fatalf("blocked --json: %v %+v", err, bs)
	}

	want := "an administrator deleted computer " + old + " with --block, which freed its seats and keeps this machine out until an administrator runs 'tally-server computers unblock " + old + "'; to enroll this machine, run: tally-agent enroll "
	enroll := []string{"enroll", "--server", srv.Addr(), "--fingerprint", srv.Fingerprint(), "--secret", srv.Secret, "--machine-id", a.MachineID}
	for _, args := range [][]string{{"run", "--once"}, enroll} {
		out, code := agentCmd(t, a.Dir.Path, args...)
		if code != agentcli.ExitRefused || !strings.Contains(out, want) || strings.Contains(out, "may enroll again") {
			t.Errorf("blocked agent %v: exit %d\n%s", args[0], code, out)
		}
	}
	// A fresh key on the same machine is refused with the same sentence.
	if _, err := agenttest.TryNew(t, srv, agenttest.Options{Secret: srv.Secret, MachineID: a.MachineID}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a new key of the blocked machine: %v", err)
	}

	out, code := admin(t, srv, "computers", "unblock", "999")
	if code == 0 || !strings.Contains(out, "computer 999 is not blocked") {
		t.Errorf("unblock a computer not blocked: exit %d\n%s", code, out)
	}
	if out := mustAdmin(t, srv, "computers", "unblock", old); !strings.Contains(out, "Unblocked computer "+old) || !strings.Contains(out, "run 'tally-agent enroll' again") {
		t.Fatalf("unblock:\n%s", out)
	}
	if out := mustAdmin(t, srv, "events", "--kind", "computer.unblocked"); !strings.Contains(out, "admin") || !strings.Contains(out, old) {
		t.Errorf("unblock not audited:\n%s", out)
	}
	if out := mustAdmin(t, srv, "computers", "blocked"); !strings.Contains(out, "No machine is blocked.") {
		t.Errorf("still blocked:\n%s", out)
	}
	out, code = agentCmd(t, a.Dir.Path, enroll...)
	m := regexp.MustCompile(`Enrolled with \S+ as computer (\d+)`).FindStringSubmatch(out)
	if code != 0 || m == nil || m[1] == old {
		t.Fatalf("enroll after unblock: exit %d\n%s", code, out)
	}
	if out, code := agentCmd(t, a.Dir.Path, "run", "--once"); code != 0 {
		t.Fatalf("run after unblock: exit %d\n%s", code, out)
	}
	if got := listed(t, srv); !slices.Equal(got, []string{m[1]}) {
		t.Fatalf("computers after re-enrollment: %v, want [%s]", got, m[1])
	}
}

// Must hold: a real agent's uninstall flags its computer agent-uninstalled
// (list, filter, show, JSON, audit); the flag clears when it enrolls again.
func TestAgentUninstalledFlag(t *testing.T) {
	srv := servertest.New(t)
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	other := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	a.Cycle(t)
	other.Cycle(t)
	if out, code := agentCmd(t, a.Dir.Path, "uninstall"); code != 0 {
		t.Fatalf("uninstall: exit %d\n%s", code, out)
	}
	if got := listed(t, srv, "--flag", "agent-uninstalled"); !slices.Equal(got, []string{id(a)}) {
		t.Fatalf("--flag agent-uninstalled: %v, want [%s]", got, id(a))
	}
	if out := mustAdmin(t, srv, "computers", "list"); !regexp.MustCompile(`(?m)^` + id(a) + `\s.*agent-uninstalled\s*$`).MatchString(out) {
		t.Errorf("list shows no flag:\n%s", out)
	}
	if out := mustAdmin(t, srv, "computers", "show", id(a)); !strings.Contains(out, "flag:         agent-uninstalled") {
		t.Errorf("show:\n%s", out)
	}
	c, err := srv.Admin.Computer(context.Background(), a.Enrollment().ComputerID)
	if err != nil || !slices.Contains(c.Flags, store.FlagAgentUninstalled) {
		t.Errorf("API: %v %v", c.Flags, err)
	}
	if out := mustAdmin(t, srv, "events", "--kind", "computer.flagged"); !strings.Contains(out, "agent-uninstalled: its agent said goodbye") {
		t.Errorf("flag not audited:\n%s", out)
	}
	// Installed again on the same machine: the same computer, unflagged.
	again := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret, MachineID: a.MachineID})
	if again.Enrollment().ComputerID != a.Enrollment().ComputerID {
		t.Fatalf("re-enrolled as computer %d, want %s", again.Enrollment().ComputerID, id(a))
	}
	if got := listed(t, srv, "--flag", "agent-uninstalled"); len(got) != 0 {
		t.Fatalf("flag kept after enrolling again: %v", got)
	}
	if out := mustAdmin(t, srv, "events", "--kind", "computer.unflagged"); !strings.Contains(out, "the machine enrolled again") {
		t.Errorf("clearing not audited:\n%s", out)
	}
}

// Must hold: retire says once what changed, node seats, activation seats
// and leases alike; a retire that changes nothing says so once.
func TestRetireSaysWhatChangedOnce(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 5})
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 5, Kind: license.KindNodeLocked})
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	a.Install(t, "monitor", "")
	a.Cycle(t)
	act := regexp.MustCompile(`ACT-[A-Z0-9-]+`).FindString(mustAdmin(t, srv, "activation", "create", "--product", "monitor", "--quantity", "1"))
	if out, code := agentCmd(t, a.Dir.Path, "activate", act); code != 0 {
		t.Fatalf("activate %s: exit %d\n%s", act, code, out)
	}
	out := mustAdmin(t, srv, "computers", "retire", id(a))
	if !strings.Contains(out, "Active → Retired; freed 1 node seat, freed 1 activation seat\n") ||
		strings.Count(out, "freed  node ") != 1 || strings.Count(out, "freed  node-locked ") != 1 || strings.Contains(strings.ToLower(out), "no seat changed") {
		t.Errorf("retire with two seats:\n%s", out)
	}
	out = mustAdmin(t, srv, "computers", "retire", id(a))
	if !strings.Contains(out, "is already Retired; nothing changed") || strings.Count(out, "\n") != 1 {
		t.Errorf("retire again:\n%s", out)
	}
	b := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	out = mustAdmin(t, srv, "computers", "retire", id(b))
	if strings.Count(strings.ToLower(out), "no seat changed") != 1 {
		t.Errorf("retire without seats:\n%s", out)
	}
}

// Must hold: a task for a computer without the plug-in that runs tasks is
// refused with what to do, and queued with --force; one with it is queued.
func TestTaskNeedsThePlugin(t *testing.T) {
	srv := servertest.New(t)
	bare := machine(t, srv, "bare")
	sm := machine(t, srv, "sm", "software-management")
	out, code := admin(t, srv, "computers", "task", id(bare), "collect-now")
	if code == 0 || !strings.Contains(out, "has no software-management plug-in") || !strings.Contains(out, "--force") {
		t.Errorf("task without the plug-in: exit %d\n%s", code, out)
	}
	if out := mustAdmin(t, srv, "events", "--kind", "task.queued"); strings.Contains(out, "collect-now") {
		t.Errorf("a refused task was queued:\n%s", out)
	}
	if out := mustAdmin(t, srv, "computers", "task", "bare", "collect-now", "--force"); !strings.Contains(out, "Queued task") {
		t.Errorf("--force:\n%s", out)
	}
	if out := mustAdmin(t, srv, "computers", "task", id(sm), "collect-now"); !strings.Contains(out, "Queued task") {
		t.Errorf("task with the plug-in:\n%s", out)
	}
}
