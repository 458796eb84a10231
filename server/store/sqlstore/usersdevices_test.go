package sqlstore_test

import (
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"

	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/engine"
	"github.com/tallyhq/tally/server/store"
)

// machine is an enrolled computer posting through the store as its agent
// would.
type machine struct {
	node     string
	computer int64
	host     string
	seq      uint64
}

// tb is what the helpers need of a test, a rapid one included.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

func (e *userEnv) machine(t tb, host string) *machine {
	t.Helper()
	if e.secret == "" {
		sec, err := e.db.CreateSecret(e.ctx, "devices", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		e.secret = sec.Value
	}
	key, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	id := identity.NodeID(pub)
	resp, err := e.db.Enroll(e.ctx, store.EnrollParams{NodeID: id, PublicKey: pub, Request: protocol.EnrollRequest{
		Secret: e.secret, Hostname: host, Hints: protocol.Hints{InstanceID: "inst-" + host}}})
	if err != nil {
		t.Fatal(err)
	}
	return &machine{node: id, computer: resp.ComputerID, host: host}
}

// post sends a basic inventory naming primary (nil: none) with the
// inventory 7 plug-in unless bare.
func (e *userEnv) post(t tb, m *machine, primary *protocol.User, bare bool, logged ...protocol.User) {
	t.Helper()
	m.seq++
	b := protocol.BasicInventory{CollectedAt: int64(m.seq), Hostname: m.host, Hints: protocol.Hints{InstanceID: "inst-" + m.host}, PrimaryUser: primary, Users: logged}
	if !bare {
		b.Plugins = []protocol.Plugin{{Name: "inventory", Version: "7.1", BuildDate: "2026-01-01"}}
	}
	req := protocol.InventoryRequest{Basic: b}
	if err := req.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.PostInventory(e.ctx, store.Request{NodeID: m.node, Seq: m.seq, Kind: protocol.KindInventory}, &req); err != nil {
		t.Fatalf("post: %v", err)
	}
}

func (e *userEnv) use(t tb, user string) store.UserUse {
	t.Helper()
	rows, err := e.db.UsersUseLicense(e.ctx, "inventory")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if strings.EqualFold(r.User, user) {
			return r
		}
	}
	t.Fatalf("%s not in the report: %+v", user, rows)
	return store.UserUse{}
}

