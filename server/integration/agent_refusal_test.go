package integration

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/agent/runner"
	"github.com/tallyhq/tally/agent/trusted"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
)

// holdsRecord reports whether agent a keeps a record of Activation ID id.
func holdsRecord(t *testing.T, a *agenttest.Agent, id string) bool {
	t.Helper()
	ts, err := trusted.Open(a.Dir.Path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ts.Get(id)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// activateOK activates id on a, failing the test unless a seat is bound.
func activateOK(t *testing.T, a *agenttest.Agent, id string) {
	t.Helper()
	r, err := a.Activate(actCtx(t, 30*time.Second), id)
	if err != nil || r.Result != protocol.ActivationOK {
		t.Fatalf("activate %s: %+v %v", id, r, err)
	}
}

// A computer deleted on the server: its agent's next contact ('run') is
// refused and drops its activation record and lease, so 'check' fails there
// while another machine activates the same quantity-1 ID. Before that, an
// unreachable server and a server with another fingerprint at the pinned
// address drop nothing.
func TestDeletedComputerDropsItsRecords(t *testing.T) {
	addr := freeUDPAddr(t)
	data := t.TempDir()
	srv := servertest.New(t, servertest.WithDataDir(data), listenOn(addr))
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 1, Kind: license.KindNodeLocked})
	srv.ImportLicense(t, iss, license.Payload{Product: "deployment", Seats: 1, Kind: license.KindConcurrent})
	id := newActivationID(t, srv, "monitor", 1)
	f := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	g := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	activateOK(t, f, id)
	if lr, err := f.LeaseCheckout(actCtx(t, 30*time.Second), "deployment", time.Hour); err != nil || !lr.Granted {
		t.Fatalf("lease checkout: %+v %v", lr, err)
	}

	// The server is down: nothing is dropped.
	srv.Stop()
	f.Close()
	if _, _, err := f.Once(actCtx(t, 30*time.Second)); err == nil {
		t.Fatal("a cycle succeeded with the server down")
	}
	if !holdsRecord(t, f, id) {
		t.Fatal("an unreachable server dropped the record")
	}
	// Another server (another fingerprint) at the pinned address: the agent
	// sends nothing and drops nothing.
	impostor := servertest.New(t, listenOn(addr))
	if _, _, err := f.Once(actCtx(t, 30*time.Second)); err == nil {
		t.Fatal("a cycle succeeded against another server")
	}
	impostor.Stop()
	f.Close()
	if !holdsRecord(t, f, id) {
		t.Fatal("a server with another fingerprint dropped the record")
	}
	if ls, _ := f.Dir.Leases(); len(ls) != 1 {
		t.Fatalf("leases after the outage: %+v", ls)
	}

	srv = servertest.New(t, servertest.WithDataDir(data), listenOn(addr))
	if _, err := srv.Admin.DeleteComputer(context.Background(), f.Enrollment().ComputerID, false); err != nil {
		t.Fatal(err)
	}
	_, _, err := f.Once(actCtx(t, 30*time.Second))
	if !errors.Is(err, runner.ErrRefused) {
		t.Fatalf("run on a deleted computer: %v", err)
	}
	if holdsRecord(t, f, id) {
		t.Fatal("the deleted computer keeps its activation record")
	}
	if _, err := f.Check(context.Background(), "monitor"); !errors.Is(err, runner.ErrNotLicensed) {
		t.Fatalf("check on the deleted computer: %v", err)
	}
	if ls, _ := f.Dir.Leases(); len(ls) != 0 {
		t.Fatalf("the deleted computer keeps its leases: %+v", ls)
	}
	g.Close()
	activateOK(t, g, id)
	if _, err := g.Check(context.Background(), "monitor"); err != nil {
		t.Fatalf("check on the machine that took the seat: %v", err)
	}
	noDrift(t, srv)
}

// A computer deleted with --block: 'activations --sync' on it is refused
// and removes the record, saying why; 'check' then fails.
func TestBlockedComputerDropsItsRecords(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 1, Kind: license.KindNodeLocked})
	id := newActivationID(t, srv, "monitor", 1)
	f := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	g := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	activateOK(t, f, id)
	if _, err := srv.Admin.DeleteComputer(context.Background(), f.Enrollment().ComputerID, true); err != nil {
		t.Fatal(err)
	}
	removed, err := f.SyncActivations(actCtx(t, 30*time.Second))
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Status != protocol.StatusRevoked {
		t.Fatalf("sync on a blocked computer: %v", err)
	}
	if len(removed) != 1 || removed[0].ActivationID != id || removed[0].Reason == "" {
		t.Fatalf("removed %+v", removed)
	}
	if _, err := f.Check(context.Background(), "monitor"); !errors.Is(err, runner.ErrNotLicensed) {
		t.Fatalf("check on the blocked computer: %v", err)
	}
	activateOK(t, g, id)
	noDrift(t, srv)
}
