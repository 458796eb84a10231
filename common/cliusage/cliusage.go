// Package cliusage makes both binaries' command trees answer every wrong
// command line the same way (an unknown command or flag, wrong arguments, a
// bad or missing flag value): a sentence naming the mistake and the help to
// read, and exit code 2, where cobra alone prints help and exits 0 for an
// unknown subcommand and reports its other mistakes as plain errors.
package cliusage

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tallyhq/tally/common/exitcode"
)

// Apply hardens root and every command under it; call it once the tree is
// complete, before Execute.
func Apply(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	root.SetFlagErrorFunc(flagError)
	visit(root)
}

func visit(c *cobra.Command) {
	if c.HasSubCommands() && !c.Runnable() {
		// A group of commands: alone it shows its help; with an argument
		// that names none of its commands it is a mistake.
		c.Args = unknownCommand
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	} else {
		check := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if check != nil {
				if err := check(cmd, args); err != nil {
					return Error(cmd, err)
				}
			}
			return requiredFlags(cmd)
		}
	}
	for _, s := range c.Commands() {
		visit(s)
	}
}

// Error marks err as a usage mistake of cmd (exit code 2), pointing to its
// help, unless err already carries an exit code.
func Error(cmd *cobra.Command, err error) error {
	if _, ok := exitcode.Of(err); ok {
		return err
	}
	return exitcode.New(exitcode.Usage, fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath()))
}

func flagError(cmd *cobra.Command, err error) error {
	// "plugin lst --data DIR": the mistake is the command, not the flag
	// that only the intended command has.
	if cmd.HasSubCommands() && len(cmd.Flags().Args()) > 0 {
		return unknownCommand(cmd, cmd.Flags().Args())
	}
	return Error(cmd, err)
}

func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	var names []string
	for _, s := range cmd.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, which it sets only on its own path
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %s?", strings.Join(quoteAll(s), " or "))
	}
	msg += fmt.Sprintf("\nits commands: %s (see '%s --help')", strings.Join(names, ", "), cmd.CommandPath())
	return exitcode.New(exitcode.Usage, errors.New(msg))
}

func quoteAll(s []string) []string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return q
}

// requiredFlags replaces cobra's `required flag(s) "x" not set` by a
// sentence that says what the flag takes.
func requiredFlags(cmd *cobra.Command) error {
	var missing []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if v := f.Annotations[cobra.BashCompOneRequiredFlag]; len(v) > 0 && v[0] == "true" && !f.Changed {
			missing = append(missing, fmt.Sprintf("--%s is required: %s", f.Name, f.Usage))
		}
	})
	if len(missing) == 0 {
		return nil
	}
	return exitcode.New(exitcode.Usage, fmt.Errorf("%s (see '%s --help')", strings.Join(missing, "; "), cmd.CommandPath()))
}
