package storetest

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
)

// Licenses are imported all or none; the same file again changes nothing,
// another file under a taken ID is refused; and what a license grants comes
// from its signed file, never from the columns it was handed with: a file
// that no longer verifies grants nothing, and the license says why.
func testLicenseImport(t *testing.T, e *env) {
	good := e.issuer.Import(t, license.Payload{ID: "L-good", Product: "monitor", Seats: 2})
	unknown := e.issuer.Import(t, license.Payload{ID: "L-unknown", Product: "no-such-product", Seats: 2})
	before := e.auditLog(t)
	if _, err := e.s.ImportLicenses(e.ctx, []store.LicenseImport{good, unknown}, "admin:importer"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a batch with a license of an unknown product: %v, want ErrInvalid", err)
	}
	if ls := ok(e.s.Licenses(e.ctx))(t); len(ls) != 0 {
		t.Fatalf("a refused batch stored %+v", ls)
	}
	if !reflect.DeepEqual(e.auditLog(t), before) {
		t.Fatal("a refused batch wrote to the audit log")
	}

	ok(e.s.ImportLicenses(e.ctx, []store.LicenseImport{good}, "admin:importer"))(t)
	before = e.auditLog(t)
	ok(e.s.ImportLicenses(e.ctx, []store.LicenseImport{good}, "admin:importer"))(t)
	if !reflect.DeepEqual(e.auditLog(t), before) {
		t.Fatal("importing the same file again wrote to the audit log")
	}
	other := e.issuer.Import(t, license.Payload{ID: "L-good", Product: "monitor", Seats: 9})
	if _, err := e.s.ImportLicenses(e.ctx, []store.LicenseImport{other}, "admin:importer"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("another file under a taken ID: %v, want ErrConflict", err)
	}

	// Handed with 50 seats in its columns, a file that grants 1 grants 1.
	edited := e.issuer.Import(t, license.Payload{ID: "L-edited", Product: "inventory", Seats: 1})
	edited.License.Seats = 50
	ok(e.s.ImportLicenses(e.ctx, []store.LicenseImport{edited}, "admin:importer"))(t)
	a, b := e.enroll(t), e.enroll(t)
	wantVerdict(t, e.inventory(t, a, inventory7).Verdicts, "inventory", protocol.VerdictLicensed)
	wantVerdict(t, e.inventory(t, b, inventory7).Verdicts, "inventory", protocol.VerdictDiscardedNoSeat)
	if u := e.usage(t, "inventory", store.SeatNode); u.Granted != 1 || u.Consumed != 1 {
		t.Fatalf("a license whose columns say 50 and file 1: granted %d consumed %d", u.Granted, u.Consumed)
	}

	// A file changed after it was verified grants nothing.
	tampered := e.issuer.Import(t, license.Payload{ID: "L-tampered", Product: "deployment-6", Seats: 5})
	tampered.File = bytes.Replace(tampered.File, []byte("5 node seats"), []byte("6 node seats"), 1)
	ok(e.s.ImportLicenses(e.ctx, []store.LicenseImport{tampered}, "admin:importer"))(t)
	wantVerdict(t, ok(e.checkIn(a, deploy6))(t).Verdicts, "deployment-6", protocol.VerdictDeniedNoSeat)
	for _, l := range ok(e.s.Licenses(e.ctx))(t) {
		if (l.ID == "L-edited" || l.ID == "L-tampered") != (l.Problem != "") {
			t.Errorf("license %s: problem %q", l.ID, l.Problem)
		}
	}
}