func (e *userEnv) events(t testing.TB, kind string) []store.Event {
	t.Helper()
	ev, err := e.db.Events(e.ctx, store.EventFilter{Kind: kind})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

var alice = &protocol.User{Name: "alice", Domain: "CORP", Display: "Alice A."}

// Issue 18: a user with two devices and a token consumes one seat;
// removing the token keeps the seat (devices); retiring both devices
// frees it; each change audited with the user and the reason.
func TestDevicesAndTokenOneSeat(t *testing.T) {
	e := openUsers(t)
	e.userLicense(t, "U-1", 5)
	a, b := e.machine(t, "pc-a"), e.machine(t, "pc-b")
	e.post(t, a, alice, false)
	e.post(t, b, alice, false)
	tok := e.cred(t, `CORP\alice`, "token", nil)
	if got := e.held(t); got != 1 {
		t.Fatalf("two devices and a token hold %d seats, want 1", got)
	}
	if r := e.use(t, `CORP\alice`); r.Devices != 2 || r.Tokens != 1 || !r.Consumes {
		t.Fatalf("report %+v", r)
	}
	if _, err := e.db.EndCredential(e.ctx, tok.ID, "revoked", "admin:bob"); err != nil {
		t.Fatal(err)
	}
	if got := e.held(t); got != 1 {
		t.Fatalf("token removed, devices left: %d seats held, want 1", got)
	}
	if _, err := e.db.SetStatus(e.ctx, a.computer, "Retired", "admin:bob"); err != nil {
		t.Fatal(err)
	}
	if got := e.held(t); got != 1 {
		t.Fatalf("one device retired, one left: %d seats, want 1", got)
	}
	if _, err := e.db.SetStatus(e.ctx, b.computer, "Retired", "admin:bob"); err != nil {
		t.Fatal(err)
	}
	if got := e.held(t); got != 0 {
		t.Fatalf("both devices retired: %d seats held, want 0", got)
	}
	r := e.use(t, `CORP\alice`)
	if r.Consumes || r.Devices != 0 || !strings.Contains(r.Reason, "2 of 2 devices inactive") {
		t.Fatalf("report after retiring: %+v", r)
	}
	freed := e.events(t, "user.seat.freed")
	if len(freed) != 1 || !strings.Contains(freed[0].Reason, `CORP\alice`) || !strings.Contains(freed[0].Reason, "status set to Retired") || freed[0].Actor != "admin:bob" {
		t.Fatalf("the freeing is not audited with the user and the reason: %+v", freed)
	}
	// Active again: the device counts again and takes the seat back.
	if _, err := e.db.SetStatus(e.ctx, b.computer, "Active", "admin:bob"); err != nil {
		t.Fatal(err)
	}
	if got := e.held(t); got != 1 {
		t.Fatalf("device Active again: %d seats, want 1", got)
	}
}

// The registration ends with the plug-in, the primary user, the
// computer's deletion and the agent's uninstall; a post naming no
// primary user keeps the one recorded.
func TestDeviceRegistrationEnds(t *testing.T) {
	e := openUsers(t)
	e.userLicense(t, "U-1", 5)
	m := e.machine(t, "pc-a")
	e.post(t, m, alice, false)
	if e.held(t) != 1 {
		t.Fatal("no seat for the primary user's device")
	}
	e.post(t, m, nil, false) // nobody logged in: still alice's device
	if e.held(t) != 1 {
		t.Fatal("a post with nobody logged in freed the seat")
	}
	e.post(t, m, alice, true) // plug-in removed
	if e.held(t) != 0 {
		t.Fatal("plug-in removed: seat still held")
	}
	e.post(t, m, alice, false)
	e.post(t, m, &protocol.User{Name: "bob", Domain: "CORP"}, false) // another primary user
	if r := e.use(t, `CORP\alice`); r.Consumes || r.Devices != 0 {
		t.Fatalf("alice after bob became primary: %+v", r)
	}
	if r := e.use(t, `CORP\bob`); !r.Consumes || r.Devices != 1 {
		t.Fatalf("bob: %+v", r)
	}
	if _, err := e.db.DeleteComputer(e.ctx, m.computer, false, "admin:carol"); err != nil {
		t.Fatal(err)
	}
	if e.held(t) != 0 {
		t.Fatal("computer deleted: seat still held")
	}
	n := e.machine(t, "pc-n")
	e.post(t, n, alice, false)
	if e.held(t) != 1 {
		t.Fatal("no seat")
	}
	n.seq++
	if _, err := e.db.Goodbye(e.ctx, store.Request{NodeID: n.node, Seq: n.seq, Kind: protocol.KindGoodbye}, &protocol.GoodbyeRequest{Reason: "uninstalled"}); err != nil {
		t.Fatal(err)
	}
	if e.held(t) != 0 {
		t.Fatal("agent uninstalled: seat still held")
	}
}

// Agents' users merge with directory and admin users by domain\name
// (whatever the case); a local account is the machine's own.
func TestAgentUsersMerge(t *testing.T) {
	e := openUsers(t)
	e.userLicense(t, "U-1", 5)
	if _, err := e.db.AddDirectory(e.ctx, store.Directory{Name: "corp", URL: "ldap://x", BaseDN: "dc=corp", Domain: "CORP", Interval: 3600e9}, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.SyncDirectory(e.ctx, "corp", []store.DirectoryEntry{{GUID: "g-alice", Domain: "CORP", Name: "alice", External: "active"}}, "t"); err != nil {
		t.Fatal(err)
	}
	a, b := e.machine(t, "pc-a"), e.machine(t, "pc-b")
	e.post(t, a, &protocol.User{Name: "ALICE", Domain: "corp"}, false, protocol.User{Name: "admin", Local: true}, protocol.User{Name: "dave", Domain: "CORP"})
	e.post(t, b, &protocol.User{Name: "admin", Local: true}, false, protocol.User{Name: "admin", Local: true})
	us, err := e.db.Users(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range us {
		got = append(got, fmt.Sprintf("%s|%s|%s", u.Key, u.Name, u.Source))
	}
	want := []string{`guid:g-alice|alice|directory`, `corp\dave|dave|agent`, fmt.Sprintf(`local:%d\admin|admin|agent`, a.computer), fmt.Sprintf(`local:%d\admin|admin|agent`, b.computer)}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("users\n got %v\nwant %v", got, want)
	}
	if r := e.use(t, `CORP\alice`); !r.Consumes || r.Devices != 1 {
		t.Fatalf("directory user alice is not the device's user: %+v", r)
	}
	if e.held(t) != 2 {
		t.Fatalf("alice and pc-b's local admin: %d seats, want 2", e.held(t))
	}
}

// Devices alone never take a seat that is not free: the user waits (the
// post is not refused) and takes the next seat freed, in that
// transaction.
func TestDeviceWaitsForASeat(t *testing.T) {
	e := openUsers(t)
	e.userLicense(t, "U-1", 1)
	e.addUser(t, "carol")
	tok := e.cred(t, `CORP\carol`, "token", nil)
	m := e.machine(t, "pc-a")
	e.post(t, m, alice, false)
	if e.held(t) != 1 {
		t.Fatal("seat count")
	}
	r := e.use(t, `CORP\alice`)
	if r.Consumes || r.Devices != 1 || !strings.Contains(r.Housekeeping, "waits for a seat") {
		t.Fatalf("alice without a free seat: %+v", r)
	}
	if _, err := e.db.EndCredential(e.ctx, tok.ID, "revoked", "admin:bob"); err != nil {
		t.Fatal(err)
	}
	if r := e.use(t, `CORP\alice`); !r.Consumes || e.held(t) != 1 {
		t.Fatalf("alice did not take the seat carol freed: %+v", r)
	}
}

// Seed 003's exception, a product rule: where inactive-devices-consume is
// on, a registered device (the device ID token) counts while its computer
// is not Active, until the registration itself ends; where it is off (the
// built-in inventory), the same retirement frees the seat.
func TestInactiveDeviceException(t *testing.T) {
	cat, err := catalog.Load(&catalog.AdminFile{Name: "products.toml", Data: []byte(`[[product]]
name = "inventory"
plugin = "inventory"
plugin-versions = ">= 7"
qualifying = ["plugin-presence"]
over-count = ["discard-data"]
freed-by = "any-non-active"
plugin-removal-frees = true
purge-after-days = 30
inactive-devices-consume = true
`)})
	if err != nil {
		t.Fatal(err)
	}
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("inactive-devices-consume=%v", on), func(t *testing.T) {
			e := openUsers(t)
			if on {
				e = openUsersWith(t, engine.New(cat))
			}
			e.userLicense(t, "U-1", 5)
			m := e.machine(t, "pc-a")
			e.post(t, m, alice, false)
			if _, err := e.db.SetStatus(e.ctx, m.computer, "In Stock", "admin:bob"); err != nil {
				t.Fatal(err)
			}
			r := e.use(t, `CORP\alice`)
			if r.Consumes != on || e.held(t) != map[bool]int{false: 0, true: 1}[on] || (r.Devices == 1) != on {
				t.Fatalf("inactive device with the rule %v: %+v, %d held", on, r, e.held(t))
			}
			if _, err := e.db.DeleteComputer(e.ctx, m.computer, false, "admin:bob"); err != nil {
				t.Fatal(err)
			}
			if e.held(t) != 0 {
				t.Fatal("the registration ended with the computer, the seat stayed")
			}
		})
	}
}

