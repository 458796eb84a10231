package storemigrate_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/license/licensetest"
	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/recognize"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/pgsql"
	"github.com/tallyhq/tally/server/store/pgtest"
	"github.com/tallyhq/tally/server/store/sqlstore"
	"github.com/tallyhq/tally/server/store/storemigrate"
)

var pg pgtest.Shared

func TestMain(m *testing.M) { pg.Main(m) }

var epoch = time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)

var (
	monitor   = protocol.Plugin{Name: "monitor", Version: "2.0", BuildDate: "2026-01-01"}
	inventory = protocol.Plugin{Name: "inventory", Version: "7.1", BuildDate: "2026-01-01"}
)

// node is an enrolled agent key, its computer and its last sequence
// number.
type node struct {
	id       string
	computer int64
	host     string
	seq      uint64
}

// fixture is a populated SQLite database and what opens it.
type fixture struct {
	file  string
	opts  sqlstore.Options
	nodes []*node
}

// populate builds a SQLite installation through the store, as a server
// would: enrolled computers posting software and plug-ins, node,
// node-locked, concurrent and user licenses with seats held, an
// Activation ID bound, a lease, a user with a token, an application, a
// software license and a purchase, a retired and a deleted computer.
func populate(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	iss := licensetest.NewIssuer(t)
	key, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{file: filepath.Join(t.TempDir(), "tally.db"),
		opts: sqlstore.Options{Clock: clock.NewManual(epoch), VerifyLicense: iss.Verify, RecordKey: key}}
	open := f.opts
	open.NoSync, open.SkipQuickCheck = true, true
	db, err := sqlstore.Open(f.file, open)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	sec, err := db.CreateSecret(ctx, "migrate", "", nil)
	must(err)
	var imports []store.LicenseImport
	for _, p := range []license.Payload{
		{ID: "L-mon", Product: "monitor", Seats: 3},
		{ID: "L-inv", Product: "inventory", Seats: 5},
		{ID: "L-nl", Product: "monitor", Seats: 2, Kind: license.KindNodeLocked},
		{ID: "L-cc", Product: "monitor", Seats: 2, Kind: license.KindConcurrent},
		{ID: "U-1", Product: "inventory", Seats: 2, Kind: license.KindUser},
	} {
		p.IssuedAt = epoch.Add(-24 * time.Hour).Unix()
		imports = append(imports, iss.Import(t, p))
	}
	_, err = db.ImportLicenses(ctx, imports, "admin:alice")
	must(err)
	_, err = db.AddApplications(ctx, []store.Application{{Name: "Shell", Publisher: "GNU", Rules: []recognize.Rule{{Package: "bash"}}}}, "admin:alice")
	must(err)
	_, err = db.AddSoftwareLicense(ctx, store.SoftwareLicense{License: positions.License{Name: "Shell site", Duration: positions.Perpetual, UnitPrice: 1200},
		Applications: []string{"Shell"}}, "admin:alice")
	must(err)
	_, err = db.AddPurchases(ctx, []store.NewPurchase{{Purchase: positions.Purchase{PO: "PO-1", Item: "Shell seats", Quantity: 10, Type: positions.PurchaseLicense},
		Links: []positions.Link{{License: "Shell site", Quantity: 6}}}}, "admin:alice")
	must(err)
	for i := range 5 {
		kp, err := identity.NewKey()
		must(err)
		pub := kp.Public().(ed25519.PublicKey)
		host := fmt.Sprintf("pc-%02d", i)
		hints := protocol.Hints{InstanceID: fmt.Sprintf("instance-%02d", i)}
		resp, err := db.Enroll(ctx, store.EnrollParams{NodeID: identity.NodeID(pub), PublicKey: pub,
			Request: protocol.EnrollRequest{Secret: sec.Value, Hostname: host, Hints: hints, OS: "linux"}})
		must(err)
		n := &node{id: identity.NodeID(pub), computer: resp.ComputerID, host: host}
		f.nodes = append(f.nodes, n)
		pkgs := []protocol.Package{
			{Name: "bash", Version: "5.2", Arch: "amd64", Source: "dpkg", Publisher: "Debian"},
			{Name: "curl", Version: fmt.Sprintf("8.%d", i), Arch: "amd64", Source: "dpkg", Publisher: "Debian"},
			{Name: fmt.Sprintf("tool-%d", i), Version: "1.0", Arch: "all", Source: "dpkg"},
		}
		sw := &protocol.SoftwareInventory{Full: true, Packages: pkgs, Count: uint32(len(pkgs)), Hash: protocol.HashPackages(pkgs).String()}
		n.seq++
		out, err := db.PostInventory(ctx, store.Request{NodeID: n.id, Seq: n.seq, Kind: protocol.KindInventory},
			&protocol.InventoryRequest{Basic: protocol.BasicInventory{CollectedAt: epoch.Unix(), Hostname: host, OS: "linux", Platform: "debian",
				Hints: hints, Plugins: []protocol.Plugin{monitor, inventory}}, Software: sw})
		must(err)
		var ir protocol.InventoryResponse
		must(protocol.Unmarshal(out.Body, &ir))
		if ir.Software == nil || !ir.Software.Stored {
			t.Fatalf("%s's software not stored: %+v", host, ir.Software)
		}
	}
	act, err := db.CreateActivation(ctx, "monitor", 2, nil, "admin:alice")
	must(err)
	a := f.nodes[0]
	a.seq++
	out, err := db.Activate(ctx, store.Request{NodeID: a.id, Seq: a.seq, Kind: protocol.KindActivate},
		&protocol.ActivateRequest{ActivationID: act.ID, Machine: fmt.Sprintf("%064x", a.computer)})
	must(err)
	var ar protocol.ActivateResponse
	must(protocol.Unmarshal(out.Body, &ar))
	if ar.Result != protocol.ActivationOK {
		t.Fatalf("activate: %+v", ar)
	}
	b := f.nodes[1]
	b.seq++
	out, err = db.Lease(ctx, store.Request{NodeID: b.id, Seq: b.seq, Kind: protocol.KindLeaseCheckout}, "monitor", time.Hour)
	must(err)
	var lr protocol.LeaseResponse
	must(protocol.Unmarshal(out.Body, &lr))
	if !lr.Granted {
		t.Fatalf("lease: %+v", lr)
	}
	_, err = db.AddUser(ctx, store.NewUser{Domain: "CORP", Name: "alice"}, "admin:alice")
	must(err)
	_, err = db.AddCredential(ctx, store.NewCredential{User: `CORP\alice`, Product: "inventory", Kind: "token"}, "admin:alice")
	must(err)
	_, err = db.SetStatus(ctx, f.nodes[3].computer, "Retired", "admin:alice")
	must(err)
	_, err = db.DeleteComputer(ctx, f.nodes[4].computer, false, "admin:alice")
	must(err)
	return f
}

