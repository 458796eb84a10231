package cli_test

import (
	"strings"
	"testing"

	"github.com/tallyhq/tally/common/exitcode"
	"github.com/tallyhq/tally/server/servertest"
)

// alerts remove: what it prints, usage errors (exit 2), an unknown
// webhook refused.
func TestAlertsRemoveCommand(t *testing.T) {
	srv := servertest.New(t)
	adminStdout(t, srv, "alerts", "add", "webhook", "http://127.0.0.1:9/hook", "--secret", "a-long-enough-shared-secret")
	if out := adminStdout(t, srv, "alerts", "remove", "1"); !strings.Contains(out, "Removed webhook 1: http://127.0.0.1:9/hook") {
		t.Fatalf("remove printed %q", out)
	}
	if out := adminStdout(t, srv, "alerts", "list"); strings.Contains(out, "127.0.0.1:9") {
		t.Fatalf("list after the removal: %q", out)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"alerts", "remove"}, exitcode.Usage, "usage: tally-server alerts remove ID"},
		{[]string{"alerts", "remove", "x"}, exitcode.Usage, "is not a webhook ID"},
		{[]string{"alerts", "remove", "0"}, exitcode.Usage, "is not a webhook ID"},
		{[]string{"alerts", "remove", "1"}, 1, "no webhook 1"},
		{[]string{"alerts", "remove", "77"}, 1, "no webhook 77"},
	} {
		code, _, errOut := posRun(srv, c.args...)
		if code == 0 || c.code == exitcode.Usage && code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, %q; want exit %d saying %q", c.args, code, errOut, c.code, c.want)
		}
	}
	if code, out, _ := posRun(srv, "alerts", "remove", "--help"); code != 0 || !strings.Contains(out, "alerts remove ID") {
		t.Errorf("remove --help: exit %d: %s", code, out)
	}
}
