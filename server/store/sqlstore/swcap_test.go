package sqlstore

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/store"
)

// Deltas add up: a computer's stored software set is capped. A delta or a
// full inventory that would pass the cap is not stored, the post says why
// in the inventory product's verdict, the seat stands, and the event is in
// the audit log; below the cap again, posts are stored.
func TestSoftwareSetCapped(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "sw.db"), Options{NoSync: true, MaxPackages: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.ImportLicenses(context.Background(), []store.LicenseImport{{License: store.License{ID: "L-inventory",
		Product: "inventory", Kind: "node", Duration: "perpetual", Seats: 10, IssuedAt: time.Now(), Issuer: "test"}, File: []byte("x")}}, "test"); err != nil {
		t.Fatal(err)
	}
	n := swEnroll(t, db)
	var set []protocol.Package
	for i := range 4 {
		set = append(set, pkg(fmt.Sprintf("p%d", i), 1))
	}
	ack := swSend(t, db, n, full(set...))
	if !ack.Stored {
		t.Fatalf("4 packages of 5: %+v", ack)
	}
	gen := ack.Generation

	refused := func(resp protocol.InventoryResponse) {
		t.Helper()
		if resp.Software == nil || resp.Software.Stored || resp.Software.SendFull || resp.Software.Generation != gen {
			t.Fatalf("over the cap: %+v", resp.Software)
		}
		if len(resp.Verdicts) != 1 || resp.Verdicts[0].Verdict != protocol.VerdictLicensed || !strings.Contains(resp.Verdicts[0].Reason, "limit of 5") {
			t.Fatalf("verdicts over the cap: %+v", resp.Verdicts)
		}
		wantSoftware(t, db, n, set...)
	}
	added := []protocol.Package{pkg("q1", 1), pkg("q2", 1)}
	refused(swPost(t, db, n, protocol.InventoryRequest{BasicHash: n.basicHash, Software: delta(gen, set, nil, added)}))
	refused(swPost(t, db, n, protocol.InventoryRequest{BasicHash: n.basicHash, Software: full(append(set, added...)...)}))
	ev, err := db.Events(context.Background(), store.EventFilter{Kind: store.EventSoftwareRefused})
	if err != nil || len(ev) != 2 || ev[0].ComputerID != n.computer {
		t.Fatalf("events: %+v %v", ev, err)
	}
	// Within the cap, a delta is stored.
	if ack := swSend(t, db, n, delta(gen, set, set[:1], added[:1])); !ack.Stored {
		t.Fatalf("within the cap: %+v", ack)
	}
}
