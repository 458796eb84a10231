package sqlstore_test

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

// fataler is what the helpers need of a test: a testing.T or a rapid.T.
type fataler interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// signer issues real signed license files and verifies them as the server
// does (signature and trusted issuer).
type signer struct {
	key     ed25519.PrivateKey
	trusted license.Trusted
}

func newSigner(t fataler) *signer {
	key, err := license.NewIssuerKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	return &signer{key: key, trusted: license.Trusted{license.IssuerID(pub): pub}}
}

func (s *signer) verify(file []byte) (license.Payload, error) {
	f, err := license.Parse(file, s.trusted)
	if err != nil {
		return license.Payload{}, err
	}
	return f.Payload, nil
}

// issue signs p and returns it as the store imports it.
func (s *signer) issue(t fataler, p license.Payload) store.LicenseImport {
	t.Helper()
	if p.Kind == "" {
		p.Kind = license.KindNode
	}
	if p.Duration == "" {
		p.Duration = license.Perpetual
		if p.Expires != 0 {
			p.Duration = license.Subscription
		}
	}
	file, err := license.Issue(s.key, p)
	if err != nil {
		t.Fatal(err)
	}
	f, err := license.Parse(file, s.trusted)
	if err != nil {
		t.Fatal(err)
	}
	q := f.Payload
	l := store.License{ID: q.ID, Product: q.Product, Kind: q.Kind, Duration: q.Duration, Seats: int(q.Seats),
		IssuedAt: time.Unix(q.IssuedAt, 0).UTC(), Issuer: q.Issuer}
	if e := q.ExpiresAt(); !e.IsZero() {
		l.ExpiresAt = &e
	}
	if u := q.UpgradeUntilAt(); !u.IsZero() {
		l.UpgradeUntil = &u
	}
	return store.LicenseImport{License: l, File: f.Data}
}

