package cli_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/tallyhq/tally/common/exitcode"
	"github.com/tallyhq/tally/server/servertest"
)

// swlicense allocate and deallocate: what they print, usage errors (exit
// 2), and refusals that change nothing.
func TestSWLicenseAllocateCommands(t *testing.T) {
	srv := servertest.New(t)
	a := machine(t, srv, "cad-ws-1")
	id := strconv.FormatInt(a.Enrollment().ComputerID, 10)
	adminStdout(t, srv, "applications", "add", "CAD Pro", "--package", "cadpro*")
	adminStdout(t, srv, "swlicense", "add", "CAD Pro site", "--application", "CAD Pro")

	out := adminStdout(t, srv, "swlicense", "allocate", "CAD Pro site", id)
	if !strings.Contains(out, "SW-1 is now allocated to computer "+id+": 1 computers consume it (0 installed, 1 by allocation alone)") {
		t.Fatalf("allocate printed %q", out)
	}
	if out := adminStdout(t, srv, "swlicense", "show", "SW-1"); !strings.Contains(out, "allocated to:         computers "+id) ||
		!strings.Contains(out, "consumed:             1 computers (0 installations, 1 by allocation alone)") {
		t.Fatalf("show printed %q", out)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"swlicense", "allocate", "SW-1"}, exitcode.Usage, "usage: tally-server swlicense allocate LICENSE COMPUTER"},
		{[]string{"swlicense", "allocate", "SW-1", "x"}, exitcode.Usage, "is not a computer ID"},
		{[]string{"swlicense", "deallocate", "SW-1", "-3"}, exitcode.Usage, ""},
		{[]string{"swlicense", "allocate", "SW-1", id}, 1, "already allocated"},
		{[]string{"swlicense", "allocate", "SW-2", id}, 1, "no software license"},
		{[]string{"swlicense", "allocate", "SW-1", "424242"}, 1, "no computer 424242"},
		{[]string{"swlicense", "deallocate", "SW-1", "424242"}, 1, "not allocated"},
	} {
		code, _, errOut := posRun(srv, c.args...)
		if code == 0 || c.code == exitcode.Usage && code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, %q; want exit %d saying %q", c.args, code, errOut, c.code, c.want)
		}
	}
	if out := adminStdout(t, srv, "swlicense", "show", "SW-1", "--json"); !strings.Contains(out, `"allocations": [`) || !strings.Contains(out, `"reserved": 1`) {
		t.Fatalf("the refusals changed the license: %s", out)
	}
	out = adminStdout(t, srv, "swlicense", "deallocate", "SW-1", id)
	if !strings.Contains(out, "no longer allocated to computer "+id+": 0 computers consume it") {
		t.Fatalf("deallocate printed %q", out)
	}
	for _, cmd := range []string{"allocate", "deallocate"} {
		if code, out, _ := posRun(srv, "swlicense", cmd, "--help"); code != 0 || !strings.Contains(out, "swlicense "+cmd+" LICENSE COMPUTER") {
			t.Errorf("%s --help: exit %d: %s", cmd, code, out)
		}
	}
}