// A user an agent reported before the directory listed it becomes the
// directory's user (one user, keyed by the GUID), devices kept; deleted
// from the directory it frees the seat, and listed again takes it back.
func TestDirectoryAdoptsAgentUser(t *testing.T) {
	e := openUsers(t)
	e.userLicense(t, "U-1", 5)
	m := e.machine(t, "pc-a")
	e.post(t, m, alice, false)
	if _, err := e.db.AddDirectory(e.ctx, store.Directory{Name: "corp", URL: "ldap://x", BaseDN: "dc=corp", Domain: "CORP", Interval: 3600e9}, "t"); err != nil {
		t.Fatal(err)
	}
	entry := []store.DirectoryEntry{{GUID: "G-1", Name: "Alice", External: "active"}}
	if _, err := e.db.SyncDirectory(e.ctx, "corp", entry, "t"); err != nil {
		t.Fatal(err)
	}
	us, err := e.db.Users(e.ctx)
	if err != nil || len(us) != 1 || us[0].Key != "guid:g-1" || us[0].Source != "directory" {
		t.Fatalf("users %+v %v", us, err)
	}
	if r := e.use(t, `CORP\Alice`); !r.Consumes || r.Devices != 1 {
		t.Fatalf("%+v", r)
	}
	if _, err := e.db.SyncDirectory(e.ctx, "corp", nil, "t"); err != nil {
		t.Fatal(err)
	}
	if e.held(t) != 0 {
		t.Fatal("deleted from the directory: seat kept")
	}
	if _, err := e.db.SyncDirectory(e.ctx, "corp", entry, "t"); err != nil {
		t.Fatal(err)
	}
	if e.held(t) != 1 {
		t.Fatal("listed again: its device does not take the seat back")
	}
}
