package packaging_test

import (
	"archive/tar"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tallyhq/tally/installer/packaging"
)

// dpkg-deb lists what each .deb installs, owned by root with the modes
// meant, and its maintainer scripts: the agent's prerm sends the goodbye on
// remove only, its postrm removes the data folder on purge only.
func TestDebPackagesInspected(t *testing.T) {
	need(t, "dpkg-deb", "dpkg")
	b := packages(t)

	info := run(t, "dpkg-deb", "--info", b.AgentDeb)
	contains(t, "agent .deb info", info, "Package: tally-agent", "Version: 1.0.0-1", "Architecture: amd64",
		" postinst ", " prerm ", " postrm ")
	contents := run(t, "dpkg-deb", "--contents", b.AgentDeb)
	wantFiles(t, "agent .deb", contents, map[string]string{
		"./usr/bin/tally-agent":                        "-rwxr-xr-x root/root",
		"./usr/lib/systemd/system/tally-agent.service": "-rw-r--r-- root/root",
	})
	prerm := run(t, "dpkg-deb", "--info", b.AgentDeb, "prerm")
	contains(t, "agent prerm", prerm, "#!/bin/sh", "set -e", "remove)\n\tgoodbye", "uninstall --package", "TALLY_AGENT_FORCE_REMOVE")
	if strings.Contains(prerm, "upgrade)") {
		t.Errorf("the agent's prerm acts on upgrade:\n%s", prerm)
	}
	postrm := run(t, "dpkg-deb", "--info", b.AgentDeb, "postrm")
	contains(t, "agent postrm", postrm, "purge)\n\tpurge", `rm -rf "$data"`)
	postinst := run(t, "dpkg-deb", "--info", b.AgentDeb, "postinst")
	contains(t, "agent postinst", postinst, "configure)", "enrollment.json", "/run/systemd/system", "try-restart")

	info = run(t, "dpkg-deb", "--info", b.ServerDeb)
	contains(t, "server .deb info", info, "Package: tally-server", " preinst ", " postinst ", " prerm ", " postrm ")
	wantFiles(t, "server .deb", run(t, "dpkg-deb", "--contents", b.ServerDeb), map[string]string{
		"./usr/bin/tally-server":                        "-rwxr-xr-x root/root",
		"./usr/lib/systemd/system/tally-server.service": "-rw-r--r-- root/root",
	})
	contains(t, "server preinst", run(t, "dpkg-deb", "--info", b.ServerDeb, "preinst"), "useradd --system")
	if strings.Contains(run(t, "dpkg-deb", "--info", b.ServerDeb, "postrm"), "rm -rf") {
		t.Error("the server's postrm deletes something: the database stays on purge")
	}
}

// wantFiles checks that listing (dpkg-deb --contents or rpm -qlpv) has
// exactly the regular files of want, each with its mode and owner.
func wantFiles(t *testing.T, what, listing string, want map[string]string) {
	t.Helper()
	files := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(listing), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasPrefix(f[0], "-") {
			continue
		}
		owner := f[1]
		if !strings.Contains(owner, "/") && len(f) > 3 { // rpm -qlv: mode, links, owner, group, …
			owner = f[2] + "/" + f[3]
		}
		files[f[len(f)-1]] = f[0] + " " + owner
	}
	if len(files) != len(want) {
		t.Errorf("%s holds %d files, want %d:\n%s", what, len(files), len(want), listing)
	}
	for path, mode := range want {
		if files[path] != mode {
			t.Errorf("%s: %s is %q, want %q", what, path, files[path], mode)
		}
	}
}

// rpm -qlp and --scripts show the same files and owners, and scriptlets
// that act on RPM's $1: the goodbye in %preun only when it is 0 (an erase),
// never when it is 1 (an upgrade).
func TestRPMPackagesInspected(t *testing.T) {
	need(t, "rpm", "rpm")
	b := packages(t)
	contains(t, "agent .rpm", run(t, "rpm", "-qp", "--queryformat", "%{NAME} %{VERSION} %{RELEASE} %{ARCH}\n", b.AgentRPM),
		"tally-agent 1.0.0 1 x86_64")
	wantFiles(t, "agent .rpm", run(t, "rpm", "-qlpv", b.AgentRPM), map[string]string{
		"/usr/bin/tally-agent":                        "-rwxr-xr-x root/root",
		"/usr/lib/systemd/system/tally-agent.service": "-rw-r--r-- root/root",
	})
	scripts := run(t, "rpm", "-qp", "--scripts", b.AgentRPM)
	pre := section(scripts, "preuninstall scriptlet")
	contains(t, "agent %preun", pre, `if [ "${1:-0}" -eq 0 ]; then`+"\n\tgoodbye", "uninstall --package")
	contains(t, "agent %postun", section(scripts, "postuninstall scriptlet"), `if [ "${1:-0}" -eq 0 ]; then`+"\n\tpurge")
	contains(t, "agent %post", section(scripts, "postinstall scriptlet"), `[ "${1:-1}" -gt 1 ] && upgrading=1`)

	wantFiles(t, "server .rpm", run(t, "rpm", "-qlpv", b.ServerRPM), map[string]string{
		"/usr/bin/tally-server":                        "-rwxr-xr-x root/root",
		"/usr/lib/systemd/system/tally-server.service": "-rw-r--r-- root/root",
	})
	contains(t, "server %pre", section(run(t, "rpm", "-qp", "--scripts", b.ServerRPM), "preinstall scriptlet"), "useradd --system")
}

