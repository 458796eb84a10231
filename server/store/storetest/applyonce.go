package storetest

import (
	"errors"
	"reflect"
	"testing"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
)

// The plug-ins of the built-in catalog's products, one per rule of seed
// 001 (see server/catalog/builtin.toml).
var (
	monitor    = protocol.Plugin{Name: "monitor", Version: "2.0", BuildDate: "2026-01-01"}
	inventory7 = protocol.Plugin{Name: "inventory", Version: "7.1", BuildDate: "2026-01-01"}
	inventory6 = protocol.Plugin{Name: "inventory", Version: "6.5", BuildDate: "2025-01-01"}
	patch7     = protocol.Plugin{Name: "patch", Version: "7.0", BuildDate: "2026-01-01"}
	patch6     = protocol.Plugin{Name: "patch", Version: "6.5", BuildDate: "2025-01-01"}
	swm7       = protocol.Plugin{Name: "software-management", Version: "7.1", BuildDate: "2026-01-01"}
	swm6       = protocol.Plugin{Name: "software-management", Version: "6.3", BuildDate: "2025-01-01"}
	deploy7    = protocol.Plugin{Name: "deployment", Version: "7.1", BuildDate: "2026-01-01"}
	deploy6    = protocol.Plugin{Name: "deployment", Version: "6.2", BuildDate: "2025-01-01"}
)

// verdictOf is the verdict on product among vs, not-applicable when the
// answer names none.
func verdictOf(vs []protocol.ProductVerdict, product string) protocol.Verdict {
	for _, v := range vs {
		if v.Product == product {
			return v.Verdict
		}
	}
	return protocol.VerdictNotApplicable
}

func wantVerdict(t tb, vs []protocol.ProductVerdict, product string, want protocol.Verdict) {
	t.Helper()
	if got := verdictOf(vs, product); got != want {
		t.Fatalf("%s: verdict %s, want %s (verdicts %+v)", product, got, want, vs)
	}
}

// A wrong secret enrolls nothing; enrolling the same key again is
// idempotent; a new key with the hints of a machine whose old key is
// silent is that machine re-imaged, not a second computer.
func testEnrollment(t *testing.T, e *env) {
	p, _ := e.enrollParams(t, "intruder", protocol.Hints{InstanceID: "intruder"})
	p.Request.Secret = "not-the-secret"
	before := e.auditLog(t)
	if _, err := e.enrollAs(p); !errors.Is(err, store.ErrBadSecret) {
		t.Fatalf("enroll with a wrong secret: %v, want ErrBadSecret", err)
	}
	if page, err := e.s.ListComputers(e.ctx, store.ComputerFilter{}); err != nil || len(page.Computers) != 0 {
		t.Fatalf("after a refused enrollment: %d computers, %v", len(page.Computers), err)
	}
	if _, err := e.s.Node(e.ctx, p.NodeID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("node of a refused enrollment: %v, want ErrNotFound", err)
	}
	if after := e.auditLog(t); !reflect.DeepEqual(after, before) {
		t.Fatalf("a refused enrollment changed the audit log: %+v", after)
	}

	p, _ = e.enrollParams(t, "pc-a", protocol.Hints{InstanceID: "inst-a", MachineID: "0123456789abcdef0123456789abcdef"})
	first, err := e.enrollAs(p)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.enrollAs(p)
	if err != nil || !again.Existing || again.ComputerID != first.ComputerID {
		t.Fatalf("enrolling the same key again: %+v, %v; want the same computer %d, existing", again, err, first.ComputerID)
	}
	c, err := e.s.Computer(e.ctx, first.ComputerID)
	if err != nil || c.Hostname != "pc-a" || c.Status != "Active" || c.NodeID != p.NodeID {
		t.Fatalf("computer after enrollment: %+v, %v", c, err)
	}

	// Re-imaged: a new key, the same hints.
	q, _ := e.enrollParams(t, "pc-a", p.Request.Hints)
	re, err := e.enrollAs(q)
	if err != nil || !re.Reenrolled || re.ComputerID != first.ComputerID {
		t.Fatalf("re-imaged machine: %+v, %v; want computer %d re-enrolled", re, err, first.ComputerID)
	}
	if page, _ := e.s.ListComputers(e.ctx, store.ComputerFilter{}); len(page.Computers) != 1 {
		t.Fatalf("a re-imaged machine became %d computers", len(page.Computers))
	}
	if n, err := e.s.Node(e.ctx, p.NodeID); err != nil || !n.Revoked {
		t.Fatalf("old key of a re-imaged machine: %+v, %v; want revoked", n, err)
	}
	if len(e.events(t, store.EventFilter{Kind: store.EventReenrolled, ComputerID: first.ComputerID})) != 1 {
		t.Error("the re-enrollment is not in the audit log")
	}
}