// view is everything an administrator sees of a store, to compare the
// two sides of a move.
func view(t *testing.T, s *sqlstore.DB, f *fixture) map[string]any {
	t.Helper()
	ctx := context.Background()
	v := map[string]any{}
	add := func(name string, x any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Through JSON, as the admin API shows it.
		b, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		v[name] = string(b)
	}
	page, err := s.ListComputers(ctx, store.ComputerFilter{})
	add("computers", page, err)
	for _, n := range f.nodes {
		c, err := s.Computer(ctx, n.computer)
		add("computer "+n.host, c, err)
		sw, err := s.Software(ctx, n.computer)
		add("software "+n.host, sw, err)
	}
	ls, err := s.Licenses(ctx)
	add("licenses", ls, err)
	for _, p := range []string{"monitor", "inventory"} {
		u, err := s.Usage(ctx, p)
		add("usage "+p, u, err)
	}
	acts, err := s.ActivationList(ctx)
	add("activations", acts, err)
	leases, err := s.Leases(ctx)
	add("leases", leases, err)
	ev, err := s.Events(ctx, store.EventFilter{Limit: 10_000})
	add("events", ev, err)
	users, err := s.Users(ctx)
	add("users", users, err)
	creds, err := s.Credentials(ctx, `CORP\alice`, "")
	add("credentials", creds, err)
	us, err := s.UserSeatUsage(ctx)
	add("user seats", us, err)
	apps, err := s.ApplicationList(ctx)
	add("applications", apps, err)
	sl, err := s.SoftwareLicenseList(ctx)
	add("software licenses", sl, err)
	ps, err := s.PurchaseList(ctx)
	add("purchases", ps, err)
	st, err := s.Statuses(ctx)
	add("statuses", st, err)
	return v
}

