package sqlstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/recognize"
	"github.com/tallyhq/tally/server/store"
)

// swPrimary posts a basic inventory naming the computer's primary user,
// as the agent does, and keeps the basic's hash for the software posts.
func swPrimary(t *testing.T, db *DB, n *swNode, user *protocol.User) {
	t.Helper()
	basic := protocol.BasicInventory{Hostname: "h", OS: "linux", Hints: protocol.Hints{InstanceID: n.id},
		Plugins: []protocol.Plugin{{Name: "inventory", Version: "7.1"}}, PrimaryUser: user}
	req := protocol.InventoryRequest{Basic: basic}
	if err := req.Validate(); err != nil {
		t.Fatal(err)
	}
	swPost(t, db, n, req)
	n.basicHash = basic.Hash()
}

// userPositions is a per-user license's consumption as swlicense show,
// swlicense list and the compliance report each count it.
func userPositions(t *testing.T, db *DB, lic string) (show, list, report int) {
	t.Helper()
	ctx := context.Background()
	l, err := db.SoftwareLicense(ctx, lic)
	if err != nil {
		t.Fatal(err)
	}
	show = l.Consumed + l.Reserved
	all, err := db.SoftwareLicenseList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range all {
		if x.ID == l.ID {
			list = x.Consumed + x.Reserved
		}
	}
	snap, err := db.PositionSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range positions.Compliance(snap, positions.DateOf(time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)), positions.DefaultOverLicensedPercent).Rows {
		if r.License == l.ID {
			report = r.Consumed
		}
	}
	return show, list, report
}

// A per-user software license consumes one entitlement per distinct
// primary user of the live computers where its application is
// recognised: a user with two computers takes one until both are
// retired, a computer with no primary user takes one of its own, a
// Disabled user's installation still counts, and an allocated computer
// of a user not yet counted takes one more. A type typo is refused and
// changes nothing.
func TestUserSoftwareLicenseCountsUsers(t *testing.T) {
	ctx := context.Background()
	db := swStore(t, clock.NewManual(time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)))
	if _, err := db.AddApplications(ctx, []store.Application{{Name: "CAD Pro", Publisher: "Acme",
		Rules: []recognize.Rule{{Package: "cadpro*", Versions: ">=2.0", Source: "dpkg"}}}}, "test"); err != nil {
		t.Fatal(err)
	}
	// A typo in the type is refused, and adds nothing.
	if _, err := db.AddSoftwareLicense(ctx, store.SoftwareLicense{License: positions.License{Name: "CAD users", Type: "usr", Duration: positions.Perpetual},
		Applications: []string{"CAD Pro"}}, "test"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("type usr: %v, want invalid", err)
	}
	if all, err := db.SoftwareLicenseList(ctx); err != nil || len(all) != 0 {
		t.Fatalf("after the refused add: %+v, %v", all, err)
	}
	lic, err := db.AddSoftwareLicense(ctx, store.SoftwareLicense{License: positions.License{Name: "CAD users", Type: positions.TypeUser,
		Duration: positions.Perpetual, Extra: 2}, Applications: []string{"CAD Pro"}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	want := func(n int, why string) {
		t.Helper()
		if show, list, report := userPositions(t, db, lic.ID); show != n || list != n || report != n {
			t.Fatalf("%s: show %d, list %d, report %d; want %d", why, show, list, report, n)
		}
	}
	alice := &protocol.User{Name: "alice", Domain: "CORP"}
	bob := &protocol.User{Name: "bob", Domain: "CORP"}
	cad := protocol.Package{Source: "dpkg", Name: "cadpro", Version: "2.1-1", Arch: "amd64"}
	cadData := protocol.Package{Source: "dpkg", Name: "cadpro-data", Version: "2.1-1", Arch: "amd64"}
	a1, a2, b1 := swEnroll(t, db), swEnroll(t, db), swEnroll(t, db)
	swPrimary(t, db, a1, alice)
	swPrimary(t, db, a2, alice)
	swPrimary(t, db, b1, bob)
	swSend(t, db, a1, full(cad, cadData, pkg("bash", 1)))
	swSend(t, db, a2, full(cad, pkg("bash", 1)))
	swSend(t, db, b1, full(cad))
	want(2, "alice on two computers, bob on one")
	if l, _ := db.SoftwareLicense(ctx, lic.ID); l.Raw != 4 {
		t.Fatalf("raw consumption %d, want 4 installations", l.Raw)
	}
	// Bob disabled: his installation is still there, and still licensed.
	if _, err := db.SetUserStatus(ctx, `CORP\bob`, "Disabled", "test"); err != nil {
		t.Fatal(err)
	}
	want(2, "bob disabled")
	if _, err := db.SetUserStatus(ctx, `CORP\bob`, "Deleted", "test"); err != nil {
		t.Fatal(err)
	}
	want(2, "bob deleted")
	if _, err := db.SetStatus(ctx, a1.computer, "Retired", "test"); err != nil {
		t.Fatal(err)
	}
	want(2, "one of alice's computers retired")
	if _, err := db.SetStatus(ctx, a2.computer, "Disposed", "test"); err != nil {
		t.Fatal(err)
	}
	want(1, "both of alice's computers out of service")
	// A computer whose agent names no primary user counts as a user.
	c := swEnroll(t, db)
	swSend(t, db, c, full(cad))
	want(2, "a computer with no primary user added")
	// Allocated to alice's retired computer: nothing; to a live one of
	// hers where CAD is not installed: alice again, once.
	a3 := swEnroll(t, db)
	swPrimary(t, db, a3, alice)
	if _, err := db.AllocateSoftware(ctx, lic.ID, a3.computer, "test"); err != nil {
		t.Fatal(err)
	}
	want(3, "allocated to alice's third computer")
	swSend(t, db, a3, full(cad))
	want(3, "CAD installed on the allocated computer")
	// The deleted computer counts nothing, its user nothing through it.
	if _, err := db.DeleteComputer(ctx, c.computer, false, "test"); err != nil {
		t.Fatal(err)
	}
	want(2, "the computer with no primary user deleted")
	if _, err := db.SetStatus(ctx, a2.computer, "Active", "test"); err != nil {
		t.Fatal(err)
	}
	want(2, "alice's second computer back in service: alice counts once")
}
