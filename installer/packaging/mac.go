package packaging

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tallyhq/tally/installer"
)

const launchdJob = "com.tallyhq.agent"

// macLayout writes the folder pkgbuild turns into the agent's .pkg on a
// Mac (pkgbuild does not run on Linux): root/ is the payload (the binary
// and the launchd job), scripts/ the postinstall, and BUILD.txt the
// pkgbuild command line.
func (o Options) macLayout(t Target, bin string) (string, error) {
	out := filepath.Join(o.Out, fmt.Sprintf("%s_%s_%s_%s.pkg-layout", t.Product, o.Version, t.OS, t.Arch))
	if err := os.RemoveAll(out); err != nil {
		return "", err
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	job, err := fs.ReadFile(installer.Files, "launchd/"+launchdJob+".plist")
	if err != nil {
		return "", err
	}
	post, err := fs.ReadFile(sources, "scripts/darwin/postinstall")
	if err != nil {
		return "", err
	}
	build := fmt.Sprintf(`Build the macOS installer package on a Mac, in this folder:

  pkgbuild --root root --scripts scripts --identifier %s --version %s --install-location / %s-%s-%s.pkg

The payload installs /usr/local/bin/tally-agent and
/Library/LaunchDaemons/%s.plist; postinstall loads the job once the agent
is enrolled. macOS packages have no uninstall step: remove the agent with
'sudo tally-agent uninstall' (the goodbye that frees its seats), then
'sudo launchctl bootout system /Library/LaunchDaemons/%s.plist' and delete
the two files.
`, launchdJob, o.Version, t.Product, o.Version, t.Arch, launchdJob, launchdJob)
	for _, f := range []struct {
		path string
		mode os.FileMode
		body []byte
	}{
		{"root/usr/local/bin/tally-agent", 0o755, exe},
		{"root/Library/LaunchDaemons/" + launchdJob + ".plist", 0o644, job},
		{"scripts/postinstall", 0o755, post},
		{"BUILD.txt", 0o644, []byte(build)},
	} {
		p := filepath.Join(out, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, f.body, f.mode); err != nil {
			return "", err
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return "", err
		}
	}
	return out, nil
}
