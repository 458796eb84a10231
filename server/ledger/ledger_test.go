package ledger_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

// The ledger decides and the backend stores: the ledger depends on no
// database, network or file system package and reads no clock (its
// transactions stamp the time), so that a second backend runs it as it is.
func TestLedgerHoldsNoStorage(t *testing.T) {
	direct, err := exec.Command("go", "list", "-f", "{{join .Imports \" \"}}", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range strings.Fields(string(direct)) {
		switch imp {
		case "os", "syscall", "io/fs", "database/sql", "net", "net/http", "os/exec":
			t.Errorf("the ledger imports %s", imp)
		}
	}
	deps, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range strings.Fields(string(deps)) {
		if imp == "database/sql" || strings.HasPrefix(imp, "github.com/mattn") || strings.HasPrefix(imp, "github.com/tallyhq/tally/server/store/") {
			t.Errorf("the ledger depends on %s", imp)
		}
	}
	if src, err := exec.Command("grep", "-rn", "--include=*.go", "--exclude=*_test.go", "time.Now()", ".").Output(); err == nil && len(src) > 0 {
		t.Errorf("the ledger reads the clock: %s", src)
	}
}

// The backend stores answers as opaque bytes: only the ledger encodes
// them, so store/sqlstore marshals no protocol message.
func TestBackendEncodesNoAnswer(t *testing.T) {
	files, err := filepath.Glob("../store/sqlstore/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no backend sources: %v", err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, call := range []string{"protocol.Marshal(", "protocol.NewResponse(", "protocol.ErrorResponse("} {
			if bytes.Contains(b, []byte(call)) {
				t.Errorf("%s calls %s", f, call)
			}
		}
	}
}

type node struct {
	id    string
	basic protocol.BasicInventory
}

func open(t *testing.T) (*sqlstore.DB, node) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(filepath.Join(t.TempDir(), "ledger.db"), sqlstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.ImportLicenses(ctx, []store.LicenseImport{{License: store.License{ID: "L-inventory",
		Product: "inventory", Kind: "node", Duration: "perpetual", Seats: 1, IssuedAt: time.Now(), Issuer: "test"}, File: []byte("x")}}, "test"); err != nil {
		t.Fatal(err)
	}
	s, err := db.CreateSecret(ctx, "test", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	n := node{id: identity.NodeID(pub)}
	if _, err := db.Enroll(ctx, store.EnrollParams{NodeID: n.id, PublicKey: pub, Request: protocol.EnrollRequest{
		Secret: s.Value, Hostname: "pc", Hints: protocol.Hints{InstanceID: n.id}}}); err != nil {
		t.Fatal(err)
	}
	n.basic = protocol.BasicInventory{Hostname: "pc", OS: "linux", Hints: protocol.Hints{InstanceID: n.id},
		Plugins: []protocol.Plugin{{Name: "inventory", Version: "7.1"}}}
	return db, n
}

// A repeated request is answered with the very bytes of its first answer
// and changes nothing; a number too old to tell is refused, not applied.
func TestRepeatGetsTheFirstAnswersBytes(t *testing.T) {
	ctx := context.Background()
	db, n := open(t)
	post := func(seq uint64, req protocol.InventoryRequest) (store.Outcome, error) {
		return db.PostInventory(ctx, store.Request{NodeID: n.id, Seq: seq, Kind: protocol.KindInventory}, &req)
	}
	first, err := post(1, protocol.InventoryRequest{Basic: n.basic})
	if err != nil || first.Repeat {
		t.Fatalf("first post: repeat %v, err %v", first.Repeat, err)
	}
	var resp protocol.InventoryResponse
	if err := protocol.Unmarshal(first.Body, &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Verdicts) != 1 || resp.Verdicts[0].Verdict != protocol.VerdictLicensed {
		t.Fatalf("first post's verdicts: %+v", resp.Verdicts)
	}
	// The same number with another body: the first answer, not a new one.
	again, err := post(1, protocol.InventoryRequest{BasicHash: "other"})
	if err != nil || !again.Repeat || !bytes.Equal(again.Body, first.Body) {
		t.Fatalf("repeat: repeat %v, same bytes %v, err %v", again.Repeat, bytes.Equal(again.Body, first.Body), err)
	}
	events, err := db.Events(ctx, store.EventFilter{Kind: store.EventSeatConsumed})
	if err != nil || len(events) != 1 {
		t.Fatalf("seat consumed %d times (err %v), want once", len(events), err)
	}
	if _, err := post(1000, protocol.InventoryRequest{BasicHash: n.basic.Hash()}); err != nil {
		t.Fatal(err)
	}
	if _, err := post(1000-store.SeqWindow-40, protocol.InventoryRequest{BasicHash: n.basic.Hash()}); !errors.Is(err, store.ErrStaleSeq) {
		t.Fatalf("a number below the window: err %v, want ErrStaleSeq", err)
	}
}

// A goodbye whose answer was lost is answered again with its first answer
// after it retired the key; any other request of that key is refused.
func TestGoodbyeRetriedAfterTheKeyRetired(t *testing.T) {
	ctx := context.Background()
	db, n := open(t)
	if _, err := db.PostInventory(ctx, store.Request{NodeID: n.id, Seq: 1, Kind: protocol.KindInventory}, &protocol.InventoryRequest{Basic: n.basic}); err != nil {
		t.Fatal(err)
	}
	bye := store.Request{NodeID: n.id, Seq: 2, Kind: protocol.KindGoodbye}
	first, err := db.Goodbye(ctx, bye, &protocol.GoodbyeRequest{Reason: "uninstalled"})
	if err != nil {
		t.Fatal(err)
	}
	var resp protocol.GoodbyeResponse
	if err := protocol.Unmarshal(first.Body, &resp); err != nil || len(resp.Freed) != 1 || resp.Freed[0] != "inventory" {
		t.Fatalf("goodbye freed %v (err %v), want inventory", resp.Freed, err)
	}
	again, err := db.Goodbye(ctx, bye, &protocol.GoodbyeRequest{Reason: "uninstalled"})
	if err != nil || !again.Repeat || !bytes.Equal(again.Body, first.Body) {
		t.Fatalf("goodbye again: repeat %v, err %v", again.Repeat, err)
	}
	_, err = db.PostInventory(ctx, store.Request{NodeID: n.id, Seq: 3, Kind: protocol.KindInventory}, &protocol.InventoryRequest{Basic: n.basic})
	var re *store.RevokedError
	if !errors.As(err, &re) || re.Reason != store.RevokedUninstall {
		t.Fatalf("a post after the goodbye: err %v, want the key revoked (uninstalled)", err)
	}
}
