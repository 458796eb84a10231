package sqlstore

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/store"
)

// swNode is an enrolled computer with an inventory seat, posting software.
type swNode struct {
	id        string
	computer  int64
	seq       uint64
	basicHash string
}

func swStore(t *testing.T, clk clock.Clock) *DB {
	t.Helper()
	db := OpenForTest(t, Options{Clock: clk})
	if _, err := db.ImportLicenses(context.Background(), []store.LicenseImport{{License: store.License{ID: "L-inventory",
		Product: "inventory", Kind: "node", Duration: "perpetual", Seats: 100, IssuedAt: time.Now(), Issuer: "test"}, File: []byte("x")}}, "test"); err != nil {
		t.Fatal(err)
	}
	return db
}

func swEnroll(t *testing.T, db *DB) *swNode {
	t.Helper()
	ctx := context.Background()
	s, err := db.CreateSecret(ctx, "test", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	n := &swNode{id: identity.NodeID(pub)}
	resp, err := db.Enroll(ctx, store.EnrollParams{NodeID: n.id, PublicKey: pub, Request: protocol.EnrollRequest{
		Secret: s.Value, Hostname: "pc-" + n.id[:6], Hints: protocol.Hints{InstanceID: n.id}}})
	if err != nil {
		t.Fatal(err)
	}
	n.computer = resp.ComputerID
	basic := protocol.BasicInventory{Hostname: "h", OS: "linux", Hints: protocol.Hints{InstanceID: n.id},
		Plugins: []protocol.Plugin{{Name: "inventory", Version: "7.1"}}}
	n.basicHash = basic.Hash()
	if resp := swPost(t, db, n, protocol.InventoryRequest{Basic: basic}); len(resp.Verdicts) != 1 || resp.Verdicts[0].Verdict != protocol.VerdictLicensed {
		t.Fatalf("verdicts %+v", resp.Verdicts)
	}
	return n
}

func swPost(t *testing.T, db *DB, n *swNode, req protocol.InventoryRequest) protocol.InventoryResponse {
	t.Helper()
	n.seq++
	out, err := db.PostInventory(context.Background(), store.Request{NodeID: n.id, Seq: n.seq, Kind: protocol.KindInventory}, &req)
	if err != nil {
		t.Fatal(err)
	}
	var resp protocol.InventoryResponse
	if err := protocol.Unmarshal(out.Body, &resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

// swSend posts sw (software only) and returns the software answer.
func swSend(t *testing.T, db *DB, n *swNode, sw *protocol.SoftwareInventory) protocol.SoftwareAck {
	t.Helper()
	resp := swPost(t, db, n, protocol.InventoryRequest{BasicHash: n.basicHash, Software: sw})
	if resp.Software == nil {
		t.Fatal("no software answer")
	}
	return *resp.Software
}

func pkg(name string, date int64) protocol.Package {
	return protocol.Package{Source: "dpkg", Name: name, Version: "1.0", Arch: "amd64", InstallDate: date}
}

// full is a full inventory of ps as an agent sends it (its count is the
// list's length, duplicates included; the hash is over unique packages).
func full(ps ...protocol.Package) *protocol.SoftwareInventory {
	return &protocol.SoftwareInventory{Full: true, Packages: ps, Count: uint32(len(ps)), Hash: hashOf(ps).String()}
}

func hashOf(ps []protocol.Package) protocol.SetHash {
	seen := map[string]bool{}
	var h protocol.SetHash
	for i := range ps {
		if k := packageKey(&ps[i]); !seen[k] {
			seen[k] = true
			h.Add(protocol.ItemHash(&ps[i]))
		}
	}
	return h
}

// delta is the delta an agent holding set (hash and count) would send.
func delta(base uint64, set []protocol.Package, removed, added []protocol.Package) *protocol.SoftwareInventory {
	h := hashOf(set)
	for i := range removed {
		h.Remove(protocol.ItemHash(&removed[i]))
	}
	for i := range added {
		h.Add(protocol.ItemHash(&added[i]))
	}
	return &protocol.SoftwareInventory{Base: base, Removed: removed, Added: added, Hash: h.String(),
		Count: uint32(len(set) - len(removed) + len(added))}
}

func wantSoftware(t *testing.T, db *DB, n *swNode, want ...protocol.Package) {
	t.Helper()
	got, err := db.Software(context.Background(), n.computer)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("stored %d packages, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("package %d of %d: stored %+v, want %+v", i, len(got), got[i], want[i])
		}
	}
}

func swColumns(t *testing.T, db *DB, n *swNode) (gen int64, hash string, count int) {
	t.Helper()
	if err := db.r.QueryRow(`SELECT sw_generation, sw_hash, sw_count FROM computers WHERE id = ?`, n.computer).Scan(&gen, &hash, &count); err != nil {
		t.Fatal(err)
	}
	return gen, hash, count
}

func TestSoftwareFullCountsDuplicatesOnce(t *testing.T) {
	db := swStore(t, nil)
	n := swEnroll(t, db)
	a1, a2, b := pkg("a", 100), pkg("a", 200), pkg("b", 0)
	if ack := swSend(t, db, n, full(b, a1, a2)); ack != (protocol.SoftwareAck{Generation: 1, Stored: true}) {
		t.Fatalf("full post: %+v", ack)
	}
	wantSoftware(t, db, n, a1, b) // the first install date of a package listed twice
	if gen, hash, count := swColumns(t, db, n); gen != 1 || hash != hashOf([]protocol.Package{a1, b}).String() || count != 2 {
		t.Fatalf("generation %d, hash %s, count %d", gen, hash, count)
	}
	if ack := swSend(t, db, n, delta(1, []protocol.Package{a1, b}, nil, nil)); ack != (protocol.SoftwareAck{Generation: 1, Stored: true}) {
		t.Fatalf("unchanged delta: %+v", ack)
	}
	// A full post replaces the set; an empty one empties it.
	if ack := swSend(t, db, n, full(b)); ack != (protocol.SoftwareAck{Generation: 2, Stored: true}) {
		t.Fatalf("second full post: %+v", ack)
	}
	wantSoftware(t, db, n, b)
	if ack := swSend(t, db, n, full()); ack != (protocol.SoftwareAck{Generation: 3, Stored: true}) {
		t.Fatalf("empty full post: %+v", ack)
	}
	wantSoftware(t, db, n)
	// Many packages listed many times, each time with another date.
	var many, first []protocol.Package
	for i := range 1000 {
		p := pkg(fmt.Sprintf("p%02d", i*7%50), int64(i))
		if i < 50 {
			first = append(first, p)
		}
		many = append(many, p)
	}
	slices.SortFunc(first, func(a, b protocol.Package) int { return strings.Compare(a.Name, b.Name) })
	if ack := swSend(t, db, n, full(many...)); ack != (protocol.SoftwareAck{Generation: 4, Stored: true}) {
		t.Fatalf("full post with duplicates: %+v", ack)
	}
	wantSoftware(t, db, n, first...)
	if _, hash, count := swColumns(t, db, n); hash != hashOf(first).String() || count != 50 {
		t.Fatalf("hash %s, count %d", hash, count)
	}
}

func TestSoftwareDeltaApplies(t *testing.T) {
	db := swStore(t, nil)
	n, other := swEnroll(t, db), swEnroll(t, db)
	a, b, c := pkg("a", 1), pkg("b", 2), pkg("c", 3)
	swSend(t, db, other, full(pkg("known", 9)))
	swSend(t, db, n, full(a, b, c))
	// Removals and additions, of packages new to the fleet and known to it.
	d, known := pkg("d", 0), pkg("known", 10)
	if ack := swSend(t, db, n, delta(1, []protocol.Package{a, b, c}, []protocol.Package{b}, []protocol.Package{known, d})); ack != (protocol.SoftwareAck{Generation: 2, Stored: true}) {
		t.Fatalf("delta: %+v", ack)
	}
	wantSoftware(t, db, n, a, c, d, known)
	// A package removed and added again (its date changed) in one delta.
	c2 := pkg("c", 33)
	if ack := swSend(t, db, n, delta(2, []protocol.Package{a, c, d, known}, []protocol.Package{c}, []protocol.Package{c2})); ack != (protocol.SoftwareAck{Generation: 3, Stored: true}) {
		t.Fatalf("delta: %+v", ack)
	}
	wantSoftware(t, db, n, a, c2, d, known)
	if gen, hash, count := swColumns(t, db, n); gen != 3 || hash != hashOf([]protocol.Package{a, c2, d, known}).String() || count != 4 {
		t.Fatalf("generation %d, hash %s, count %d", gen, hash, count)
	}
	// Every package removed.
	if ack := swSend(t, db, n, delta(3, []protocol.Package{a, c2, d, known}, []protocol.Package{known, a, d, c2}, nil)); ack != (protocol.SoftwareAck{Generation: 4, Stored: true}) {
		t.Fatalf("delta: %+v", ack)
	}
	wantSoftware(t, db, n)
}

// A delta whose hash and count agree but whose packages do not is not
// applied: nothing is written (not even a package new to the fleet), the
// stored hash is cleared, and the agent is asked for a full inventory.
func TestSoftwareDeltaMismatch(t *testing.T) {
	a, b, c := pkg("a", 1), pkg("b", 2), pkg("c", 3)
	set := []protocol.Package{a, b}
	for _, tc := range []struct {
		name             string
		removed, added   []protocol.Package
		hash             *protocol.SetHash // when the agent's hash differs from delta's
		corruptStoredSet bool
	}{
		{name: "remove a package the set lacks", removed: []protocol.Package{c}, added: []protocol.Package{pkg("new", 0)}},
		{name: "remove a package never seen", removed: []protocol.Package{pkg("unknown", 0)}, added: []protocol.Package{pkg("new", 0)}},
		{name: "remove a package twice", removed: []protocol.Package{a, a}, added: []protocol.Package{pkg("new", 0), pkg("new2", 0)}},
		{name: "add a package the set holds", added: []protocol.Package{pkg("new", 0), a}},
		{name: "add a new package twice", added: []protocol.Package{pkg("new", 0), pkg("new", 5)}},
		{name: "add a known package twice", added: []protocol.Package{c, c, pkg("new", 0)}},
		{name: "stored set unreadable", added: []protocol.Package{pkg("new", 0)}, corruptStoredSet: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := swStore(t, nil)
			n, other := swEnroll(t, db), swEnroll(t, db)
			swSend(t, db, other, full(c))
			swSend(t, db, n, full(set...))
			if tc.corruptStoredSet {
				if err := db.write(context.Background(), func(tx *Tx) error {
					_, err := tx.Exec(`UPDATE computer_software_sets SET ids = ? WHERE computer_id = ?`, []byte{1, 2}, n.computer)
					return err
				}); err != nil {
					t.Fatal(err)
				}
			}
			var packages int
			db.r.QueryRow(`SELECT COUNT(*) FROM packages`).Scan(&packages)
			if ack := swSend(t, db, n, delta(1, set, tc.removed, tc.added)); ack != (protocol.SoftwareAck{Generation: 1, SendFull: true}) {
				t.Fatalf("delta: %+v", ack)
			}
			if tc.corruptStoredSet {
				if _, err := db.Software(context.Background(), n.computer); !errors.Is(err, errBadSoftwareSet) {
					t.Fatalf("reading an unreadable set: %v", err)
				}
			} else {
				wantSoftware(t, db, n, a, b)
			}
			if gen, hash, count := swColumns(t, db, n); gen != 1 || hash != "" || count != 2 {
				t.Fatalf("generation %d, hash %q, count %d; want 1, cleared, 2", gen, hash, count)
			}
			var after int
			db.r.QueryRow(`SELECT COUNT(*) FROM packages`).Scan(&after)
			if after != packages {
				t.Fatalf("%d packages interned by a delta not applied", after-packages)
			}
			// With its hash cleared, the store takes no delta until a full post.
			if ack := swSend(t, db, n, delta(1, set, nil, nil)); !ack.SendFull {
				t.Fatalf("empty delta after a mismatch: %+v", ack)
			}
			if ack := swSend(t, db, n, full(a, c)); ack != (protocol.SoftwareAck{Generation: 2, Stored: true}) {
				t.Fatalf("full post after a mismatch: %+v", ack)
			}
			wantSoftware(t, db, n, a, c)
		})
	}
}

// Software comes ordered by source, name, arch and version, as when it
// was read in that order from one row per package.
func TestSoftwareOrder(t *testing.T) {
	db := swStore(t, nil)
	n := swEnroll(t, db)
	var ps []protocol.Package
	r := rand.New(rand.NewPCG(1, 1))
	for i := range 300 {
		ps = append(ps, protocol.Package{Source: []string{"dpkg", "snap", "rpm"}[r.IntN(3)], Name: fmt.Sprintf("p%d", r.IntN(40)),
			Version: fmt.Sprintf("1.%d", r.IntN(5)), Arch: []string{"amd64", "all", ""}[r.IntN(3)], Publisher: fmt.Sprint(i % 2),
			InstallDate: int64(r.IntN(3)) * 1_700_000_000})
	}
	swSend(t, db, n, full(ps...))
	got, err := db.Software(context.Background(), n.computer)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(ps)
	seen := map[string]bool{}
	want = slices.DeleteFunc(want, func(p protocol.Package) bool { k := packageKey(&p); d := seen[k]; seen[k] = true; return d })
	slices.SortFunc(want, func(a, b protocol.Package) int {
		for _, c := range [][2]string{{a.Source, b.Source}, {a.Name, b.Name}, {a.Arch, b.Arch}, {a.Version, b.Version}, {a.Publisher, b.Publisher}} {
			if c[0] != c[1] {
				if c[0] < c[1] {
					return -1
				}
				return 1
			}
		}
		return 0
	})
	if !slices.Equal(got, want) {
		t.Fatalf("read %d packages in another order or with other dates than the %d stored", len(got), len(want))
	}
}

// Maintenance purges the software of a computer whose inventory seat was
// freed longer ago than the product's retention (30 days).
func TestSoftwarePurged(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	db := swStore(t, clk)
	n := swEnroll(t, db)
	swSend(t, db, n, full(pkg("a", 1)))
	ctx := context.Background()
	if _, err := db.SetStatus(ctx, n.computer, "Retired", "test"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(31 * 24 * time.Hour)
	if r, err := db.RunMaintenance(ctx, store.MaintenanceOptions{}); err != nil || r.Purged != 1 {
		t.Fatalf("maintenance purged %d: %v", r.Purged, err)
	}
	wantSoftware(t, db, n)
	var rows int
	db.r.QueryRow(`SELECT COUNT(*) FROM computer_software_sets WHERE computer_id = ?`, n.computer).Scan(&rows)
	if gen, hash, count := swColumns(t, db, n); rows != 0 || gen != 0 || hash != "" || count != 0 {
		t.Fatalf("after the purge: %d rows, generation %d, hash %q, count %d", rows, gen, hash, count)
	}
}

// oldSchema makes a database at migration 6, the last with one row per
// package in computer_software, and returns its writer connection.
func oldSchema(t *testing.T, file string) *sql.DB {
	t.Helper()
	w, err := sql.Open("sqlite3", "file:"+file+"?_foreign_keys=on&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	old := &DB{w: w, clock: clock.System{}, log: slog.New(slog.DiscardHandler)}
	if err := old.migrate(6); err != nil {
		t.Fatal(err)
	}
	return w
}

// The software read with the query of the one-row-per-package store.
func oldSoftware(t *testing.T, w *sql.DB, computer int64) []protocol.Package {
	t.Helper()
	rows, err := w.Query(`SELECT p.source, p.name, p.version, p.arch, p.publisher, cs.install_date
		FROM computer_software cs JOIN packages p ON p.id = cs.package_id WHERE cs.computer_id = ?
		ORDER BY p.source, p.name, p.arch, p.version`, computer)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := []protocol.Package{}
	for rows.Next() {
		var p protocol.Package
		if err := rows.Scan(&p.Source, &p.Name, &p.Version, &p.Arch, &p.Publisher, &p.InstallDate); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// An existing database keeps every computer's software across migration
// 7, which moves it from one row per package to one row per computer.
func TestMigrationConvertsSoftware(t *testing.T) {
	file := filepath.Join(t.TempDir(), "old.db")
	w := oldSchema(t, file)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := w.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(7, 7))
	tx, err := w.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5000; i++ {
		// IDs with gaps, as after rolled-back interning.
		if _, err := tx.Exec(`INSERT INTO packages (id, source, name, version, arch, publisher) VALUES (?, ?, ?, ?, ?, ?)`,
			i*3+r.IntN(3), []string{"dpkg", "rpm", "windows-registry"}[i%3], fmt.Sprintf("pkg%d", i), fmt.Sprintf("%d.%d", r.IntN(9), r.IntN(9)),
			[]string{"amd64", "all", ""}[r.IntN(3)], []string{"", "Example Corp."}[r.IntN(2)]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var pkgIDs []int64
	rows, err := w.Query(`SELECT id FROM packages`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		pkgIDs = append(pkgIDs, id)
	}
	rows.Close()
	// Computers with 2,000 packages (dates real, unknown, negative), with
	// one, with none stored after an empty full post, and with none.
	sizes := []int{2000, 2000, 1, 0, 0, 2000, 37}
	tx, err = w.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for c, size := range sizes {
		gen := 0
		if c != 4 {
			gen = 1 + c
		}
		if _, err := tx.Exec(`INSERT INTO computers (id, hostname, first_seen, last_seen, sw_generation, sw_count) VALUES (?, ?, 0, 0, ?, ?)`,
			c+1, fmt.Sprintf("pc-%d", c), gen, size); err != nil {
			t.Fatal(err)
		}
		for _, k := range r.Perm(len(pkgIDs))[:size] {
			date := []int64{0, 1_700_000_000 + int64(r.IntN(40_000_000)), -int64(r.IntN(1000))}[r.IntN(3)]
			if _, err := tx.Exec(`INSERT INTO computer_software (computer_id, package_id, install_date) VALUES (?, ?, ?)`, c+1, pkgIDs[k], date); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	exec(`INSERT INTO computers (id, hostname, first_seen, last_seen) VALUES (100, 'no software', 0, 0)`)
	want := map[int64][]protocol.Package{}
	for c := range sizes {
		want[int64(c+1)] = oldSoftware(t, w, int64(c+1))
		if len(want[int64(c+1)]) != sizes[c] {
			t.Fatalf("computer %d: %d packages stored, want %d", c+1, len(want[int64(c+1)]), sizes[c])
		}
	}
	w.Close()

	db, err := Open(file, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.SchemaVersion(context.Background()); err != nil || v < 7 {
		t.Fatalf("schema version %d, %v", v, err)
	}
	var tables int
	db.r.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name = 'computer_software'`).Scan(&tables)
	if tables != 0 {
		t.Fatal("computer_software was not dropped")
	}
	for c, ps := range want {
		got, err := db.Software(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, ps) {
			t.Fatalf("computer %d: %d packages after the migration, %d before, or not the same", c, len(got), len(ps))
		}
	}
	var rowCount int
	db.r.QueryRow(`SELECT COUNT(*) FROM computer_software_sets`).Scan(&rowCount)
	if rowCount != 5 {
		t.Fatalf("%d rows in computer_software_sets, want one per computer with software (5)", rowCount)
	}
}

// A conversion that fails leaves the old table and the schema version as
// they were: the migration runs again at the next start.
func TestMigrationConvertsSoftwareAtomically(t *testing.T) {
	file := filepath.Join(t.TempDir(), "old.db")
	w := oldSchema(t, file)
	for _, q := range []string{
		`INSERT INTO computers (id, hostname, first_seen, last_seen) VALUES (1, 'a', 0, 0), (2, 'b', 0, 0)`,
		`INSERT INTO packages (id, source, name, version, arch, publisher) VALUES (1, 'dpkg', 'a', '1', '', ''), (-5, 'dpkg', 'b', '1', '', '')`,
		`INSERT INTO computer_software (computer_id, package_id, install_date) VALUES (1, 1, 0), (2, -5, 0)`,
	} {
		if _, err := w.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	if db, err := Open(file, Options{NoSync: true}); err == nil {
		db.Close()
		t.Fatal("a package ID the set format cannot hold was converted")
	}
	w, err := sql.Open("sqlite3", "file:"+file)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var version, rows, tables int
	w.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&version)
	w.QueryRow(`SELECT COUNT(*) FROM computer_software`).Scan(&rows)
	w.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name = 'computer_software_sets'`).Scan(&tables)
	if version != 6 || rows != 2 || tables != 0 {
		t.Fatalf("after a failed conversion: version %d, %d rows in computer_software, computer_software_sets %d; want 6, 2, 0", version, rows, tables)
	}
}