// A repeated (node, sequence) is answered with the first outcome, even
// when the facts changed since or the repeat carries another body, and
// changes nothing.
func testApplyOnce(t *testing.T, e *env) {
	e.importLicense(t, license.Payload{ID: "L-mon", Product: "monitor", Seats: 1})
	a, b := e.enroll(t), e.enroll(t)

	first, err := e.postInventoryAt(a, 1, protocol.InventoryRequest{Basic: a.basic(monitor)})
	if err != nil || first.Repeat {
		t.Fatalf("first post: %+v, %v", first, err)
	}
	wantVerdict(t, first.Body.Verdicts, "monitor", protocol.VerdictLicensed)
	before := e.auditLog(t)

	// The same sequence number, another body (the plug-in gone): the first
	// answer, the seat kept.
	again, err := e.postInventoryAt(a, 1, protocol.InventoryRequest{Basic: a.basic()})
	if err != nil || !again.Repeat || !reflect.DeepEqual(again.Body, first.Body) {
		t.Fatalf("repeat: %+v, %v; want the first answer %+v as a repeat", again, err, first.Body)
	}
	if after := e.auditLog(t); !reflect.DeepEqual(after, before) {
		t.Fatalf("a repeat wrote to the audit log: %d events before, %d after", len(before), len(after))
	}
	e.wantHolders(t, "monitor", a)

	// b is refused the one seat; once a frees it, b's repeat is still the
	// refusal, and b takes nothing.
	refused, err := e.postInventoryAt(b, 7, protocol.InventoryRequest{Basic: b.basic(monitor)})
	if err != nil {
		t.Fatal(err)
	}
	wantVerdict(t, refused.Body.Verdicts, "monitor", protocol.VerdictDiscardedNoSeat)
	bye, err := e.goodbyeAt(a, 2, "monitor")
	if err != nil || bye.Repeat {
		t.Fatalf("goodbye: %+v, %v", bye, err)
	}
	e.wantHolders(t, "monitor")
	before = e.auditLog(t)
	again, err = e.postInventoryAt(b, 7, protocol.InventoryRequest{Basic: b.basic(monitor)})
	if err != nil || !again.Repeat || !reflect.DeepEqual(again.Body, refused.Body) {
		t.Fatalf("repeat of a refused post after the seat was freed: %+v, %v; want the refusal again", again, err)
	}
	byeAgain, err := e.goodbyeAt(a, 2, "monitor")
	if err != nil || !byeAgain.Repeat || !reflect.DeepEqual(byeAgain.Body, bye.Body) {
		t.Fatalf("repeated goodbye: %+v, %v; want %+v", byeAgain, err, bye.Body)
	}
	if after := e.auditLog(t); !reflect.DeepEqual(after, before) {
		t.Fatalf("repeats wrote to the audit log: %d events before, %d after", len(before), len(after))
	}
	e.wantHolders(t, "monitor")

	// A new number is a new request: b now takes the seat.
	if r, err := e.postInventoryAt(b, 8, protocol.InventoryRequest{Basic: b.basic(monitor)}); err != nil || r.Repeat {
		t.Fatalf("next post: %+v, %v", r, err)
	} else {
		wantVerdict(t, r.Body.Verdicts, "monitor", protocol.VerdictLicensed)
	}
	e.wantHolders(t, "monitor", b)

	// Requests of a node the store does not know, or of a revoked key,
	// are refused and change nothing.
	stranger, _ := e.enrollParams(t, "stranger", protocol.Hints{InstanceID: "stranger"})
	ghost := &node{id: stranger.NodeID, hostname: "stranger", hints: stranger.Request.Hints}
	if _, err := e.postInventory(ghost, protocol.InventoryRequest{Basic: ghost.basic(monitor)}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("post of an unknown node: %v, want ErrNotFound", err)
	}
	if _, err := e.s.DeleteComputer(e.ctx, a.computer, false, "admin:alice"); err != nil {
		t.Fatal(err)
	}
	before = e.auditLog(t)
	if _, err := e.postInventory(a, protocol.InventoryRequest{Basic: a.basic(monitor)}); !errors.Is(err, store.ErrRevoked) {
		t.Fatalf("post of a deleted computer's key: %v, want ErrRevoked", err)
	}
	if after := e.auditLog(t); !reflect.DeepEqual(after, before) {
		t.Fatal("a refused post wrote to the audit log")
	}
	e.wantHolders(t, "monitor", b)
}

