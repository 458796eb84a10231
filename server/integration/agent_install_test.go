package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tallyhq/tally/installer"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

// treeOf lists every file, folder and symlink under root with its mode
// and a digest of its content (a symlink: its target), to compare trees.
func treeOf(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			v += " -> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		out[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// systemPaths is the state of the real paths an install without --root
// would write, to show that an install with --root left them alone.
func systemPaths(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range []string{installer.AgentBinary, installer.AgentConfig, installer.AgentData, installer.AgentUnit, installer.AgentWants} {
		fi, err := os.Lstat(p)
		if err != nil {
			out[p] = err.Error()
			continue
		}
		out[p] = fmt.Sprint(fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
	}
	return out
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// installed is an agent installed under a --root by the built binary.
type installed struct {
	root, bin, conf, data string
}

func installAgent(t *testing.T, agentBin, root string, args ...string) (installed, string) {
	t.Helper()
	out, code := runBin(t, agentBin, append([]string{"install", "--root", root}, args...)...)
	if code != 0 {
		t.Fatalf("install: exit %d\n%s", code, out)
	}
	return installed{root: root, bin: filepath.Join(root, installer.AgentBinary), conf: filepath.Join(root, installer.AgentConfig),
		data: filepath.Join(root, installer.AgentData)}, out
}

// run runs the installed binary on the installed configuration and data.
func (in installed) run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return runBin(t, in.bin, append(args, "--config", in.conf, "--data", in.data)...)
}

// Install into a --root, post, uninstall: the files install wrote are in
// place with their modes and the service is enabled for the next boot;
// after the uninstall the server has freed the node's seats (its
// node-locked one too) and the root is empty again, or holds only the data
// folder with --keep-data; nothing outside the root was touched.
func TestAgentInstallUninstallInRoot(t *testing.T) {
	_, agentBin := binaries(t)
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 2})
	srv.ImportLicense(t, iss, license.Payload{Product: "deployment", Seats: 2, Kind: license.KindNodeLocked})
	act, err := srv.Admin.CreateActivation(context.Background(), adminapi.CreateActivationRequest{Product: "deployment", Quantity: 2})
	if err != nil {
		t.Fatal(err)
	}
	before := systemPaths(t)
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprint("keep-data=", keep), func(t *testing.T) {
			root := t.TempDir()
			in, out := installAgent(t, agentBin, root, "--server", srv.Addr(), "--fingerprint", srv.Fingerprint(), "--secret", srv.Secret,
				"--plugins", "monitor", "--machine-id", fmt.Sprint("install-root-", keep))
			if !strings.Contains(out, "--root: no service was started") || !strings.Contains(out, "Enrolled with") {
				t.Fatalf("install said:\n%s", out)
			}
			for p, mode := range map[string]fs.FileMode{installer.AgentBinary: 0o755, installer.AgentConfig: 0o644,
				installer.AgentUnit: 0o644, installer.AgentData: fs.ModeDir | 0o700} {
				fi, err := os.Stat(filepath.Join(root, p))
				if err != nil || fi.Mode() != mode {
					t.Errorf("%s: %v, want %v (%v)", p, fi.Mode(), mode, err)
				}
			}
			if l, err := os.Readlink(filepath.Join(root, installer.AgentWants)); err != nil || l != installer.AgentUnit {
				t.Errorf("the unit is not enabled: %q %v", l, err)
			}
			unit, _ := os.ReadFile(filepath.Join(root, installer.AgentUnit))
			if !bytes.Contains(unit, []byte("ExecStart="+installer.AgentBinary+" run --data "+installer.AgentData)) {
				t.Errorf("unit:\n%s", unit)
			}
			conf, _ := os.ReadFile(in.conf)
			for _, want := range []string{"server = " + srv.Addr(), "plugins = monitor"} {
				if !bytes.Contains(conf, []byte(want)) {
					t.Errorf("agent.conf lacks %q:\n%s", want, conf)
				}
			}
			if out, code := in.run(t, "run", "--once"); code != 0 {
				t.Fatalf("run --once: %s", out)
			}
			if out, code := in.run(t, "activate", act.ID); code != 0 {
				t.Fatalf("activate: %s", out)
			}
			if u := usageOf(t, srv, "monitor"); u.Consumed != 1 {
				t.Fatalf("monitor consumed %d", u.Consumed)
			}
			args := []string{"uninstall", "--root", root}
			if keep {
				args = append(args, "--keep-data")
			}
			out, code := runBin(t, in.bin, args...)
			if code != 0 || !strings.Contains(out, "freed 2 seats") {
				t.Fatalf("uninstall: exit %d\n%s", code, out)
			}
			if u := usageOf(t, srv, "monitor"); u.Consumed != 0 {
				t.Fatalf("monitor consumed %d after the uninstall", u.Consumed)
			}
			ls, _ := srv.Admin.Licenses(context.Background())
			for _, l := range ls {
				if l.Held != 0 {
					t.Fatalf("license %s of %s holds %d seats after the uninstall", l.ID, l.Product, l.Held)
				}
			}
			left := treeOf(t, root)
			if keep {
				for p := range left {
					if p != "var" && p != "var/lib" && !strings.HasPrefix(p, "var/lib/tally-agent") {
						t.Errorf("%s is left with --keep-data", p)
					}
				}
				if _, ok := left["var/lib/tally-agent/node.key"]; !ok {
					t.Errorf("--keep-data lost the key: %v", left)
				}
				if _, ok := left["var/lib/tally-agent/"+installer.ManifestFile]; ok {
					t.Error("the manifest stays with --keep-data")
				}
			} else if len(left) > 0 {
				t.Errorf("left under the root: %v", left)
			}
		})
	}
	if after := systemPaths(t); !sameMap(before, after) {
		t.Fatalf("paths outside the root changed:\nbefore %v\nafter  %v", before, after)
	}
	cs, _ := srv.Admin.Computers(context.Background())
	for _, c := range cs {
		if !strings.Contains(fmt.Sprint(c.Flags), store.FlagAgentUninstalled) {
			t.Errorf("computer %d is not flagged %s: %+v", c.ID, store.FlagAgentUninstalled, c)
		}
	}
	noDrift(t, srv)
}

