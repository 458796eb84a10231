package cliusage

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/common/exitcode"
)

func tree() *cobra.Command {
	root := &cobra.Command{Use: "tool", SilenceErrors: true, SilenceUsage: true}
	group := &cobra.Command{Use: "plugin"}
	list := &cobra.Command{Use: "list", Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error { return nil }}
	list.Flags().String("data", "", "data folder")
	give := &cobra.Command{Use: "give ID --to C", Args: cobra.ExactArgs(1), RunE: func(*cobra.Command, []string) error { return nil }}
	give.Flags().String("to", "", "computer ID to give it to")
	_ = give.MarkFlagRequired("to")
	group.AddCommand(list, give)
	root.AddCommand(group)
	Apply(root)
	return root
}

func run(args ...string) (string, error) {
	root := tree()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestEveryWrongCommandLineIsAUsageError(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"plugin", "lst"}, `unknown command "lst" for "tool plugin"; did you mean "list"?`},
		{[]string{"plugin", "lst", "--data", "D"}, `unknown command "lst" for "tool plugin"`},
		{[]string{"plugn"}, `did you mean "plugin"?`},
		{[]string{"plugin", "list", "--bogus"}, "unknown flag: --bogus (see 'tool plugin list --help')"},
		{[]string{"plugin", "list", "extra"}, "unknown command \"extra\" for \"tool plugin list\" (see 'tool plugin list --help')"},
		{[]string{"plugin", "give", "1"}, "--to is required: computer ID to give it to (see 'tool plugin give --help')"},
		{[]string{"plugin", "give"}, "accepts 1 arg(s), received 0"},
	} {
		_, err := run(c.args...)
		if code, _ := exitcode.Of(err); code != exitcode.Usage || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v (code %d); want code 2 and %q", c.args, err, code, c.want)
		}
	}
	if out, err := run("plugin"); err != nil || !strings.Contains(out, "Available Commands:") {
		t.Errorf("a group alone shows its help: %v\n%s", err, out)
	}
	if _, err := run("plugin", "give", "1", "--to", "12"); err != nil {
		t.Errorf("a right command line: %v", err)
	}
}