// editRow changes a stopped (or running) server's database file behind its
// back, as a flipped byte or a hand edit would, CHECK constraints ignored.
func editRow(t fataler, file, query string, args ...any) {
	t.Helper()
	raw, err := sql.Open("sqlite3", "file:"+file+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetMaxOpenConns(1)
	if _, err := raw.Exec(`PRAGMA ignore_check_constraints = ON`); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(query, args...); err != nil {
		t.Fatalf("edit %q: %v", query, err)
	}
}

func countRows(t fataler, file, query string, args ...any) int {
	t.Helper()
	raw, err := sql.Open("sqlite3", "file:"+file+"?_busy_timeout=10000&mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var n int
	if err := raw.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// seatFleet is a store with enrolled nodes that post the monitor plug-in.
type seatFleet struct {
	db     *sqlstore.DB
	secret string
	n      int
	seq    map[string]uint64
	comp   map[string]int64
	mu     sync.Mutex
}

func openSeatFleet(t testing.TB, file string, s *signer) *seatFleet {
	t.Helper()
	opts := sqlstore.Options{Clock: clock.NewManual(time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)), NoSync: true}
	if s != nil {
		opts.VerifyLicense = s.verify
	}
	db, err := sqlstore.Open(file, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sec, err := db.CreateSecret(context.Background(), fmt.Sprintf("s%d", time.Now().UnixNano()), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return &seatFleet{db: db, secret: sec.Value, seq: map[string]uint64{}, comp: map[string]int64{}}
}

func (f *seatFleet) enroll(t testing.TB) string {
	t.Helper()
	key, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	f.mu.Lock()
	f.n++
	n := f.n
	f.mu.Unlock()
	id := identity.NodeID(pub)
	resp, err := f.db.Enroll(context.Background(), store.EnrollParams{NodeID: id, PublicKey: pub, Request: protocol.EnrollRequest{
		Secret: f.secret, Hostname: fmt.Sprintf("pc-%d-%d", time.Now().UnixNano(), n), Hints: protocol.Hints{InstanceID: fmt.Sprintf("inst-%d-%d", time.Now().UnixNano(), n)}}})
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	f.mu.Lock()
	f.comp[id] = resp.ComputerID
	f.mu.Unlock()
	return id
}

// post sends an inventory with the monitor plug-in (a seat of monitor on
// its first post) and returns the verdict.
func (f *seatFleet) post(t testing.TB, node string) protocol.Verdict {
	f.mu.Lock()
	f.seq[node]++
	seq := f.seq[node]
	f.mu.Unlock()
	req := protocol.InventoryRequest{Basic: protocol.BasicInventory{Hostname: "h", Hints: protocol.Hints{InstanceID: "i"},
		Plugins: []protocol.Plugin{{Name: "monitor", Version: "2.0", BuildDate: "2026-01-01"}}}}
	out, err := f.db.PostInventory(context.Background(), store.Request{NodeID: node, Seq: seq, Kind: protocol.KindInventory}, &req)
	if err != nil {
		t.Errorf("post: %v", err)
		return 0
	}
	var resp protocol.InventoryResponse
	if err := protocol.Unmarshal(out.Body, &resp); err != nil {
		t.Fatal(err)
	}
	for _, v := range resp.Verdicts {
		if v.Product == "monitor" {
			return v.Verdict
		}
	}
	t.Fatalf("no monitor verdict in %+v", resp.Verdicts)
	return 0
}

// race posts from every node at once.
func (f *seatFleet) race(t testing.TB, nodes []string) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.post(t, n)
		}()
	}
	wg.Wait()
}

func nodeUsage(t testing.TB, db *sqlstore.DB, product string) store.Usage {
	t.Helper()
	us, err := db.Usage(context.Background(), product)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range us {
		if u.Kind == "node" {
			return u
		}
	}
	t.Fatalf("no node pool of %s", product)
	return store.Usage{}
}

// A flipped seat counter (licenses.held) and a flipped grant
// (licenses.seats) while the server is stopped: racing posts never get a
// seat above the signed file's grant, usage says what the seat rows say,
// and maintenance repairs and reports the drift instead of stopping on the
// CHECK constraint.
func TestFlippedCounterAndGrantNeverOversubscribe(t *testing.T) {
	s := newSigner(t)
	file := filepath.Join(t.TempDir(), "tally.db")
	f := openSeatFleet(t, file, s)
	li := s.issue(t, license.Payload{ID: "L-monitor", Product: "monitor", Seats: 3, IssuedAt: 1})
	if _, err := f.db.ImportLicenses(context.Background(), []store.LicenseImport{li}, "test"); err != nil {
		t.Fatal(err)
	}
	var first []string
	for range 3 {
		n := f.enroll(t)
		first = append(first, n)
		if v := f.post(t, n); v != protocol.VerdictLicensed {
			t.Fatalf("first three: %v", v)
		}
	}
	retire := f.computer(first[0])
	f.db.Close()

	// held 3 → 0 (what 300 → 44 did) and seats 3 → 7, then 3 → 500 above
	// the CHECK constraint's reach for the counter.
	editRow(t, file, `UPDATE licenses SET held = 0, seats = 7 WHERE id = 'L-monitor'`)

	f = openSeatFleet(t, file, s)
	var more []string
	for range 8 {
		more = append(more, f.enroll(t))
	}
	f.race(t, more)
	if n := countRows(t, file, `SELECT COUNT(*) FROM seats WHERE license_id = 'L-monitor'`); n != 3 {
		t.Fatalf("%d seats held on a license whose signed file grants 3", n)
	}
	ls, err := f.db.Licenses(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || ls[0].Seats != 3 || ls[0].Held != 3 || !strings.Contains(ls[0].Problem, "7 seats, the file 3") {
		t.Fatalf("licenses after the edit: %+v", ls)
	}
	u := nodeUsage(t, f.db, "monitor")
	if u.Granted != 3 || u.Consumed != 3 || u.Compliant && u.Waiting > 0 && u.Available >= 0 {
		t.Fatalf("usage not truthful: granted %d consumed %d available %d compliant %v", u.Granted, u.Consumed, u.Available, u.Compliant)
	}

	// A counter flipped above the row's seats: a seat freed must not fail
	// on the CHECK constraint, and maintenance must repair it.
	editRow(t, file, `UPDATE licenses SET held = 555 WHERE id = 'L-monitor'`)
	if _, err := f.db.SetStatus(context.Background(), retire, "Retired", "test"); err != nil {
		t.Fatalf("freeing a seat with a damaged counter: %v", err)
	}
	f.race(t, more) // one of them takes the freed seat
	if n := countRows(t, file, `SELECT COUNT(*) FROM seats WHERE license_id = 'L-monitor'`); n != 3 {
		t.Fatalf("%d seats held after a seat was freed and retaken, want 3", n)
	}

	rep, err := f.db.RunMaintenance(context.Background(), store.MaintenanceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) > 0 || len(rep.Drift) == 0 || len(rep.Repaired) < 2 {
		t.Fatalf("maintenance: errors %v, drift %v, repaired %v", rep.Errors, rep.Drift, rep.Repaired)
	}
	t.Logf("maintenance: drift %q, repaired %q", rep.Drift, rep.Repaired)
	if v, err := f.db.Check(context.Background()); err != nil || len(v) > 0 {
		t.Fatalf("after maintenance: %v %v", v, err)
	}
	if n := countRows(t, file, `SELECT COUNT(*) FROM licenses WHERE id = 'L-monitor' AND seats = 3 AND held = 3`); n != 1 {
		t.Fatal("maintenance did not set the row to its signed file and the counter to the seat rows")
	}
	if ls, _ := f.db.Licenses(context.Background()); ls[0].Problem != "" {
		t.Fatalf("problem after maintenance: %s", ls[0].Problem)
	}
}

// Seats given above the signed grant (by a server that trusted an edited
// seats column) are taken back by maintenance: the newest first, each
// freed seat in the audit log, and the drift reported.
func TestMaintenanceFreesSeatsAboveTheSignedGrant(t *testing.T) {
	s := newSigner(t)
	file := filepath.Join(t.TempDir(), "tally.db")
	f := openSeatFleet(t, file, s)
	li := s.issue(t, license.Payload{ID: "L-monitor", Product: "monitor", Seats: 3, IssuedAt: 1})
	if _, err := f.db.ImportLicenses(context.Background(), []store.LicenseImport{li}, "test"); err != nil {
		t.Fatal(err)
	}
	f.db.Close()
	editRow(t, file, `UPDATE licenses SET seats = 5 WHERE id = 'L-monitor'`)
	// A server that trusts the row gives five seats (one by one, so the
	// newest are known).
	f = openSeatFleet(t, file, nil)
	var nodes []string
	for range 5 {
		n := f.enroll(t)
		nodes = append(nodes, n)
		if v := f.post(t, n); v != protocol.VerdictLicensed {
			t.Fatalf("verdict %v", v)
		}
	}
	newest := map[int64]bool{f.computer(nodes[3]): true, f.computer(nodes[4]): true}
	f.db.Close()

	f = openSeatFleet(t, file, s)
	late := f.enroll(t)
	if v := f.post(t, late); v == protocol.VerdictLicensed {
		t.Fatal("a seat was given above the signed grant")
	}
	u := nodeUsage(t, f.db, "monitor")
	if u.Granted != 3 || u.Consumed != 5 || u.Compliant {
		t.Fatalf("usage: granted %d consumed %d compliant %v", u.Granted, u.Consumed, u.Compliant)
	}
	rep, err := f.db.RunMaintenance(context.Background(), store.MaintenanceOptions{})
	if err != nil || len(rep.Errors) > 0 {
		t.Fatalf("maintenance: %v %v", err, rep.Errors)
	}
	if len(rep.Freed) != 2 {
		t.Fatalf("freed %d seats, want the 2 above the grant: %+v", len(rep.Freed), rep)
	}
	for _, c := range rep.Freed {
		if !newest[c.ComputerID] {
			t.Errorf("freed computer %d, not one of the two newest holders", c.ComputerID)
		}
	}
	ev, err := f.db.Events(context.Background(), store.EventFilter{Kind: store.EventSeatFreed})
	if err != nil {
		t.Fatal(err)
	}
	audited := 0
	for _, e := range ev {
		if strings.Contains(e.Reason, "signed file") {
			audited++
		}
	}
	if audited != 2 {
		t.Fatalf("%d freed seats audited, want 2", audited)
	}
	if n := countRows(t, file, `SELECT COUNT(*) FROM seats WHERE license_id = 'L-monitor'`); n != 3 {
		t.Fatalf("%d seats after maintenance", n)
	}
	if v, err := f.db.Check(context.Background()); err != nil || len(v) > 0 {
		t.Fatalf("after maintenance: %v %v", v, err)
	}
}

func (f *seatFleet) computer(node string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.comp[node]
}
