package logins

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/tallyhq/tally/protocol"
)

// A workstation's real utmp files: alice's console and seat logins make
// her the primary user; ops's three ssh logins and root's do not count;
// bob, not in /etc/passwd, is a network account of his domain.
func TestLinuxDesktopFixture(t *testing.T) {
	p, logged, err := FromFiles("testdata/desktop")
	if err != nil {
		t.Fatal(err)
	}
	want := &protocol.User{Name: "alice", Local: true, Display: "Alice Example"}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("primary user %+v, want %+v", p, want)
	}
	wantLogged := []protocol.User{
		{Name: "alice", Local: true, Display: "Alice Example"},
		{Name: "ops", Local: true},
		{Name: "bob", Domain: "corp.example.com"},
	}
	if !reflect.DeepEqual(logged, wantLogged) {
		t.Fatalf("logged-in users %+v, want %+v", logged, wantLogged)
	}
	b := protocol.BasicInventory{Hostname: "h", Hints: protocol.Hints{InstanceID: "i"}, PrimaryUser: p, Users: logged}
	if err := b.Validate(); err != nil {
		t.Fatalf("what the collector reports does not validate: %v", err)
	}
}

// A server only administrators reach over ssh has no primary user.
func TestLinuxServerFixture(t *testing.T) {
	p, logged, err := FromFiles("testdata/server")
	if err != nil || p != nil || len(logged) != 0 {
		t.Fatalf("server: %+v %+v %v", p, logged, err)
	}
}

func TestUtmpRecords(t *testing.T) {
	b, err := os.ReadFile("testdata/desktop/var/log/wtmp")
	if err != nil {
		t.Fatal(err)
	}
	logins := ParseUtmp(b)
	if len(logins) != 9 {
		t.Fatalf("%d logins, want the 9 USER_PROCESS records: %+v", len(logins), logins)
	}
	if l := logins[0]; l.User != "alice" || !l.Local || l.Time != 1796115600 {
		t.Fatalf("first login %+v", l)
	}
	if l := logins[1]; l.User != "ops" || l.Local {
		t.Fatalf("ssh login %+v", l)
	}
	// A partial record at the end (a file read while written) is left out.
	if got := ParseUtmp(append(b, make([]byte, 100)...)); len(got) != 9 {
		t.Fatalf("partial record: %d logins", len(got))
	}
}

// Hostile bytes in utmp (control characters, invalid UTF-8, a name
// filling the field) never reach the wire: such names are dropped.
func TestUtmpHostileNames(t *testing.T) {
	rec := func(user string) []byte {
		r := make([]byte, utmpSize)
		r[0] = utmpUserProc
		copy(r[utmpOffLine:], "tty1")
		copy(r[utmpOffUser:utmpOffUser+utmpUserBytes], user)
		return r
	}
	var b []byte
	for _, u := range []string{"al\x1bice", "\xff\xfe", "x\ny", "carol"} {
		b = append(b, rec(u)...)
	}
	accounts := map[string]Account{}
	logged := Logged(ParseUtmp(b), accounts)
	if len(logged) != 1 || logged[0].Name != "carol" {
		t.Fatalf("logged %+v, want carol only", logged)
	}
	if p, ok := Primary(ParseUtmp(b), accounts); !ok || p.Name != "carol" {
		t.Fatalf("primary %+v", p)
	}
}

func TestPasswd(t *testing.T) {
	b, err := os.ReadFile("testdata/desktop/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	a := ParsePasswd(b)
	if !a["alice"].Person || a["alice"].Display != "Alice Example" || a["root"].Person || a["daemon"].Person || a["nobody"].Person || !a["ops"].Person {
		t.Fatalf("accounts %+v", a)
	}
	if _, ok := a["+@netgroup"]; ok {
		t.Fatal("an NIS include line read as an account")
	}
}

// The latest login breaks a tie between two users with as many logins.
func TestPrimaryTie(t *testing.T) {
	h := []Login{{User: "a", Local: true, Time: 10}, {User: "b", Local: true, Time: 20}, {User: "a", Local: true, Time: 5}, {User: "b", Local: true, Time: 1}}
	if p, _ := Primary(h, nil); p.Name != "b" {
		t.Fatalf("primary %s, want b (latest login)", p.Name)
	}
}

// Logged reports at most what the protocol takes.
func TestLoggedBounded(t *testing.T) {
	var open []Login
	for i := range 100 {
		open = append(open, Login{User: "u" + string(rune('a'+i%26)) + string(rune('a'+i/26))})
	}
	if n := len(Logged(open, nil)); n != protocol.MaxUsersPerPost {
		t.Fatalf("%d users, want %d", n, protocol.MaxUsersPerPost)
	}
}

// A missing passwd is an error; missing utmp and wtmp are no sessions
// and no history.
func TestMissingFiles(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := FromFiles(dir); err == nil {
		t.Fatal("no /etc/passwd: no error")
	}
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("alice:x:1000:1000::/home/alice:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, logged, err := FromFiles(dir); err != nil || p != nil || logged != nil {
		t.Fatalf("%+v %+v %v", p, logged, err)
	}
}

func TestFixed(t *testing.T) {
	src := Fixed(&protocol.User{Name: "alice", Domain: "CORP"}, protocol.User{Name: "alice", Domain: "CORP"})
	p, logged, err := src(t.Context())
	if err != nil || p.Name != "alice" || len(logged) != 1 {
		t.Fatalf("%+v %+v %v", p, logged, err)
	}
	p.Name = "changed"
	if p2, _, _ := src(t.Context()); p2.Name != "alice" {
		t.Fatal("Fixed shares its user between calls")
	}
}
