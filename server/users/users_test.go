package users

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	tok := Credential{Kind: Token}
	expired := Credential{Kind: Token, Expires: now}
	ended := Credential{Kind: Token, Ended: true}
	for _, tc := range []struct {
		h    Holding
		want bool
		why  string
	}{
		{Holding{Status: Active, Credentials: []Credential{tok}}, true, "1 token"},
		{Holding{Status: Active, Credentials: []Credential{tok, tok, {Kind: QA}}}, true, "2 tokens, 1 Q&A record"},
		{Holding{Status: Active, Devices: 2, Credentials: []Credential{tok}}, true, "2 devices"},
		{Holding{Status: Active, Credentials: []Credential{expired, ended}}, false, "no active credential"},
		{Holding{Status: Disabled, Credentials: []Credential{tok}}, false, "internal status Disabled"},
		{Holding{Status: Deleted}, false, "internal status Deleted"},
	} {
		d := Decide(tc.h, now)
		if d.Consumes != tc.want || !strings.Contains(d.Reason, tc.why) {
			t.Errorf("%+v: got %+v, want %v and %q", tc.h, d, tc.want, tc.why)
		}
	}
}

func TestKeyAndNames(t *testing.T) {
	if Key("ABC-1", "x", "y") != "guid:abc-1" || Key("", "CORP", "Alice") != `corp\alice` || Key("", "", "Bob") != "bob" {
		t.Fatal("keys")
	}
	if d, n := SplitName(`CORP\alice`); d != "CORP" || n != "alice" {
		t.Fatal(d, n)
	}
	if d, n := SplitName("alice@corp.example"); d != "corp.example" || n != "alice" {
		t.Fatal(d, n)
	}
	for _, bad := range []string{"", strings.Repeat("a", MaxName+1), "a\x00b", "a\nb", "\xff"} {
		if err := CheckName("name", bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
