package logins

import (
	"reflect"
	"testing"

	"github.com/tallyhq/tally/protocol"
)

// What 'tasklist /v /fo csv /nh /fi "IMAGENAME eq explorer.exe"' prints
// on a Windows machine with a console session and two remote desktops
// (a German Windows: the columns keep their order, the words change).
const tasklistFixture = `"explorer.exe","5124","Console","1","112.344 K","Wird ausgeführt","CORP\alice","0:00:41","N/A"
"explorer.exe","9988","RDP-Tcp#3","3","84.120 K","Running","PC-0042\helpdesk","0:00:03","N/A"
"explorer.exe","7712","RDP-Tcp#4","4","80.000 K","Running","CORP\bob","0:00:02","N/A"
"explorer.exe","7713","Services","0","8.000 K","Unknown","NT AUTHORITY\SYSTEM","0:00:00","N/A"
`

func TestTasklistFixture(t *testing.T) {
	p, logged := FromTasklist(tasklistFixture, "pc-0042.corp.example.com")
	if want := (&protocol.User{Name: "alice", Domain: "CORP"}); !reflect.DeepEqual(p, want) {
		t.Fatalf("primary %+v, want %+v", p, want)
	}
	want := []protocol.User{{Name: "helpdesk", Local: true}, {Name: "alice", Domain: "CORP"}, {Name: "bob", Domain: "CORP"}}
	if !reflect.DeepEqual(logged, want) {
		t.Fatalf("logged %+v, want %+v", logged, want)
	}
}

// Nobody at the console: remote sessions make no primary user; no
// session at all is tasklist's INFO line.
func TestTasklistNoConsole(t *testing.T) {
	p, logged := FromTasklist(tasklistFixture[len(`"explorer.exe","5124","Console","1","112.344 K","Wird ausgeführt","CORP\alice","0:00:41","N/A"`)+1:], "PC-0042")
	if p != nil || len(logged) != 2 {
		t.Fatalf("%+v %+v", p, logged)
	}
	p, logged = FromTasklist("INFO: No tasks are running which match the specified criteria.\r\n", "PC-0042")
	if p != nil || logged != nil {
		t.Fatalf("%+v %+v", p, logged)
	}
	if p, logged = FromTasklist("\"unterminated", "PC"); p != nil || logged != nil {
		t.Fatalf("malformed: %+v %+v", p, logged)
	}
}
