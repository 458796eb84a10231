package storetest

import (
	"reflect"
	"testing"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/license"
)

// A fresh store is at the newest schema version; opening it again (and
// again) migrates nothing, keeps everything, and still answers a
// request applied before as a repeat.
func testMigrations(t *testing.T, e *env) {
	if v, err := e.b.SchemaVersion(e.ctx, e.s); err != nil || v != e.b.Latest {
		t.Fatalf("fresh store at version %d, %v; want %d", v, err, e.b.Latest)
	}
	e.importLicense(t, license.Payload{ID: "L-mon", Product: "monitor", Seats: 2})
	n := e.enroll(t)
	first, err := e.postInventoryAt(n, 1, protocol.InventoryRequest{Basic: n.basic(monitor)})
	if err != nil {
		t.Fatal(err)
	}
	licenses := ok(e.s.Licenses(e.ctx))(t)
	computer := e.computer(t, n)
	log := e.auditLog(t)
	for range 2 {
		e.s = e.b.Reopen(t)
		if v, err := e.b.SchemaVersion(e.ctx, e.s); err != nil || v != e.b.Latest {
			t.Fatalf("reopened store at version %d, %v; want %d", v, err, e.b.Latest)
		}
		if got := ok(e.s.Licenses(e.ctx))(t); !reflect.DeepEqual(got, licenses) {
			t.Fatalf("licenses after reopening: %+v, want %+v", got, licenses)
		}
		if got := e.computer(t, n); !reflect.DeepEqual(got, computer) {
			t.Fatalf("computer after reopening: %+v, want %+v", got, computer)
		}
		if got := e.auditLog(t); !reflect.DeepEqual(got, log) {
			t.Fatalf("audit log after reopening: %d events, want %d", len(got), len(log))
		}
		again, err := e.postInventoryAt(n, 1, protocol.InventoryRequest{Basic: n.basic()})
		if err != nil || !again.Repeat || !reflect.DeepEqual(again.Body, first.Body) {
			t.Fatalf("request repeated after reopening: %+v, %v; want the first answer", again, err)
		}
	}
	e.wantHolders(t, "monitor", n)
}
