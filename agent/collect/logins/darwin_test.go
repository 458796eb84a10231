package logins

import (
	"reflect"
	"testing"

	"github.com/tallyhq/tally/protocol"
)

// What macOS 15 prints: who, 'last -n 1000 -t console', and
// 'dscl . -list /Users UniqueID' (abridged).
const (
	whoFixture = `carol    console      Dec  6 08:55
carol    ttys000      Dec  6 09:02
admin    ttys001      Dec  6 09:30 (192.0.2.44)
`
	lastFixture = `dave      console                   Fri Dec  4 08:50 - 18:01  (09:10)
carol     console                   Thu Dec  3 08:41 - 17:30  (08:48)
dave      console                   Wed Dec  2 08:47 - 17:45  (08:57)
carol     console                   Tue Dec  1 08:40 - 17:12  (08:31)
root      console                   Mon Nov 30 07:00 - 07:05  (00:05)

wtmp begins Mon Nov 30 07:00
`
	dsclFixture = `_amavisd                 83
_appleevents             55
admin                    501
carol                    502
daemon                   1
dave                     503
nobody                   -2
root                     0
`
)

// carol and dave have two console logins each in the history; carol's
// session now is the third, which makes her the primary user.
func TestDarwinFixture(t *testing.T) {
	p, logged := FromDarwin(whoFixture, lastFixture, dsclFixture)
	if want := (&protocol.User{Name: "carol", Local: true}); !reflect.DeepEqual(p, want) {
		t.Fatalf("primary %+v, want %+v", p, want)
	}
	if want := []protocol.User{{Name: "admin", Local: true}, {Name: "carol", Local: true}}; !reflect.DeepEqual(logged, want) {
		t.Fatalf("logged %+v, want %+v", logged, want)
	}
	// A network (directory) account is not in the local node.
	p, _ = FromDarwin("jdoe@corp.example.com console Dec  6 08:55\n", "", dsclFixture)
	if p == nil || p.Name != "jdoe" || p.Domain != "corp.example.com" || p.Local {
		t.Fatalf("network account %+v", p)
	}
}