// Installing twice is an upgrade, even with the server down: the same
// node, the same spool (a post queued during the outage), plug-ins and
// node-locked records. Uninstalling with the server down removes nothing
// and exits 4; again with the server back, it completes and the seats
// are freed once.
func TestAgentInstallUpgradeAndUninstallAfterOutage(t *testing.T) {
	_, agentBin := binaries(t)
	addr := freeUDPAddr(t)
	srvData := t.TempDir()
	srv := servertest.New(t, servertest.WithDataDir(srvData), listenOn(addr))
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 2})
	srv.ImportLicense(t, iss, license.Payload{Product: "deployment", Seats: 2, Kind: license.KindNodeLocked})
	act, err := srv.Admin.CreateActivation(context.Background(), adminapi.CreateActivationRequest{Product: "deployment", Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	line := []string{"--server", srv.Addr(), "--fingerprint", srv.Fingerprint(), "--secret", srv.Secret, "--plugins", "monitor",
		"--machine-id", "install-upgrade"}
	in, _ := installAgent(t, agentBin, root, line...)
	if out, code := in.run(t, "run", "--once"); code != 0 {
		t.Fatalf("run --once: %s", out)
	}
	if out, code := in.run(t, "activate", act.ID); code != 0 {
		t.Fatalf("activate: %s", out)
	}
	cs, _ := srv.Admin.Computers(context.Background())
	if len(cs) != 1 {
		t.Fatalf("computers %+v", cs)
	}
	computer := cs[0].ID

	srv.Stop()
	stop := refuseQUIC(t, addr)
	if out, code := in.run(t, "run", "--once"); code != 4 {
		t.Fatalf("run --once with the server down: exit %d, %s", code, out)
	}
	if len(spoolSeqs(t, in.data)) == 0 {
		t.Fatal("nothing queued in the spool")
	}
	keeps := func() map[string]string {
		all := treeOf(t, in.data)
		for p := range all {
			// The status file records the attempts, the sequence counter
			// moves on by the enrollment attempt, the manifest notes the
			// upgrade.
			if p == "status.json" || p == "seq" || p == installer.ManifestFile || strings.HasSuffix(p, ".lock") {
				delete(all, p)
			}
		}
		return all
	}
	kept := keeps()
	out, code := runBin(t, agentBin, append([]string{"install", "--root", root}, line...)...)
	if code != 0 || !strings.Contains(out, "Upgraded") || !strings.Contains(out, "could not be reached") {
		t.Fatalf("install again with the server down: exit %d\n%s", code, out)
	}
	if now := keeps(); !sameMap(kept, now) {
		t.Fatalf("the upgrade changed the data folder:\nbefore %v\nafter  %v", kept, now)
	}
	// Without --secret too, as a configuration tool re-running it would.
	if out, code := runBin(t, agentBin, "install", "--root", root); code != 0 || !strings.Contains(out, "the enrollment is kept") {
		t.Fatalf("install again without flags: exit %d\n%s", code, out)
	}
	if now := keeps(); !sameMap(kept, now) {
		t.Fatalf("the second upgrade changed the data folder:\nbefore %v\nafter  %v", kept, now)
	}

	tree := treeOf(t, root)
	out, code = runBin(t, in.bin, "uninstall", "--root", root)
	if code != 4 || !strings.Contains(out, "nothing was removed") {
		t.Fatalf("uninstall with the server down: exit %d\n%s", code, out)
	}
	now := treeOf(t, root)
	for p, v := range tree {
		if strings.HasPrefix(p, "var/lib/tally-agent/spool") || p == "var/lib/tally-agent/status.json" || p == "var/lib/tally-agent/seq" {
			continue // the goodbye is queued
		}
		if now[p] != v {
			t.Errorf("%s changed with the server down: %q, now %q", p, v, now[p])
		}
	}
	stop()

	srv = servertest.New(t, servertest.WithDataDir(srvData), listenOn(addr))
	out, code = runBin(t, in.bin, "uninstall", "--root", root)
	if code != 0 || !strings.Contains(out, "freed 2 seats") {
		t.Fatalf("uninstall with the server back: exit %d\n%s", code, out)
	}
	if left := treeOf(t, root); len(left) > 0 {
		t.Errorf("left under the root: %v", left)
	}
	ls, _ := srv.Admin.Licenses(context.Background())
	for _, l := range ls {
		if l.Held != 0 {
			t.Fatalf("license %s holds %d seats after the uninstall", l.ID, l.Held)
		}
	}
	count := func(kind string) int {
		ev, err := srv.Admin.Events(context.Background(), url.Values{"kind": {kind}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range ev {
			if e.ComputerID == computer {
				n++
			}
		}
		return n
	}
	if n := count(store.EventUninstalled); n != 1 {
		t.Fatalf("%d goodbyes in the audit", n)
	}
	if n := count(store.EventSeatFreed) + count(store.EventActReturned); n != 2 {
		t.Fatalf("%d seats freed, want 2 (monitor and the Activation ID's)", n)
	}
	noDrift(t, srv)
}

// A wrong flag, a refused secret or an unreachable server on a first
// install leaves the root as it was, with a clear message and the exit code
// of the README's table; a manifest edited to name another file makes
// uninstall refuse to remove anything.
func TestAgentInstallBadInputLeavesNothing(t *testing.T) {
	_, agentBin := binaries(t)
	srv := servertest.New(t)
	fp := srv.Fingerprint()
	root := t.TempDir()
	down := freeUDPAddr(t)
	defer refuseQUIC(t, down)()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--fingerprint", fp, "--secret", "s"}, 2, "install needs --server and --fingerprint"},
		{[]string{"--server", "nohost", "--fingerprint", fp, "--secret", "s"}, 2, "want HOST:PORT"},
		{[]string{"--server", srv.Addr(), "--fingerprint", "abc", "--secret", "s"}, 2, "--fingerprint"},
		{[]string{"--server", srv.Addr(), "--fingerprint", fp}, 2, "install needs --secret"},
		{[]string{"--server", srv.Addr(), "--fingerprint", fp, "--secret", "s", "--plugins", "monitor,nosuch"}, 2, `no plug-in "nosuch"`},
		{[]string{"--server", srv.Addr(), "--fingerprint", fp, "--secret", "s", "--plugins", "Bad Name"}, 2, "--plugins"},
		{[]string{"--server", srv.Addr(), "--fingerprint", fp, "--secret", "s", "--root", filepath.Join(root, "missing")}, 2, "--root"},
		{[]string{"--server", srv.Addr(), "--fingerprint", fp, "--secret", "wrong"}, 3, "secret"},
		{[]string{"--server", down, "--fingerprint", fp, "--secret", srv.Secret}, 4, ""},
	} {
		args := append([]string{"install", "--root", root}, c.args...)
		out, code := runBin(t, agentBin, args...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("%v: exit %d, want %d with %q\n%s", c.args, code, c.code, c.want, out)
		}
		if left := treeOf(t, root); len(left) > 0 {
			t.Fatalf("%v left %v", c.args, left)
		}
	}
	// A bad configuration file under the root is a usage error too, and stays.
	os.MkdirAll(filepath.Join(root, "etc/tally"), 0o755)
	os.WriteFile(filepath.Join(root, installer.AgentConfig), []byte("intervall = 1h\n"), 0o644)
	if out, code := runBin(t, agentBin, "install", "--root", root, "--server", srv.Addr(), "--fingerprint", fp, "--secret", srv.Secret); code != 2 || !strings.Contains(out, "unknown key") {
		t.Errorf("bad agent.conf: exit %d\n%s", code, out)
	}
	os.RemoveAll(filepath.Join(root, "etc"))

	in, _ := installAgent(t, agentBin, root, "--server", srv.Addr(), "--fingerprint", fp, "--secret", srv.Secret, "--machine-id", "bad-input")
	victim := filepath.Join(root, "victim")
	os.WriteFile(victim, []byte("keep me"), 0o600)
	mp := filepath.Join(in.data, installer.ManifestFile)
	b, _ := os.ReadFile(mp)
	os.WriteFile(mp, bytes.Replace(b, []byte(`"path": "`+installer.AgentConfig+`"`), []byte(`"path": "/victim"`), 1), 0o600)
	tree := treeOf(t, root)
	out, code := runBin(t, in.bin, "uninstall", "--root", root)
	if code != 1 || !strings.Contains(out, "refusing to remove anything") {
		t.Fatalf("uninstall with an edited manifest: exit %d\n%s", code, out)
	}
	if now := treeOf(t, root); !sameMap(tree, now) {
		t.Fatalf("an edited manifest changed the root:\nbefore %v\nafter  %v", tree, now)
	}
}

// The plugins key of agent.conf is honoured by 'run': the plug-ins it
// lists are installed at start (their seats consumed by the post), those
// this build lacks are skipped with a warning, and removing a name removes
// nothing.
func TestAgentRunInstallsTheConfiguredPlugins(t *testing.T) {
	_, agentBin := binaries(t)
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 1})
	dir := filepath.Join(t.TempDir(), "agent")
	conf := filepath.Join(t.TempDir(), "agent.conf")
	if err := os.WriteFile(conf, []byte("plugins = monitor, teleport\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := runBin(t, agentBin, "enroll", "--server", srv.Addr(), "--fingerprint", srv.Fingerprint(), "--secret", srv.Secret,
		"--machine-id", "conf-plugins", "--data", dir, "--config", conf); code != 0 {
		t.Fatalf("enroll: %s", out)
	}
	out, code := runBin(t, agentBin, "run", "--once", "--data", dir, "--config", conf)
	if code != 0 || !strings.Contains(out, "teleport") {
		t.Fatalf("run --once: exit %d\n%s", code, out)
	}
	if u := usageOf(t, srv, "monitor"); u.Consumed != 1 {
		t.Fatalf("monitor consumed %d", u.Consumed)
	}
	os.WriteFile(conf, []byte("# no plug-ins listed\n"), 0o644)
	if out, code := runBin(t, agentBin, "run", "--once", "--data", dir, "--config", conf); code != 0 {
		t.Fatalf("run --once: %s", out)
	}
	out, _ = runBin(t, agentBin, "plugin", "list", "--data", dir, "--config", conf)
	if !regexpLine(out, `^monitor\s+\S+\s+\S+\s+yes`) {
		t.Fatalf("monitor was removed with its name:\n%s", out)
	}
	if u := usageOf(t, srv, "monitor"); u.Consumed != 1 {
		t.Fatalf("monitor consumed %d after its name left the file", u.Consumed)
	}
}

func regexpLine(out, re string) bool {
	for _, l := range strings.Split(out, "\n") {
		if ok, _ := regexp.MatchString(re, l); ok {
			return true
		}
	}
	return false
}

// uninstall --force with the server gone removes everything install wrote
// and says the seats are left to the stale-node policy; the uninstall
// flags that do not go together are usage errors that remove nothing.
func TestAgentUninstallForceAndFlagMistakes(t *testing.T) {
	_, agentBin := binaries(t)
	addr := freeUDPAddr(t)
	srv := servertest.New(t, listenOn(addr))
	root := t.TempDir()
	in, _ := installAgent(t, agentBin, root, "--server", srv.Addr(), "--fingerprint", srv.Fingerprint(), "--secret", srv.Secret,
		"--machine-id", "force")
	tree := treeOf(t, root)
	for _, bad := range [][]string{{"--purge-data"}, {"--package", "--keep-data"}, {"--config", in.conf}, {"extra"}} {
		out, code := runBin(t, in.bin, append([]string{"uninstall", "--root", root}, bad...)...)
		if code != 2 {
			t.Errorf("uninstall %v: exit %d\n%s", bad, code, out)
		}
		if now := treeOf(t, root); !sameMap(tree, now) {
			t.Fatalf("uninstall %v changed the root", bad)
		}
	}
	srv.Stop()
	defer refuseQUIC(t, addr)()
	out, code := runBin(t, in.bin, "uninstall", "--force", "--root", root)
	if code != 0 || !strings.Contains(out, "stale-node policy") {
		t.Fatalf("uninstall --force: exit %d\n%s", code, out)
	}
	if left := treeOf(t, root); len(left) > 0 {
		t.Fatalf("left under the root: %v", left)
	}
}

// Installing again with the server up is an upgrade the server sees as
// the same computer; after an uninstall that could not reach the server,
// it cancels the queued goodbye, so the agent keeps its key and its seats.
func TestAgentInstallAgainCancelsAnAbandonedUninstall(t *testing.T) {
	_, agentBin := binaries(t)
	addr := freeUDPAddr(t)
	srvData := t.TempDir()
	srv := servertest.New(t, servertest.WithDataDir(srvData), listenOn(addr))
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 2})
	root := t.TempDir()
	line := []string{"--server", srv.Addr(), "--fingerprint", srv.Fingerprint(), "--secret", srv.Secret, "--plugins", "monitor",
		"--machine-id", "install-again"}
	in, _ := installAgent(t, agentBin, root, line...)
	if out, code := in.run(t, "run", "--once"); code != 0 {
		t.Fatalf("run --once: %s", out)
	}
	cs, _ := srv.Admin.Computers(context.Background())
	if len(cs) != 1 {
		t.Fatalf("computers %+v", cs)
	}
	srv.Stop()
	stop := refuseQUIC(t, addr)
	if out, code := runBin(t, in.bin, "uninstall", "--root", root); code != 4 {
		t.Fatalf("uninstall with the server down: exit %d\n%s", code, out)
	}
	stop()
	srv = servertest.New(t, servertest.WithDataDir(srvData), listenOn(addr))
	out, code := runBin(t, agentBin, append([]string{"install", "--root", root}, line...)...)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("Enrolled already with %s as computer %d", srv.Addr(), cs[0].ID)) ||
		!strings.Contains(out, "cancels it") {
		t.Fatalf("install again: exit %d\n%s", code, out)
	}
	if out, code := in.run(t, "run", "--once"); code != 0 {
		t.Fatalf("run --once after the install: %s", out)
	}
	if now, _ := srv.Admin.Computers(context.Background()); len(now) != 1 || now[0].NodeID != cs[0].NodeID {
		t.Fatalf("computers after the upgrade: %+v, were %+v", now, cs)
	}
	if u := usageOf(t, srv, "monitor"); u.Consumed != 1 {
		t.Fatalf("monitor consumed %d after the upgrade", u.Consumed)
	}
}
