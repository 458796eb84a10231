package packaging_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quic-go/quic-go"

	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/installer/packaging"
	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

// dpkgRoot is an empty system for dpkg --root: its database and log, and
// an agent.conf the agent's commands read instead of this host's.
type dpkgRoot struct {
	t    *testing.T
	dir  string
	conf string
}

func newRoot(t *testing.T) *dpkgRoot {
	t.Helper()
	need(t, "dpkg", "dpkg")
	r := &dpkgRoot{t: t, dir: t.TempDir()}
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log", "etc/tally"} {
		if err := os.MkdirAll(filepath.Join(r.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r.conf = filepath.Join(r.dir, "etc/tally/agent.conf")
	for p, body := range map[string]string{
		"var/lib/dpkg/status":    "",
		"var/lib/dpkg/available": "",
		"etc/tally/agent.conf":   "# the package tests' agent: every command names its data folder\n",
	} {
		if err := os.WriteFile(filepath.Join(r.dir, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func (r *dpkgRoot) path(p string) string { return filepath.Join(r.dir, p) }

// dpkg runs dpkg on the root without a chroot, so the maintainer scripts
// run this host's sh with DPKG_ROOT set to the root; env adds variables.
func (r *dpkgRoot) dpkg(env []string, args ...string) (string, error) {
	r.t.Helper()
	full := append([]string{"--root", r.dir, "--force-script-chrootless", "--force-not-root",
		"--log", r.path("var/log/dpkg.log")}, args...)
	cmd := exec.Command("dpkg", full...)
	cmd.Env = append(os.Environ(), "PATH="+os.Getenv("PATH")+":/usr/sbin:/sbin")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// status is dpkg's status and version of tally-agent in the root.
func (r *dpkgRoot) status() string {
	r.t.Helper()
	out, _ := exec.Command("dpkg-query", "--admindir", r.path("var/lib/dpkg"), "-W", "-f", "${Status} ${Version}", "tally-agent").CombinedOutput()
	return strings.TrimSpace(string(out))
}

// agent runs the packaged tally-agent on the root's data folder.
func (r *dpkgRoot) agent(args ...string) (string, error) {
	r.t.Helper()
	args = append(args, "--config", r.conf, "--data", r.path("var/lib/tally-agent"))
	out, err := exec.Command(r.path("usr/bin/tally-agent"), args...).CombinedOutput()
	return string(out), err
}

// enroll enrolls the installed agent with srv, with the monitor plug-in,
// and posts once, which takes a monitor seat.
func (r *dpkgRoot) enroll(srv *servertest.Server, machine string) {
	r.t.Helper()
	for _, args := range [][]string{
		{"enroll", "--server", srv.Addr(), "--fingerprint", srv.Fingerprint(), "--secret", srv.Secret, "--machine-id", machine},
		{"plugin", "install", "monitor"},
		// The software inventory reads the root's (empty) package
		// database rather than this host's.
		{"run", "--once", "--root", r.dir},
	} {
		if out, err := r.agent(args...); err != nil {
			r.t.Fatalf("tally-agent %v: %v\n%s", args, err, out)
		}
	}
}

func consumed(t *testing.T, srv *servertest.Server) int {
	t.Helper()
	us, err := srv.Admin.Usage(context.Background(), "monitor")
	if err != nil || len(us) != 1 {
		t.Fatalf("usage: %v %v", us, err)
	}
	return us[0].Consumed
}

func uninstalledFlag(t *testing.T, srv *servertest.Server) bool {
	t.Helper()
	cs, err := srv.Admin.Computers(context.Background())
	if err != nil || len(cs) != 1 {
		t.Fatalf("computers: %+v %v", cs, err)
	}
	return slices.Contains(cs[0].Flags, store.FlagAgentUninstalled)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return !errors.Is(err, fs.ErrNotExist)
}

// The .deb really installed, upgraded, removed and purged by dpkg, with the
// agent enrolled with a real server on loopback: the install leaves the
// service to the enrollment, the upgrade (a newer build over it) keeps
// the seat, the removal's goodbye frees it, the purge removes the data.
func TestDpkgInstallUpgradeRemovePurge(t *testing.T) {
	b := packages(t)
	srv := servertest.New(t)
	srv.ImportLicense(t, srv.TrustNewIssuer(t), license.Payload{Product: "monitor", Seats: 2})
	r := newRoot(t)

	out, err := r.dpkg(nil, "--install", b.AgentDeb)
	if err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	contains(t, "install", out, "installed, not enrolled: the service stays disabled")
	if st := r.status(); st != "install ok installed 1.0.0-1" {
		t.Fatalf("after install: %q", st)
	}
	if st, err := os.Stat(r.path("var/lib/tally-agent")); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("data folder: %v %v", st, err)
	}
	r.enroll(srv, "dpkg-cycle")
	if n := consumed(t, srv); n != 1 {
		t.Fatalf("%d seats held after the first post", n)
	}

	out, err = r.dpkg(nil, "--install", b.AgentDebNewer)
	if err != nil {
		t.Fatalf("upgrade: %v\n%s", err, out)
	}
	if st := r.status(); st != "install ok installed 1.0.1-1" {
		t.Fatalf("after upgrade: %q", st)
	}
	if n := consumed(t, srv); n != 1 || uninstalledFlag(t, srv) {
		t.Fatalf("the upgrade said goodbye: %d seats held, output:\n%s", n, out)
	}
	if v, _ := exec.Command(r.path("usr/bin/tally-agent"), "version").CombinedOutput(); !strings.Contains(string(v), "1.0.1") {
		t.Fatalf("the upgraded binary is %q", v)
	}
	if out, err := r.agent("run", "--once", "--root", r.dir); err != nil {
		t.Fatalf("the upgraded agent cannot post: %v\n%s", err, out)
	}

	out, err = r.dpkg(nil, "--remove", "tally-agent")
	if err != nil {
		t.Fatalf("remove: %v\n%s", err, out)
	}
	contains(t, "remove", out, "The server freed 1 seats")
	if n := consumed(t, srv); n != 0 || !uninstalledFlag(t, srv) {
		t.Fatalf("after the removal %d seats are held (agent-uninstalled flag %v)", n, uninstalledFlag(t, srv))
	}
	if st := r.status(); st != "deinstall ok config-files 1.0.1-1" {
		t.Fatalf("after remove: %q", st)
	}
	if exists(r.path("usr/bin/tally-agent")) || !exists(r.path("var/lib/tally-agent/enrollment.json")) {
		t.Fatal("remove: the binary should be gone and the data folder kept")
	}

	if out, err := r.dpkg(nil, "--purge", "tally-agent"); err != nil {
		t.Fatalf("purge: %v\n%s", err, out)
	}
	if exists(r.path("var/lib/tally-agent")) {
		t.Fatal("purge kept the data folder")
	}
	if !exists(r.conf) {
		t.Fatal("purge removed the admin's agent.conf, which no package owns")
	}
}

// A removal while the server cannot be reached fails and says how to go
// on: dpkg keeps the package installed and the computer keeps its seat.
// Run again with the server back, it frees the seat, once. With
// TALLY_AGENT_FORCE_REMOVE=1 a removal goes through without the server,
// and the seat stays held for the stale-node policy.
func TestDpkgRemovalWithTheServerDown(t *testing.T) {
	b := packages(t)
	addr := freeUDPAddr(t)
	data := t.TempDir()
	listen := servertest.Option(func(c *daemon.Config) { c.Listen = addr })
	srv := servertest.New(t, servertest.WithDataDir(data), listen)
	srv.ImportLicense(t, srv.TrustNewIssuer(t), license.Payload{Product: "monitor", Seats: 2})
	r := newRoot(t)
	if out, err := r.dpkg(nil, "--install", b.AgentDeb); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	r.enroll(srv, "dpkg-server-down")

	srv.Stop()
	stop := refuseQUIC(t, addr)
	out, err := r.dpkg(nil, "--remove", "tally-agent")
	if err == nil {
		t.Fatalf("the removal went through with the server down:\n%s", out)
	}
	contains(t, "failed removal", out, "the server was not told", "package stays installed", "TALLY_AGENT_FORCE_REMOVE=1")
	// dpkg notes that removal was asked (deinstall), and keeps the package
	// installed.
	if st := r.status(); st != "deinstall ok installed 1.0.0-1" {
		t.Fatalf("after the failed removal: %q\n%s", st, out)
	}
	if !exists(r.path("usr/bin/tally-agent")) || !exists(r.path("var/lib/tally-agent/enrollment.json")) {
		t.Fatal("the failed removal removed files")
	}
	stop()

	srv = servertest.New(t, servertest.WithDataDir(data), listen)
	if n := consumed(t, srv); n != 1 {
		t.Fatalf("%d seats held while the package stays", n)
	}
	if out, err := r.dpkg(nil, "--remove", "tally-agent"); err != nil {
		t.Fatalf("remove with the server back: %v\n%s", err, out)
	}
	if n := consumed(t, srv); n != 0 {
		t.Fatalf("%d seats held after the removal", n)
	}
	ev, err := srv.Admin.Events(context.Background(), url.Values{"kind": {store.EventSeatFreed}})
	if err != nil || len(ev) != 1 {
		t.Fatalf("seat freed %d times: %v", len(ev), err)
	}

	// Forced: a second machine, the server gone for good.
	r2 := newRoot(t)
	if out, err := r2.dpkg(nil, "--install", b.AgentDeb); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	r2.enroll(srv, "dpkg-forced")
	srv.Stop()
	refuseQUIC(t, addr)
	out, err = r2.dpkg([]string{"TALLY_AGENT_FORCE_REMOVE=1"}, "--remove", "tally-agent")
	if err != nil {
		t.Fatalf("forced removal: %v\n%s", err, out)
	}
	contains(t, "forced removal", out, "The server was not told")
	if st := r2.status(); st != "deinstall ok config-files 1.0.0-1" {
		t.Fatalf("after the forced removal: %q", st)
	}
}

// The RPM scriptlets as packaged, run with RPM's arguments against the
// real agent and server (rpm itself installs only into a chroot): %preun
// and %postun with 1 (an upgrade) keep the seat and the data, with 0 (an
// erase) free the seat and remove the data.
func TestRPMScriptletsActOnTheirArgument(t *testing.T) {
	b := packages(t)
	srv := servertest.New(t)
	srv.ImportLicense(t, srv.TrustNewIssuer(t), license.Payload{Product: "monitor", Seats: 2})
	r := newRoot(t)
	exe, err := os.ReadFile(b.AgentBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(r.path("usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.path("usr/bin/tally-agent"), exe, 0o755); err != nil {
		t.Fatal(err)
	}
	scriptlet := func(name, arg string) string {
		t.Helper()
		s, err := packaging.Script(packaging.Agent, name)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, s, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sh", p, arg)
		cmd.Env = append(os.Environ(), "DPKG_ROOT="+r.dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, arg, err, out)
		}
		return string(out)
	}
	scriptlet("post.rpm", "1")
	r.enroll(srv, "rpm-scriptlets")
	scriptlet("post.rpm", "2")
	scriptlet("preun.rpm", "1")
	scriptlet("postun.rpm", "1")
	if n := consumed(t, srv); n != 1 || !exists(r.path("var/lib/tally-agent/enrollment.json")) {
		t.Fatalf("an upgrade's scriptlets freed the seat (%d held) or removed the data", n)
	}
	contains(t, "%preun 0", scriptlet("preun.rpm", "0"), "The server freed 1 seats")
	if n := consumed(t, srv); n != 0 {
		t.Fatalf("%d seats held after the erase's %%preun", n)
	}
	scriptlet("postun.rpm", "0")
	if exists(r.path("var/lib/tally-agent")) {
		t.Fatal("the erase's postun scriptlet kept the data folder")
	}
}

func freeUDPAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// refuseQUIC holds addr and refuses every QUIC handshake on it, so that the
// agent learns at once that it cannot reach its server, instead of after
// its dial timeout. stop frees the address.
func refuseQUIC(t *testing.T, addr string) (stop func()) {
	t.Helper()
	key, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := identity.SelfSigned(key, "not a tally server")
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("hold %s: %v", addr, err)
	}
	tr := &quic.Transport{Conn: udp}
	ln, err := tr.Listen(&tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"not-tally"}, MinVersion: tls.VersionTLS13}, nil)
	if err != nil {
		t.Fatalf("hold %s: %v", addr, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			conn.CloseWithError(0, "")
		}
	}()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			ln.Close()
			<-done
			tr.Close()
			udp.Close()
		}
	}
	t.Cleanup(stop)
	return stop
}
