package daemon_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/tallyhq/tally/common/logging"
	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

// A server whose database has a zeroed page (a failed sector, while it was
// stopped) refuses to start, saying how to restore; check-db finds the
// damage; with the file restored the server starts again.
func TestDamagedDatabaseRefusedAtStart(t *testing.T) {
	s := servertest.New(t)
	dir := s.Dir().Path
	s.Stop()
	file := datadir.Dir{Path: dir}.File(datadir.DatabaseFile)
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := daemon.CheckDatabase(context.Background(), dir); err != nil || !rep.OK() {
		t.Fatalf("check-db of a sound database: %+v %v", rep, err)
	}
	bad := append([]byte(nil), good...)
	const page = 4096
	n := len(bad)/page - 1 // the last page
	clear(bad[n*page : (n+1)*page])
	if err := os.WriteFile(file, bad, 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := daemon.Config{DataDir: dir, Listen: "127.0.0.1:0", Admin: "127.0.0.1:0", Logger: logging.Discard()}
	d, err := daemon.Start(cfg)
	if err == nil {
		d.Shutdown(context.Background())
		t.Fatal("the server started on a damaged database")
	}
	if !errors.Is(err, store.ErrDamaged) || !strings.Contains(err.Error(), ".recover") || !strings.Contains(err.Error(), "backup") {
		t.Fatalf("start: %v", err)
	}
	rep, err := daemon.CheckDatabase(context.Background(), dir)
	if err != nil || len(rep.Integrity) == 0 {
		t.Fatalf("check-db of the damaged database: %+v %v", rep, err)
	}

	if err := os.WriteFile(file, good, 0o600); err != nil {
		t.Fatal(err)
	}
	servertest.New(t, servertest.WithDataDir(dir))
}
