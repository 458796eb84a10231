// Package storetest is the conformance suite of store backends: a backend
// passes it by calling Run with a function that opens a fresh one. It
// drives the backend only through the interfaces of package store, so
// that every backend (SQLite, PostgreSQL) is held to the same behaviour:
// each request applied once, seats held never above seats granted under
// concurrency, the seed documents' license rules, software sets,
// Activation IDs, leases, the audit log and migrations.
//
// Every request a node makes goes through requests.go, the one file that
// knows how a node request is handed to the store and how its answer comes
// back.
package storetest

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/license/licensetest"
	"github.com/tallyhq/tally/server/store"
)

// Config is what a backend under test must be opened with.
type Config struct {
	// Clock is the only time the store may read: the suite moves it to
	// expire licenses, Activation IDs and leases.
	Clock clock.Clock
	// VerifyLicense verifies a stored license file and returns what it
	// grants; the backend takes seat counts from it.
	VerifyLicense func(file []byte) (license.Payload, error)
	// RecordKey signs activation records.
	RecordKey ed25519.PrivateKey
}

// Backend is a fresh, migrated, empty store under test, deciding with the
// built-in product catalog in UTC.
type Backend struct {
	Store store.Store
	// Reopen closes the store and opens the same database again, as a
	// restarted server does (its migrations run again).
	Reopen func(t testing.TB) store.Store
	// SchemaVersion reads the schema version an open store is at, and
	// Latest is the newest version the backend knows.
	SchemaVersion func(ctx context.Context, s store.Store) (int, error)
	Latest        int
}

// NewBackend opens a fresh backend with cfg; it registers its own cleanup
// with t.
type NewBackend func(t testing.TB, cfg Config) Backend

// start is when every backend's clock starts: licenses are issued a day
// before.
var start = time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)

// Run runs the whole suite against fresh backends from newBackend.
func Run(t *testing.T, newBackend NewBackend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"Enrollment", testEnrollment},
		{"ApplyOnce", testApplyOnce},
		{"ApplyOnceOtherRequests", testApplyOnceOtherRequests},
		{"StaleSequenceRefused", testStaleSequence},
		{"ConcurrentRequestsNeverExceedGrants", testConcurrentSeats},
		{"QualifyingPosts", testQualifyingPosts},
		{"NoLicenseDiscardsProductData", testNoLicenseDiscards},
		{"OverTheCount", testOverTheCount},
		{"StatusesFreeWhatTheirRuleNames", testStatuses},
		{"RetiredComputerStaysRetired", testRetiredStaysRetired},
		{"DeleteFreesEverySeat", testDelete},
		{"PluginRemovalFrees", testPluginRemoval},
		{"AgentGoodbyeFreesEverySeat", testAgentGoodbye},
		{"Allocations", testAllocations},
		{"LicenseExpiryAndUpgradeProtection", testExpiry},
		{"RemoveLicenseMovesSeats", testRemoveLicense},
		{"LicenseImport", testLicenseImport},
		{"SoftwareSets", testSoftwareSets},
		{"Activations", testActivations},
		{"ActivationExpiryReturnsSeats", testActivationExpiry},
		{"Leases", testLeases},
		{"Audit", testAudit},
		{"Migrations", testMigrations},
		{"PropertyHeldWithinGranted", testProperty},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newEnv(t, newBackend))
		})
	}
}

// tb is what the suite's helpers need of a test: a testing.TB, or the
// rapid.T of a property.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
}

// env is one backend under test with what the suite's tests share.
type env struct {
	ctx       context.Context
	b         Backend
	s         store.Store
	clk       *clock.Manual
	issuer    *licensetest.Issuer
	recordKey ed25519.PrivateKey
	secret    string

	mu sync.Mutex
	n  int // machines enrolled, for unique names and hints
}

func newEnv(t testing.TB, newBackend NewBackend) *env {
	t.Helper()
	key, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{ctx: context.Background(), clk: clock.NewManual(start), issuer: licensetest.NewIssuer(t), recordKey: key}
	e.b = newBackend(t, Config{Clock: e.clk, VerifyLicense: e.issuer.Verify, RecordKey: key})
	e.s = e.b.Store
	sec, err := e.s.CreateSecret(e.ctx, "storetest", "", nil)
	if err != nil {
		t.Fatalf("create secret: %v", err)
	}
	e.secret = sec.Value
	return e
}

// machine names the next machine to enroll: a hostname and hints no other
// machine of this backend has.
func (e *env) machine() (string, string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	return fmt.Sprintf("pc-%03d", e.n), fmt.Sprintf("instance-%03d", e.n)
}

// importLicense signs and imports one license; its ID is p.ID.
func (e *env) importLicense(t tb, p license.Payload) store.License {
	t.Helper()
	if p.IssuedAt == 0 {
		p.IssuedAt = start.Add(-24 * time.Hour).Unix()
	}
	ls, err := e.s.ImportLicenses(e.ctx, []store.LicenseImport{e.issuer.Import(t, p)}, "admin:importer")
	if err != nil {
		t.Fatalf("import %s: %v", p.ID, err)
	}
	return ls[0]
}

// usage returns the pool of product of kind (node, node-locked,
// concurrent), or a zero Usage when the product has none.
func (e *env) usage(t tb, product, kind string) store.Usage {
	t.Helper()
	us, err := e.s.Usage(e.ctx, product)
	if err != nil {
		t.Fatalf("usage of %s: %v", product, err)
	}
	for _, u := range us {
		if u.Kind == kind {
			return u
		}
	}
	return store.Usage{Product: product, Kind: kind}
}

// holders lists the computers holding a node seat of product.
func (e *env) holders(t tb, product string) map[int64]bool {
	t.Helper()
	out := map[int64]bool{}
	for _, h := range e.usage(t, product, store.SeatNode).Holders {
		if out[h.ComputerID] {
			t.Fatalf("computer %d holds two seats of %s", h.ComputerID, product)
		}
		out[h.ComputerID] = true
	}
	return out
}

// wantHolders fails unless exactly the computers of ns hold a node seat of
// product.
func (e *env) wantHolders(t tb, product string, ns ...*node) {
	t.Helper()
	got := e.holders(t, product)
	want := map[int64]bool{}
	for _, n := range ns {
		want[n.computer] = true
	}
	if len(got) != len(want) {
		t.Fatalf("%s held by computers %v, want %v", product, keys(got), keys(want))
	}
	for c := range want {
		if !got[c] {
			t.Fatalf("%s held by computers %v, want %v", product, keys(got), keys(want))
		}
	}
}

func keys(m map[int64]bool) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// events returns the audit events f selects.
func (e *env) events(t tb, f store.EventFilter) []store.Event {
	t.Helper()
	ev, err := e.s.Events(e.ctx, f)
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	return ev
}

// auditLog returns every audit event, to compare before and after a
// request that must change nothing (a discard is counted on its event).
func (e *env) auditLog(t tb) []store.Event {
	t.Helper()
	return e.events(t, store.EventFilter{})
}

// computer reads one computer.
func (e *env) computer(t tb, n *node) store.Computer {
	t.Helper()
	c, err := e.s.Computer(e.ctx, n.computer)
	if err != nil {
		t.Fatalf("computer %d: %v", n.computer, err)
	}
	return c
}

// setStatus sets a computer's status as an administrator.
func (e *env) setStatus(t tb, n *node, status string) store.Change {
	t.Helper()
	ch, err := e.s.SetStatus(e.ctx, n.computer, status, "admin:alice")
	if err != nil {
		t.Fatalf("set status %s: %v", status, err)
	}
	return ch
}