// Check-ins, activations and leases are applied once too.
func testApplyOnceOtherRequests(t *testing.T, e *env) {
	e.importLicense(t, license.Payload{ID: "L-dep6", Product: "deployment-6", Seats: 1})
	e.importLicense(t, license.Payload{ID: "L-nl", Product: "monitor", Seats: 2, Kind: license.KindNodeLocked})
	e.importLicense(t, license.Payload{ID: "L-cc", Product: "monitor", Seats: 1, Kind: license.KindConcurrent})
	act, err := e.s.CreateActivation(e.ctx, "monitor", 1, nil, "admin:alice")
	if err != nil {
		t.Fatal(err)
	}
	a, b := e.enroll(t), e.enroll(t)

	in, err := e.checkInAt(a, 1, deploy6)
	if err != nil {
		t.Fatal(err)
	}
	wantVerdict(t, in.Body.Verdicts, "deployment-6", protocol.VerdictLicensed)
	if again, err := e.checkInAt(a, 1, deploy6); err != nil || !again.Repeat || !reflect.DeepEqual(again.Body, in.Body) {
		t.Fatalf("repeated check-in: %+v, %v", again, err)
	}

	on, err := e.activateAt(a, 2, act.ID)
	if err != nil || on.Body.Result != protocol.ActivationOK {
		t.Fatalf("activate: %+v, %v", on, err)
	}
	if again, err := e.activateAt(a, 2, act.ID); err != nil || !again.Repeat || !reflect.DeepEqual(again.Body, on.Body) {
		t.Fatalf("repeated activation: %+v, %v; want the first answer (its record) again", again, err)
	}
	// b's refusal stays a refusal when repeated after a returned the seat.
	no, err := e.activateAt(b, 1, act.ID)
	if err != nil || no.Body.Result != protocol.ActivationNoSeat {
		t.Fatalf("second activation of a quantity of 1: %+v, %v", no, err)
	}
	if r, err := e.deactivate(a, act.ID); err != nil || r.Result != protocol.ActivationReturned {
		t.Fatalf("deactivate: %+v, %v", r, err)
	}
	if again, err := e.activateAt(b, 1, act.ID); err != nil || !again.Repeat || again.Body.Result != protocol.ActivationNoSeat {
		t.Fatalf("repeated refused activation: %+v, %v", again, err)
	}
	if got, err := e.s.Activation(e.ctx, act.ID); err != nil || got.InUse != 0 {
		t.Fatalf("Activation ID after the repeats: %+v, %v; want no seat in use", got, err)
	}

	out, err := e.leaseAt(a, 10, "monitor", 10*60e9)
	if err != nil || !out.Body.Granted {
		t.Fatalf("lease checkout: %+v, %v", out, err)
	}
	if _, err := e.leaseAt(a, 11, "monitor", checkin); err != nil {
		t.Fatal(err)
	}
	if again, err := e.leaseAt(a, 10, "monitor", 10*60e9); err != nil || !again.Repeat || !reflect.DeepEqual(again.Body, out.Body) {
		t.Fatalf("repeated checkout: %+v, %v", again, err)
	}
	if ls, err := e.s.Leases(e.ctx); err != nil || len(ls) != 0 {
		t.Fatalf("a repeated checkout after the check-in took a lease again: %+v, %v", ls, err)
	}
}

// A sequence number below what the store remembers is refused, never
// applied a second time, and changes nothing; numbers may arrive out of
// order within the window.
func testStaleSequence(t *testing.T, e *env) {
	e.importLicense(t, license.Payload{ID: "L-mon", Product: "monitor", Seats: 5})
	n := e.enroll(t)
	newest := uint64(3 * store.SeqWindow)
	if r, err := e.postInventoryAt(n, newest, protocol.InventoryRequest{Basic: n.basic(monitor)}); err != nil {
		t.Fatal(err)
	} else {
		wantVerdict(t, r.Body.Verdicts, "monitor", protocol.VerdictLicensed)
	}
	before := e.auditLog(t)
	for _, seq := range []uint64{1, newest - store.SeqWindow - 1, newest - 2*store.SeqWindow} {
		if _, err := e.postInventoryAt(n, seq, protocol.InventoryRequest{Basic: n.basic()}); !errors.Is(err, store.ErrStaleSeq) {
			t.Fatalf("seq %d, newest %d: %v, want ErrStaleSeq", seq, newest, err)
		}
		if _, err := e.goodbyeAt(n, seq, ""); !errors.Is(err, store.ErrStaleSeq) {
			t.Fatalf("goodbye with seq %d, newest %d: %v, want ErrStaleSeq", seq, newest, err)
		}
	}
	if after := e.auditLog(t); !reflect.DeepEqual(after, before) {
		t.Fatal("a refused stale request wrote to the audit log")
	}
	e.wantHolders(t, "monitor", n)
	if c := e.computer(t, n); c.Status != "Active" || len(c.Flags) != 0 {
		t.Fatalf("computer after stale requests: status %s flags %v", c.Status, c.Flags)
	}
	// Out of order, inside the window: applied once, then a repeat.
	inside := newest - 5
	r, err := e.postInventoryAt(n, inside, protocol.InventoryRequest{Basic: n.basic(monitor)})
	if err != nil || r.Repeat {
		t.Fatalf("seq %d inside the window: %+v, %v; want applied", inside, r, err)
	}
	if r, err := e.postInventoryAt(n, inside, protocol.InventoryRequest{Basic: n.basic()}); err != nil || !r.Repeat {
		t.Fatalf("seq %d again: %+v, %v; want a repeat", inside, r, err)
	}
	e.wantHolders(t, "monitor", n)
}