func openSQLite(t *testing.T, f *fixture) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(f.file, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openPG(t *testing.T, url string, f *fixture) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.OpenPostgres(context.Background(), url, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// counts reads every table's row count on the PostgreSQL database.
func counts(t *testing.T, url string) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, n := range names {
		var c int64
		if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM `+pgx.Identifier{n}.Sanitize()).Scan(&c); err != nil {
			t.Fatal(err)
		}
		out[n] = c
	}
	return out
}

// sqliteCounts reads every table's row count of the SQLite file.
func sqliteCounts(t *testing.T, file string) map[string]int64 {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+file+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' AND name <> 'schema_migrations'`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	rows.Close()
	out := map[string]int64{}
	for _, n := range names {
		var c int64
		if err := db.QueryRow(`SELECT COUNT(*) FROM "` + n + `"`).Scan(&c); err != nil {
			t.Fatal(err)
		}
		out[n] = c
	}
	return out
}

// Every computer, software set, license, seat, activation, lease, user,
// event, application, software license and purchase arrives; the
// invariants hold on PostgreSQL; the nodes carry on where they stopped
// (their applied requests came along), and new rows take new IDs.
func TestMigratePopulatedInstallation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := populate(t)
	src := openSQLite(t, f)
	want := view(t, src, f)
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	wantCounts := sqliteCounts(t, f.file)

	url := pg.Cluster(t).NewDatabase(t)
	before := fileHash(t, f.file)
	rep, err := storemigrate.Run(ctx, f.file, url, f.opts)
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if fileHash(t, f.file) != before {
		t.Fatal("the move changed the SQLite file")
	}
	if v, _ := sqlstore.PostgresSchemaVersion(); rep.SchemaVersion != v || v < 17 {
		t.Fatalf("schema version %d, PostgreSQL's %d", rep.SchemaVersion, v)
	}
	got := map[string]int64{}
	for _, tb := range rep.Tables {
		got[tb.Name] = tb.Rows
	}
	if !reflect.DeepEqual(got, wantCounts) {
		t.Fatalf("reported rows %v, SQLite has %v", got, wantCounts)
	}
	for _, name := range []string{"computers", "seats", "licenses", "activations", "leases", "events", "users", "purchases", "applied"} {
		if wantCounts[name] == 0 {
			t.Fatalf("the fixture has no %s: %v", name, wantCounts)
		}
	}
	pgCounts := counts(t, url)
	for name, n := range wantCounts {
		if pgCounts[name] != n {
			t.Errorf("%s: %d rows on PostgreSQL, %d in SQLite", name, pgCounts[name], n)
		}
	}

	dst := openPG(t, url, f)
	gotView := view(t, dst, f)
	for k, w := range want {
		if gotView[k] != w {
			t.Errorf("%s differs after the move:\n SQLite:     %s\n PostgreSQL: %s", k, w, gotView[k])
		}
	}
	wantInvariants(t, url, f.opts)

	// A repeat of a node's last request is answered from its record; its
	// next one is applied.
	n := f.nodes[2]
	basic := protocol.BasicInventory{CollectedAt: epoch.Unix(), Hostname: n.host, OS: "linux", Platform: "debian",
		Hints: protocol.Hints{InstanceID: "instance-02"}, Plugins: []protocol.Plugin{monitor, inventory}}
	out, err := dst.PostInventory(ctx, store.Request{NodeID: n.id, Seq: n.seq, Kind: protocol.KindInventory}, &protocol.InventoryRequest{Basic: basic})
	if err != nil || !out.Repeat {
		t.Fatalf("repeat of seq %d on PostgreSQL: repeat %v, %v", n.seq, out.Repeat, err)
	}
	out, err = dst.PostInventory(ctx, store.Request{NodeID: n.id, Seq: n.seq + 1, Kind: protocol.KindInventory}, &protocol.InventoryRequest{Basic: basic})
	if err != nil || out.Repeat {
		t.Fatalf("next post on PostgreSQL: repeat %v, %v", out.Repeat, err)
	}
	// New rows take IDs past the copied ones.
	sec, err := dst.CreateSecret(ctx, "after", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := identity.NewKey()
	pub := kp.Public().(ed25519.PublicKey)
	resp, err := dst.Enroll(ctx, store.EnrollParams{NodeID: identity.NodeID(pub), PublicKey: pub,
		Request: protocol.EnrollRequest{Secret: sec.Value, Hostname: "pc-new", Hints: protocol.Hints{InstanceID: "instance-new"}, OS: "linux"}})
	if err != nil {
		t.Fatalf("enroll on PostgreSQL: %v", err)
	}
	if last := f.nodes[len(f.nodes)-1].computer; resp.ComputerID <= last {
		t.Fatalf("new computer ID %d, the copied ones go up to %d", resp.ComputerID, last)
	}
	wantInvariants(t, url, f.opts)
}

// fileHash is the SHA-256 of a file.
func fileHash(t *testing.T, file string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// wantInvariants runs the seat checks on the PostgreSQL database.
func wantInvariants(t *testing.T, url string, opts sqlstore.Options) {
	t.Helper()
	ctx := context.Background()
	db, err := pgsql.Open(ctx, url, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, "ROLLBACK") //nolint:errcheck // a read transaction
	found, err := sqlstore.Invariants(ctx, conn, opts)
	if err != nil || len(found) > 0 {
		t.Fatalf("invariants on PostgreSQL: %v, %v", found, err)
	}
}

// empty fails unless the target holds no row but its schema's own.
func empty(t *testing.T, url string) {
	t.Helper()
	for name, n := range counts(t, url) {
		switch name {
		case "schema_migrations", "writer_generation":
			continue
		case "statuses":
			var custom int64
			conn, err := pgx.Connect(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			err = conn.QueryRow(context.Background(), `SELECT COUNT(*) FROM statuses WHERE builtin = 0`).Scan(&custom)
			conn.Close(context.Background())
			if err != nil || custom != 0 {
				t.Fatalf("statuses on the target: %d custom, %v", custom, err)
			}
			continue
		}
		if n != 0 {
			t.Fatalf("the target holds %d rows of %s", n, name)
		}
	}
}

// A failure in the middle of the copy (a row the target refuses) commits
// nothing: the target stays empty, and a later move succeeds.
func TestMigrateFailureLeavesTargetEmpty(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := populate(t)
	c := pg.Cluster(t)
	url := c.NewDatabase(t)
	s := openPG(t, url, f)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// seats is copied after computers, licenses, nodes and others.
	if _, err := conn.Exec(ctx, `ALTER TABLE seats ADD CONSTRAINT refuse_all CHECK (computer_id < 0)`); err != nil {
		t.Fatal(err)
	}
	_, err = storemigrate.Run(ctx, f.file, url, f.opts)
	if err == nil || !strings.Contains(err.Error(), "refuse_all") || !strings.Contains(err.Error(), "copy seats") {
		t.Fatalf("migrate into a target that refuses seats: %v", err)
	}
	empty(t, url)
	if _, err := conn.Exec(ctx, `ALTER TABLE seats DROP CONSTRAINT refuse_all`); err != nil {
		t.Fatal(err)
	}
	if _, err := storemigrate.Run(ctx, f.file, url, f.opts); err != nil {
		t.Fatalf("migrate again: %v", err)
	}
	wantInvariants(t, url, f.opts)
}

// The seats are checked on PostgreSQL before commit: a target that
// changes what it is given (here a trigger that zeroes a license's
// counter) fails the check, and nothing is committed.
func TestMigrateChecksSeatsOnTarget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := populate(t)
	url := pg.Cluster(t).NewDatabase(t)
	s := openPG(t, url, f)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE FUNCTION zero_held() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.held := 0; RETURN NEW; END $$;
		CREATE TRIGGER zero_held BEFORE INSERT ON licenses FOR EACH ROW WHEN (NEW.id = 'U-1') EXECUTE FUNCTION zero_held()`); err != nil {
		t.Fatal(err)
	}
	_, err = storemigrate.Run(ctx, f.file, url, f.opts)
	if !errors.Is(err, storemigrate.ErrCheck) || !strings.Contains(err.Error(), "user license U-1 counts 0 seats, 1 users hold one") ||
		!strings.Contains(err.Error(), "nothing was committed") {
		t.Fatalf("migrate into a target that zeroes U-1's counter: %v", err)
	}
	empty(t, url)
}

// A target that holds data is refused, naming what it holds, and left as
// it was.
func TestMigrateRefusesTargetWithData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := populate(t)
	url := pg.Cluster(t).NewDatabase(t)
	if _, err := storemigrate.Run(ctx, f.file, url, f.opts); err != nil {
		t.Fatal(err)
	}
	before := counts(t, url)
	_, err := storemigrate.Run(ctx, f.file, url, f.opts)
	if !errors.Is(err, storemigrate.ErrNotEmpty) || !strings.Contains(err.Error(), "computers") || !strings.Contains(err.Error(), "licenses") {
		t.Fatalf("second move: %v", err)
	}
	if after := counts(t, url); !reflect.DeepEqual(before, after) {
		t.Fatalf("refused move changed the target: %v → %v", before, after)
	}

	// One custom status is data too.
	url2 := pg.Cluster(t).NewDatabase(t)
	s := openPG(t, url2, f)
	if _, err := s.AddStatus(ctx, "Loaned", "lent out"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = storemigrate.Run(ctx, f.file, url2, f.opts)
	if !errors.Is(err, storemigrate.ErrNotEmpty) || !strings.Contains(err.Error(), "statuses") {
		t.Fatalf("move onto a custom status: %v", err)
	}
}

// A SQLite database at another schema version than this program's
// PostgreSQL schema is refused before the target is touched.
func TestMigrateRefusesOtherSchemaVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := populate(t)
	url := pg.Cluster(t).NewDatabase(t)
	db, err := sql.Open("sqlite3", "file:"+f.file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		stmt, want string
	}{
		{`DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)`, "upgrade first"},
		{`INSERT INTO schema_migrations (version, name, applied_at, program_version) VALUES (99, '0099_future.sql', 0, 'v9')`, "run migrate with the tally-server that last served it"},
	} {
		if _, err := db.Exec(tc.stmt); err != nil {
			t.Fatal(err)
		}
		_, err := storemigrate.Run(ctx, f.file, url, f.opts)
		if !errors.Is(err, storemigrate.ErrSchemaVersion) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("after %s: %v", tc.stmt, err)
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var tables int
	if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("the refused moves created %d tables (%v)", tables, err)
	}
}

// A source whose seats disagree with its licenses is refused: the move
// would carry the drift along.
func TestMigrateRefusesDriftedSource(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ stmt, want string }{
		{`UPDATE licenses SET held = held - 1 WHERE id = 'L-mon'`, "L-mon"},
		{`UPDATE licenses SET held = 0 WHERE id = 'U-1'`, "user license U-1 counts 0 seats, 1 users hold one"},
	} {
		f := populate(t)
		db, err := sql.Open("sqlite3", "file:"+f.file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(tc.stmt); err != nil {
			t.Fatal(err)
		}
		db.Close()
		url := pg.Cluster(t).NewDatabase(t)
		_, err = storemigrate.Run(context.Background(), f.file, url, f.opts)
		if !errors.Is(err, storemigrate.ErrCheck) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "maintenance run") {
			t.Fatalf("after %s: %v", tc.stmt, err)
		}
	}
}

// An unreachable or wrong target is a clear error that never shows the
// password.
func TestMigrateBadTarget(t *testing.T) {
	t.Parallel()
	f := populate(t)
	c := pg.Cluster(t)
	good := c.NewDatabase(t)
	noDB := strings.Replace(good, "/test_", "/missing_", 1)
	for _, target := range []string{
		"postgres://tally:hunter2@127.0.0.1:1/tally?connect_timeout=5&sslmode=disable",
		strings.Replace(noDB, "postgres@", "postgres:hunter2@", 1),
		"postgres://tally:hunter2@[::1/",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := storemigrate.Run(ctx, f.file, target, f.opts)
		cancel()
		if err == nil {
			t.Fatalf("%s: no error", storemigrate.Redact(target))
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("the error shows the password: %v", err)
		}
	}
	if got := storemigrate.Redact("postgres://u:pw@h/db?password=pw2"); strings.Contains(got, "pw") {
		t.Fatalf("redacted: %s", got)
	}
}