// section is the scriptlet of rpm --scripts output that starts with head.
func section(scripts, head string) string {
	i := strings.Index(scripts, head)
	if i < 0 {
		return ""
	}
	rest := scripts[i+len(head):]
	if j := regexp.MustCompile(`\n[a-z]+ scriptlet \(using`).FindStringIndex(rest); j != nil {
		rest = rest[:j[0]]
	}
	return rest
}

// msiinfo shows the service the .msi installs, its file, the event log
// source, and the custom actions: enrollment between installing and
// starting the service, and the goodbye after the service stops, on an
// uninstall that is not an upgrade, inside the transaction so that a
// failure rolls the uninstall back.
func TestMSIInspected(t *testing.T) {
	need(t, "msiinfo", "msitools")
	b := packages(t)
	tables := run(t, "msiinfo", "tables", b.MSI)
	contains(t, "msi tables", tables, "ServiceInstall", "ServiceControl", "CustomAction", "File", "Registry")

	svc := run(t, "msiinfo", "export", b.MSI, "ServiceInstall")
	contains(t, "ServiceInstall", svc, "TallyAgent\tTally agent\t16\t2\t", `run --data "[CommonAppDataFolder]Tally\agent"`)
	contains(t, "ServiceControl", run(t, "msiinfo", "export", b.MSI, "ServiceControl"), "TallyAgent")
	contains(t, "File", run(t, "msiinfo", "export", b.MSI, "File"), "tally-agent.exe")
	contains(t, "Registry", run(t, "msiinfo", "export", b.MSI, "Registry"),
		`Services\EventLog\Application\TallyAgent`, "EventCreate.exe")
	contains(t, "Property", run(t, "msiinfo", "export", b.MSI, "Property"), "MsiHiddenProperties\tSECRET", "ProductVersion\t1.0.0")

	ca := run(t, "msiinfo", "export", b.MSI, "CustomAction")
	contains(t, "CustomAction", ca, "uninstall --package --data", "--force", `--server "[SERVER]"`, `--secret "[SECRET]"`)
	seq := map[string]int{}
	cond := map[string]string{}
	for _, line := range strings.Split(run(t, "msiinfo", "export", b.MSI, "InstallExecuteSequence"), "\n") {
		f := strings.Split(strings.TrimRight(line, "\r"), "\t")
		if len(f) == 3 {
			if n, err := strconv.Atoi(f[2]); err == nil {
				seq[f[0]], cond[f[0]] = n, f[1]
			}
		}
	}
	between := func(a, x, b string) {
		if !(seq[a] < seq[x] && seq[x] < seq[b]) {
			t.Errorf("%s at %d is not between %s (%d) and %s (%d)", x, seq[x], a, seq[a], b, seq[b])
		}
	}
	between("StopServices", "Goodbye", "RemoveFiles")
	between("StopServices", "GoodbyeForce", "RemoveFiles")
	between("InstallServices", "Enroll", "StartServices")
	between("InstallInitialize", "Goodbye", "InstallFinalize")
	between("RemoveFiles", "RemoveData", "InstallFinalize")
	for _, a := range []string{"Goodbye", "GoodbyeForce", "RemoveData"} {
		if !strings.Contains(cond[a], `REMOVE="ALL" AND NOT UPGRADINGPRODUCTCODE`) {
			t.Errorf("%s runs on %q: it would run on an upgrade too", a, cond[a])
		}
	}
}

// The .tar.gz holds the binary and its unit in one folder, owned by root;
// the macOS folder holds pkgbuild's payload, script and command line.
func TestArchiveAndMacLayout(t *testing.T) {
	b := packages(t)
	f, err := os.Open(b.AgentTarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	got := map[string]int64{}
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Uname != "root" || h.Uid != 0 {
			t.Errorf("%s is owned by %s (%d)", h.Name, h.Uname, h.Uid)
		}
		got[h.Name] = h.Mode
	}
	base := "tally-agent_1.0.0_linux_amd64/"
	want := map[string]int64{base: 0o755, base + "tally-agent": 0o755, base + "tally-agent.service": 0o644}
	if len(got) != len(want) {
		t.Errorf("archive holds %v, want %v", got, want)
	}
	for n, m := range want {
		if got[n] != m {
			t.Errorf("archive: %s mode %o, want %o", n, got[n], m)
		}
	}
	for p, mode := range map[string]os.FileMode{
		"root/usr/local/bin/tally-agent":                     0o755,
		"root/Library/LaunchDaemons/com.tallyhq.agent.plist": 0o644,
		"scripts/postinstall":                                0o755,
		"BUILD.txt":                                          0o644,
	} {
		st, err := os.Stat(filepath.Join(b.MacLayout, p))
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("macOS layout %s: %v %v, want mode %o", p, st.Mode(), err, mode)
		}
	}
	if out, err := exec.Command("sh", "-n", filepath.Join(b.MacLayout, "scripts/postinstall")).CombinedOutput(); err != nil {
		t.Errorf("postinstall: %v %s", err, out)
	}
}

// Every maintainer script as packaged is valid sh.
func TestMaintainerScriptsParse(t *testing.T) {
	for product, names := range map[string][]string{
		packaging.Agent:  {"postinst", "prerm", "postrm", "post.rpm", "preun.rpm", "postun.rpm"},
		packaging.Server: {"preinst", "postinst", "prerm", "postrm", "pre.rpm", "post.rpm", "preun.rpm", "postun.rpm"},
	} {
		for _, n := range names {
			s, err := packaging.Script(product, n)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(s), "#!/bin/sh\n") {
				t.Errorf("%s %s does not start with #!/bin/sh", product, n)
			}
			cmd := exec.Command("sh", "-n")
			cmd.Stdin = strings.NewReader(string(s))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s %s: %v %s", product, n, err, out)
			}
		}
	}
}
