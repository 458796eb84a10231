package integration

import (
	"database/sql"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the database/sql driver "pgx"

	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store/pgtest"
)

// TestLostAnswerRetriedOnAnotherReplicaIsAppliedOnce: two replicas on one
// PostgreSQL, an agent given both addresses. The answer to a post on the
// first is lost on its way back; the agent sends the same request (same
// sequence number) to the second, which answers with the first outcome
// from the shared database: each sequence number is applied once.
func TestLostAnswerRetriedOnAnotherReplicaIsAppliedOnce(t *testing.T) {
	dbURL := pgtest.Start(t).NewDatabase(t)
	a := servertest.New(t, servertest.WithStore(dbURL))
	iss := a.TrustNewIssuer(t)
	a.ImportLicense(t, iss, license.Payload{Product: "inventory", Seats: 5, Kind: license.KindNode})
	b := servertest.New(t, servertest.WithStore(dbURL))
	if a.Fingerprint() != b.Fingerprint() {
		t.Fatal("the replicas do not share one identity")
	}
	relay := newUDPRelay(t, a.Addr())
	data := filepath.Join(t.TempDir(), "agent")
	addrs := relay.Addr() + "," + b.Addr()
	if out, code := runCLI(t, false, "enroll", "--server", addrs, "--fingerprint", a.Fingerprint(), "--secret", a.Secret,
		"--data", data, "--machine-id", "replicated-agent"); code != 0 {
		t.Fatalf("enroll: exit %d\n%s", code, out)
	}
	ag := openAgent(t, data)
	first := postOnce(t, ag)
	relay.loseAnswers.Store(true)
	lost := postOnce(t, ag)
	if ag.Server() != b.Addr() {
		t.Fatalf("the post whose answer was lost ended at %s, want the second replica %s", ag.Server(), b.Addr())
	}
	if left := spoolSeqs(t, data); len(left) > 0 {
		t.Fatalf("spool holds %v", left)
	}

	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range append(first, lost...) {
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM applied WHERE seq = $1 AND node_id = (SELECT id FROM nodes WHERE revoked_at IS NULL LIMIT 1)`, int64(s)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("sequence number %d recorded %d times, want once", s, n)
		}
	}
	// The second replica answered the lost request (the spool drained)
	// without recording it a second time, which the (node, sequence
	// number) key would have refused: it found the first outcome.
	if n := len(appliedRows(t, db)); n != len(first)+len(lost) {
		t.Errorf("%d requests recorded, want the %d sent", n, len(first)+len(lost))
	}
}

// appliedRows lists the sequence numbers the database recorded.
func appliedRows(t *testing.T, db *sql.DB) []int64 {
	t.Helper()
	rows, err := db.Query(`SELECT seq FROM applied ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}
