package protocol

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sampleInventoryWithUsers() *InventoryRequest {
	inv := sampleInventory()
	inv.Basic.PrimaryUser = &User{Name: "alice", Domain: "CORP", Display: "Alice A."}
	inv.Basic.Users = []User{{Name: "alice", Domain: "CORP"}, {Name: "ops", Local: true}}
	return inv
}

func TestUsersRoundTrip(t *testing.T) {
	inv := sampleInventoryWithUsers()
	raw, err := NewRequest(KindInventory, 3, inv)
	if err != nil {
		t.Fatal(err)
	}
	req, err := DecodeRequest(raw)
	if err != nil {
		t.Fatal(err)
	}
	var got InventoryRequest
	if err := DecodeBody(req.Body, &got); err != nil {
		t.Fatal(err)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Basic.PrimaryUser, inv.Basic.PrimaryUser) || !reflect.DeepEqual(got.Basic.Users, inv.Basic.Users) {
		t.Fatalf("users changed on the wire: %+v %+v", got.Basic.PrimaryUser, got.Basic.Users)
	}
	if inv.Basic.Hash() == sampleInventory().Basic.Hash() {
		t.Fatal("a change of users does not change the basic inventory's hash: the server would never hear of it")
	}
}

// An agent of revision 6 knows nothing of users: its inventory, in its
// envelope, decodes and validates as before.
func TestOldAgentInventoryStillDecodes(t *testing.T) {
	body, err := Marshal(sampleInventory())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := Marshal(Request{Major: Major, Rev: UsersRevision - 1, Kind: KindInventory, Seq: 9, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	req, err := DecodeRequest(raw)
	if err != nil {
		t.Fatal(err)
	}
	var got InventoryRequest
	if err := DecodeBody(req.Body, &got); err != nil {
		t.Fatal(err)
	}
	if err := got.Validate(); err != nil || got.Basic.PrimaryUser != nil || got.Basic.Users != nil || req.Rev != 6 {
		t.Fatalf("old inventory: %v %+v rev %d", err, got.Basic, req.Rev)
	}
}

func TestUsersRefused(t *testing.T) {
	long := strings.Repeat("a", 257)
	for _, c := range []struct {
		name string
		mod  func(b *BasicInventory)
		want string
	}{
		{"empty name", func(b *BasicInventory) { b.Users = []User{{Domain: "CORP"}} }, "user name is missing"},
		{"long name", func(b *BasicInventory) { b.PrimaryUser = &User{Name: long} }, "longer than 256"},
		{"long domain", func(b *BasicInventory) { b.Users = []User{{Name: "a", Domain: long}} }, "longer than 256"},
		{"control character", func(b *BasicInventory) { b.PrimaryUser = &User{Name: "al\nice"} }, "control character"},
		{"invalid UTF-8", func(b *BasicInventory) { b.Users = []User{{Name: "\xff"}} }, "not valid UTF-8"},
		{"65 users", func(b *BasicInventory) { b.Users = make([]User, 65) }, "more than 64"},
	} {
		t.Run(c.name, func(t *testing.T) {
			inv := sampleInventory()
			c.mod(&inv.Basic)
			if err := inv.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate: %v, want %q", err, c.want)
			}
		})
	}
}

// A list of users over its limit is refused from its CBOR header, before
// anything of it is decoded.
func TestTooManyUsersRefusedBeforeDecoding(t *testing.T) {
	inv := sampleInventory()
	for range 65 {
		inv.Basic.Users = append(inv.Basic.Users, User{Name: "u"})
	}
	raw, err := Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	var got InventoryRequest
	err = DecodeBody(raw, &got)
	var pe *Error
	if !errors.As(err, &pe) || pe.Status != StatusBadRequest || !strings.Contains(pe.Message, "65 in one list, at most 64") {
		t.Fatalf("DecodeBody: %v", err)
	}
	inv.Basic.Users = inv.Basic.Users[:64]
	raw, _ = Marshal(inv)
	if err := DecodeBody(raw, &got); err != nil {
		t.Fatalf("64 users, the limit: %v", err)
	}
}
