package packaging

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/common/cliusage"
	"github.com/tallyhq/tally/common/exitcode"
)

// Main is mkpkg's command line; it returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	var o Options
	var mtime int64
	var only []string
	cmd := &cobra.Command{
		Use:   "mkpkg --version V --bin DIR --out DIR",
		Short: "Build Tally's .deb, .rpm, .tar.gz and .msi packages and the macOS .pkg payload folder from built binaries",
		Long: `mkpkg packages the binaries in --bin (one folder per platform: linux-amd64/tally-agent,
windows-amd64/tally-agent.exe, …) into --out: for Linux amd64 and arm64 a .deb, an .rpm
and a .tar.gz of tally-agent and of tally-server, the agent's .msi for Windows (with
wixl), and for macOS its .pkg payload folder and a .tar.gz. A package whose binary is
missing (the arm64 server without a C cross-compiler) is skipped and named.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if mtime < 0 {
				return cliusage.Error(cmd, errors.New("--mtime: want seconds since 1970, 0 or more"))
			}
			o.MTime = time.Unix(mtime, 0)
			if err := o.check(); err != nil {
				return cliusage.Error(cmd, err)
			}
			want := map[string]bool{}
			for _, f := range only {
				switch f {
				case "deb", "rpm", "tar.gz", "msi", "pkg-layout":
					want[f] = true
				default:
					return cliusage.Error(cmd, fmt.Errorf("--only %q: want deb, rpm, tar.gz, msi or pkg-layout", f))
				}
			}
			built := 0
			for _, t := range Targets() {
				if len(want) > 0 && !want[t.Format] {
					continue
				}
				p, err := o.Build(t)
				if errors.Is(err, ErrNoBinary) {
					fmt.Fprintf(stdout, "skipped %s: no binary\n", t)
					continue
				}
				if err != nil {
					return err
				}
				built++
				fmt.Fprintln(stdout, p)
			}
			if built == 0 {
				return fmt.Errorf("no package built: no binary under %s", o.Bin)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Version, "version", "", "package version: a digit first, then digits, letters and . + ~ (e.g. 1.4.0)")
	f.StringVar(&o.Bin, "bin", "", "folder of the built binaries, one sub-folder per GOOS-GOARCH")
	f.StringVar(&o.Out, "out", "dist", "folder the packages are written to")
	f.Int64Var(&mtime, "mtime", 0, "time of every packaged file, in seconds since 1970 (reproducible builds)")
	f.StringSliceVar(&only, "only", nil, "build only these formats (deb, rpm, tar.gz, msi, pkg-layout)")
	for _, n := range []string{"version", "bin"} {
		_ = cmd.MarkFlagRequired(n)
	}
	cliusage.Apply(cmd)
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(stderr, "mkpkg: "+err.Error())
		if code, ok := exitcode.Of(err); ok {
			return code
		}
		return exitcode.Error
	}
	return exitcode.OK
}
