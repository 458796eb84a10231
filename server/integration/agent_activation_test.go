package integration

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/agent/runner"
	"github.com/tallyhq/tally/agent/trusted"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

func actCtx(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

// Real agents: a record verifies on its own machine only; an edited or
// copied record fails with a clear error; an admin return frees the seat of
// a machine that is gone, and when that machine comes back its record is
// revoked and removed.
func TestAgentActivationRecords(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 5, Kind: license.KindNodeLocked})
	act, err := srv.Admin.CreateActivation(context.Background(), adminapi.CreateActivationRequest{Product: "monitor", Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	b := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	resp, err := a.Activate(actCtx(t, 30*time.Second), act.ID)
	if err != nil || resp.Result != protocol.ActivationOK {
		t.Fatalf("activate: %+v %v", resp, err)
	}
	if _, err := a.Check(context.Background(), "monitor"); err != nil {
		t.Fatalf("check on its own machine: %v", err)
	}
	again, err := a.Activate(actCtx(t, 30*time.Second), act.ID)
	if err != nil || again.Result != protocol.ActivationAlready {
		t.Fatalf("activating twice: %+v %v", again, err)
	}
	if r, _ := b.Activate(actCtx(t, 30*time.Second), act.ID); r.Result != protocol.ActivationNoSeat {
		t.Fatalf("second machine: %+v", r)
	}

	// The record copied to the other machine does not verify there.
	rec, err := os.ReadFile(filepath.Join(a.Dir.Path, trusted.Dir, act.ID+".rec"))
	if err != nil {
		t.Fatal(err)
	}
	bt, _ := trusted.Open(b.Dir.Path)
	if err := bt.Put(act.ID, rec); err != nil {
		t.Fatal(err)
	}
	_, err = b.Check(context.Background(), "monitor")
	if !errors.Is(err, runner.ErrNotLicensed) || !(strings.Contains(err.Error(), "another machine") || strings.Contains(err.Error(), "another agent identity")) {
		t.Fatalf("copied record: %v", err)
	}
	_ = bt.Remove(act.ID)
	// Edited by one byte: damaged.
	at, _ := trusted.Open(a.Dir.Path)
	bad := append([]byte(nil), rec...)
	bad[len(bad)/2] ^= 0x01
	if err := at.Put(act.ID, bad); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Check(context.Background(), "monitor"); err == nil || !strings.Contains(err.Error(), "damaged or was edited") {
		t.Fatalf("edited record: %v", err)
	}
	if err := at.Put(act.ID, rec); err != nil {
		t.Fatal(err)
	}

	// The machine is lost: an admin returns its seat; another takes it.
	if _, err := srv.Admin.ReturnActivation(context.Background(), act.ID, a.Enrollment().ComputerID); err != nil {
		t.Fatal(err)
	}
	if r, err := b.Activate(actCtx(t, 30*time.Second), act.ID); err != nil || r.Result != protocol.ActivationOK {
		t.Fatalf("after the return: %+v %v", r, err)
	}
	// The lost machine comes back: at its next contact the record is
	// revoked and removed.
	if _, _, err := a.Once(actCtx(t, 60*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := at.Get(act.ID); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the orphaned record is still on the machine: %v", err)
	}
	if _, err := a.Check(context.Background(), "monitor"); !errors.Is(err, runner.ErrNotLicensed) {
		t.Fatalf("check after revocation: %v", err)
	}
	noDrift(t, srv)
}

// Deactivate while the server is down: the record goes at once, the
// return waits in the spool, and when the server is back the seat is freed
// exactly once.
func TestAgentDeactivateWhileServerDown(t *testing.T) {
	addr := freeUDPAddr(t)
	data := t.TempDir()
	srv := servertest.New(t, servertest.WithDataDir(data), listenOn(addr))
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 1, Kind: license.KindNodeLocked})
	act, err := srv.Admin.CreateActivation(context.Background(), adminapi.CreateActivationRequest{Product: "monitor", Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	b := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	if r, err := a.Activate(actCtx(t, 30*time.Second), act.ID); err != nil || r.Result != protocol.ActivationOK {
		t.Fatalf("activate: %+v %v", r, err)
	}
	srv.Stop()
	a.Close() // drop the connection to the stopped server
	res, err := a.Deactivate(actCtx(t, 5*time.Second), act.ID)
	if err != nil || !res.Queued || !res.HadRecord {
		t.Fatalf("deactivate with the server down: %+v %v", res, err)
	}
	if _, err := a.Check(context.Background(), "monitor"); !errors.Is(err, runner.ErrNotLicensed) {
		t.Fatalf("the record outlived the deactivation: %v", err)
	}

	srv2 := servertest.New(t, servertest.WithDataDir(data), listenOn(addr))
	b.Close()
	if r, err := b.Activate(actCtx(t, 30*time.Second), act.ID); err != nil || r.Result != protocol.ActivationNoSeat {
		t.Fatalf("before the queued return arrives: %+v %v", r, err)
	}
	fr, err := a.Flush(actCtx(t, 30*time.Second))
	if err != nil || fr.Sent != 1 {
		t.Fatalf("flush: %+v %v", fr, err)
	}
	if r, err := b.Activate(actCtx(t, 30*time.Second), act.ID); err != nil || r.Result != protocol.ActivationOK {
		t.Fatalf("after the return arrived: %+v %v", r, err)
	}
	// Deactivating again (the record is gone, the seat too) frees nothing.
	res, err = a.Deactivate(actCtx(t, 30*time.Second), act.ID)
	if err != nil || res.Queued || res.Answer.Result != protocol.ActivationNotHeld {
		t.Fatalf("second deactivation: %+v %v", res, err)
	}
	got, _ := srv2.Admin.Activation(context.Background(), act.ID)
	if got.InUse != 1 || len(got.Holders) != 1 || got.Holders[0].ComputerID != b.Enrollment().ComputerID {
		t.Fatalf("activation %+v", got)
	}
	ev, _ := srv2.Admin.Events(context.Background(), url.Values{"kind": {store.EventActReturned}})
	returned := 0
	for _, e := range ev {
		if e.ComputerID == a.Enrollment().ComputerID {
			returned++
		}
	}
	if returned != 1 {
		t.Fatalf("the seat was returned %d times", returned)
	}
	noDrift(t, srv2)
}

// A lease holder killed without checking in loses its seat after the TTL,
// and another client gets it; while it ran, its heartbeats kept the seat.
// The built binaries.
func TestAgentLeaseHolderKilled(t *testing.T) {
	serverBin, agentBin := binaries(t)
	data := t.TempDir()
	p := startServerBinary(t, serverBin, data)
	key, _ := license.NewIssuerKey()
	pub, _ := license.EncodePublicKey(key.Public().(ed25519.PublicKey))
	if _, err := daemon.TrustIssuer(datadir.Dir{Path: data}, pub); err != nil {
		t.Fatal(err)
	}
	file, _ := license.Issue(key, license.Payload{Product: "monitor", Seats: 1, Kind: license.KindConcurrent, Duration: license.Perpetual, IssuedAt: time.Now().Unix()})
	admin := p.admin(t)
	if _, err := admin.ImportLicenses(context.Background(), []adminapi.LicenseFile{{Name: "c.lic", Data: string(file)}}); err != nil {
		t.Fatal(err)
	}
	info, _ := admin.EnrollInfo(context.Background())
	enroll := func(name string) string {
		dir := filepath.Join(t.TempDir(), name)
		if out, code := runBin(t, agentBin, "enroll", "--server", info.Server, "--fingerprint", info.Fingerprint, "--secret", info.Secret,
			"--machine-id", fmt.Sprintf("lease-%s-%d", name, time.Now().UnixNano()), "--data", dir); code != 0 {
			t.Fatalf("enroll %s: %s", name, out)
		}
		return dir
	}
	holder, other := enroll("holder"), enroll("other")
	if out, code := runBin(t, agentBin, "lease", "checkout", "monitor", "--ttl", "3s", "--data", holder); code != 0 {
		t.Fatalf("checkout: %d %s", code, out)
	}
	run := exec.Command(agentBin, "run", "--interval", "1h", "--data", holder)
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run.Process.Kill(); run.Wait() })
	time.Sleep(5 * time.Second) // longer than the TTL: only heartbeats keep the lease
	out, code := runBin(t, agentBin, "lease", "checkout", "monitor", "--ttl", "3s", "--data", other)
	if code != 10 || !strings.Contains(out, "expected back") {
		t.Fatalf("while the holder runs: exit %d, %s", code, out)
	}
	if err := run.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	run.Wait()
	killed := time.Now()
	deadline := killed.Add(10 * time.Second)
	for {
		out, code = runBin(t, agentBin, "lease", "checkout", "monitor", "--ttl", "3s", "--data", other)
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the killed holder's seat never came back: exit %d, %s", code, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if waited := time.Since(killed); waited > 4*time.Second+time.Second {
		t.Fatalf("the seat came back %s after the kill; the TTL is 3s", waited)
	}
	ls, _ := admin.Leases(context.Background())
	if len(ls) != 1 {
		t.Fatalf("leases %+v", ls)
	}
	p.terminate(t)
}
