package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/engine"
	"github.com/tallyhq/tally/server/ledger"
	"github.com/tallyhq/tally/server/store"
)

// ledgerTx is a write transaction as the ledger sees it (ledger.Tx): the
// SQL of what the ledger reads and writes, and the post cache's part of a
// node request (hot.go).
type ledgerTx struct {
	*Tx
	db *DB
	// What NodeRequest read of the node, for the software set and the
	// post cache.
	n              nodeState
	maxSeq, newest int64
}

var _ ledger.Tx = (*ledgerTx)(nil)

// ledgerBackend runs the ledger's transactions on the writer.
type ledgerBackend struct{ db *DB }

func (b ledgerBackend) Write(ctx context.Context, fn func(ledger.Tx) error) error {
	return b.db.write(ctx, func(tx *Tx) error { return fn(&ledgerTx{Tx: tx, db: b.db}) })
}

// lt wraps a transaction of an administrative job for the ledger.
func (db *DB) lt(tx *Tx) *ledgerTx { return &ledgerTx{Tx: tx, db: db} }

func (t *ledgerTx) Now() time.Time { return t.Tx.Now }

// nodeState is what a node request's transaction knows of the node.
type nodeState struct {
	id         string
	computerID int64
	status     string
	// What posts need of the computer, read with the node in one query.
	plugins   string // JSON
	basicHash string
	swGen     int64
	swHash    string
	swCount   int
	// The computer's seats and allocations when the post cache had them
	// (see Seats); cached says so.
	seats, allocs map[string]string
	cached        bool
}

func (t *ledgerTx) NodeRequest(r store.Request) (ledger.NodeRecord, error) {
	tx := t.Tx
	n := nodeState{id: r.NodeID}
	seq := int64(r.Seq)
	if hn, hc, ok := t.db.hot.lookup(r.NodeID, seq); ok {
		// The post cache knows the node and its computer, and seq is
		// above any applied: no read, no repeat (hot.go).
		n.computerID, t.maxSeq, t.newest = hn.computerID, hn.maxSeq, hn.newest
		n.status, n.plugins, n.basicHash = hc.status, hc.plugins, hc.basicHash
		n.swGen, n.swHash, n.swCount = hc.swGen, hc.swHash, hc.swCount
		n.seats, n.allocs, n.cached = hc.seats, hc.allocs, true
		tx.hot = &hotScope{node: r.NodeID, computer: n.computerID}
		t.n = n
		return ledger.NodeRecord{Node: t.node(), MaxSeq: t.maxSeq, Newest: t.newest}, nil
	}
	var rec ledger.NodeRecord
	var revokedAt sql.NullInt64
	// max_seq is the newest sequence number recorded in the node row,
	// which lags the newest applied (see ledger.apply): a post reads it
	// with the node and writes no node row. The computer's and the
	// applied record's columns are read by scalar subqueries, each a
	// primary-key seek, which SQLite runs faster than the same query
	// written with joins (docs/PERFORMANCE.md).
	err := tx.QueryRow(`SELECT n.computer_id, n.max_seq, n.revoked_at, n.revoked_reason,
			(SELECT c.status FROM computers c WHERE c.id = n.computer_id),
			(SELECT c.plugins FROM computers c WHERE c.id = n.computer_id),
			(SELECT c.basic_hash FROM computers c WHERE c.id = n.computer_id),
			(SELECT c.sw_generation FROM computers c WHERE c.id = n.computer_id),
			(SELECT c.sw_hash FROM computers c WHERE c.id = n.computer_id),
			(SELECT c.sw_count FROM computers c WHERE c.id = n.computer_id),
			EXISTS (SELECT 1 FROM applied a WHERE a.node_id = n.id AND a.seq = ?1),
			(SELECT a.response FROM applied a WHERE a.node_id = n.id AND a.seq = ?1),
			COALESCE((SELECT max(a.seq) FROM applied a WHERE a.node_id = n.id), 0)
		FROM nodes n WHERE n.id = ?2`, seq, r.NodeID).
		Scan(&n.computerID, &t.maxSeq, &revokedAt, &rec.RevokedReason, &n.status, &n.plugins, &n.basicHash, &n.swGen, &n.swHash, &n.swCount, &rec.Repeat, &rec.Answer, &t.newest)
	if errors.Is(err, sql.ErrNoRows) {
		return rec, store.ErrNotFound
	}
	if err != nil {
		return rec, fmt.Errorf("read node: %w", err)
	}
	t.n = n
	rec.Node, rec.Revoked, rec.MaxSeq, rec.Newest = t.node(), revokedAt.Valid, t.maxSeq, t.newest
	if !rec.Revoked && !rec.Repeat {
		tx.hot = &hotScope{node: r.NodeID, computer: n.computerID, read: &hotComputer{status: n.status, plugins: n.plugins,
			basicHash: n.basicHash, swGen: n.swGen, swHash: n.swHash, swCount: n.swCount}}
	}
	return rec, nil
}

func (t *ledgerTx) node() ledger.Node {
	return ledger.Node{ID: t.n.id, ComputerID: t.n.computerID, Status: t.n.status, Plugins: t.n.plugins, BasicHash: t.n.basicHash}
}

func (t *ledgerTx) RecordRequest(r store.Request, answer []byte) error {
	seq := int64(r.Seq)
	if _, err := t.ExecUncached(`INSERT INTO applied (node_id, seq, kind, at, response) VALUES (?, ?, ?, ?, ?)`,
		r.NodeID, seq, int64(r.Kind), ms(t.Tx.Now), answer); err != nil {
		return fmt.Errorf("record request: %w", err)
	}
	// The post cache learns the node's numbers once committed, AdvanceSeq
	// included (it runs after this).
	sc, hot := t.hot, t.db.hot
	t.OnCommit(func() {
		hot.settle(sc, hotNode{computerID: t.n.computerID, maxSeq: t.maxSeq, newest: max(t.newest, seq)})
	})
	return nil
}

func (t *ledgerTx) AdvanceSeq(node string, seq, forget int64) error {
	if _, err := t.ExecUncached(`UPDATE nodes SET max_seq = ?, last_seen = ? WHERE id = ?`, seq, ms(t.Tx.Now), node); err != nil {
		return fmt.Errorf("advance sequence: %w", err)
	}
	if _, err := t.ExecUncached(`DELETE FROM applied WHERE node_id = ? AND seq <= ?`, node, forget); err != nil {
		return fmt.Errorf("prune applied requests: %w", err)
	}
	t.maxSeq = seq
	return nil
}

// Seats reads the computer's seats and allocations in one query, or takes
// them from the post cache when NodeRequest found them there. The maps may
// be the cache's: the engine only reads them.
func (t *ledgerTx) Seats(n ledger.Node, again bool) (map[string]string, map[string]string, error) {
	if again {
		t.n.cached = false
	}
	if t.n.cached && n.ComputerID == t.n.computerID {
		return t.n.seats, t.n.allocs, nil
	}
	seats, allocs := map[string]string{}, map[string]string{}
	if sc := t.hot; sc != nil && sc.read != nil && !sc.seats {
		// What is read first is what the post cache keeps, if the job
		// changes none of it (hot.go).
		defer func() {
			sc.seats = true
			if len(seats) > 0 {
				sc.read.seats = seats
			}
			if len(allocs) > 0 {
				sc.read.allocs = allocs
			}
		}()
	}
	rows, err := t.Query(`SELECT 1, product, license_id FROM seats WHERE computer_id = ?
		UNION ALL SELECT 2, product, license_id FROM allocations WHERE computer_id = ?`, n.ComputerID, n.ComputerID)
	if err != nil {
		return nil, nil, fmt.Errorf("read seats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var which int
		var p, l string
		if err := rows.Scan(&which, &p, &l); err != nil {
			return nil, nil, err
		}
		if which == 1 {
			seats[p] = l
		} else {
			allocs[p] = l
		}
	}
	return seats, allocs, rows.Err()
}

func (t *ledgerTx) Computer(id int64) (engine.Computer, string, error) { return loadComputer(t.Tx, id) }

func (t *ledgerTx) LicenseDates(products []string) (engine.Pool, bool, error) {
	meta, err := t.db.licenses.pool(t.Tx, products)
	if err != nil {
		return nil, false, err
	}
	return meta, t.db.licenses.needsSweep(meta, t.Tx.Now), nil
}

func (t *ledgerTx) MarkSwept(meta engine.Pool) { t.db.licenses.markSwept(t.Tx, meta, t.Tx.Now) }

func (t *ledgerTx) LicenseCounts(products []string) (engine.Pool, error) {
	return loadPool(t.Tx, products)
}

func (t *ledgerTx) LicenseLoad(id string) (seats, held, reserved int, err error) {
	if err := t.QueryRow(`SELECT l.seats, (SELECT COUNT(*) FROM seats s WHERE s.license_id = l.id), (SELECT COUNT(*) FROM allocations a WHERE a.license_id = l.id
			AND NOT EXISTS (SELECT 1 FROM seats s WHERE s.computer_id = a.computer_id AND s.product = a.product AND s.license_id = a.license_id))
		FROM licenses l WHERE l.id = ?`, id).Scan(&seats, &held, &reserved); err != nil {
		return 0, 0, 0, err
	}
	if g, ok, err := t.lic.grantOf(t.Tx, id); err != nil {
		return 0, 0, 0, err
	} else if ok {
		seats = g.seats
	}
	return seats, held, reserved, nil
}

func (t *ledgerTx) ExpiredWithSeats(products []string) (map[string][]string, error) {
	q := `SELECT id, product FROM licenses l WHERE (held > 0 OR EXISTS (SELECT 1 FROM seats s WHERE s.license_id = l.id)) AND expires_at IS NOT NULL AND expires_at <= ?`
	args := []any{ms(t.Tx.Now)}
	if products != nil {
		q += ` AND product IN (` + strings.TrimSuffix(strings.Repeat("?,", len(products)), ",") + `)`
		for _, p := range products {
			args = append(args, p)
		}
	}
	rows, err := t.Query(q, args...)
	if err != nil {
		return nil, fmt.Errorf("find expired licenses: %w", err)
	}
	defer rows.Close()
	byProduct := map[string][]string{}
	for rows.Next() {
		var id, p string
		if err := rows.Scan(&id, &p); err != nil {
			return nil, err
		}
		byProduct[p] = append(byProduct[p], id)
	}
	return byProduct, rows.Err()
}

func (t *ledgerTx) SeatHolders(license string) ([]int64, error) {
	rows, err := t.Query(`SELECT computer_id FROM seats WHERE license_id = ? ORDER BY since, computer_id`, license)
	if err != nil {
		return nil, fmt.Errorf("read holders: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func (t *ledgerTx) ConsumeSeat(e engine.Effect) error {
	if _, err := t.Exec(`INSERT INTO seats (computer_id, product, license_id, since, reason) VALUES (?, ?, ?, ?, ?)`,
		e.ComputerID, e.Product, e.License, ms(t.Tx.Now), e.Reason); err != nil {
		return fmt.Errorf("consume seat: %w", err)
	}
	if err := adjustHeld(t.Tx, e.License, +1); err != nil {
		return err
	}
	_, err := t.Exec(`DELETE FROM freed WHERE computer_id = ? AND product = ?`, e.ComputerID, e.Product)
	return err
}

func (t *ledgerTx) FreeSeat(e engine.Effect) (bool, error) {
	res, err := t.Exec(`DELETE FROM seats WHERE computer_id = ? AND product = ?`, e.ComputerID, e.Product)
	if err != nil {
		return false, fmt.Errorf("free seat: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	if err := adjustHeld(t.Tx, e.From, -1); err != nil {
		return false, err
	}
	_, err = t.Exec(`INSERT INTO freed (computer_id, product, freed_at) VALUES (?, ?, ?)
		ON CONFLICT (computer_id, product) DO UPDATE SET freed_at = excluded.freed_at`, e.ComputerID, e.Product, ms(t.Tx.Now))
	return err == nil, err
}

func (t *ledgerTx) MoveSeat(e engine.Effect) error {
	if _, err := t.Exec(`UPDATE seats SET license_id = ? WHERE computer_id = ? AND product = ?`, e.License, e.ComputerID, e.Product); err != nil {
		return fmt.Errorf("move seat: %w", err)
	}
	if err := adjustHeld(t.Tx, e.From, -1); err != nil {
		return err
	}
	return adjustHeld(t.Tx, e.License, +1)
}

func (t *ledgerTx) CountRefusal(pool string, computer int64, product string, v protocol.Verdict, nodeID, actor string) error {
	return countRefusal(t.Tx, pool, computer, product, v, nodeID, actor)
}

func (t *ledgerTx) AddEvent(e store.Event) error { return addEvent(t.Tx, e) }

func (t *ledgerTx) SetStatus(computer int64, status string) error {
	_, err := t.ExecComputer(computer, `UPDATE computers SET status = ? WHERE id = ?`, status, computer)
	return err
}

func (t *ledgerTx) StoreBasic(computer int64, b *ledger.Basic) error {
	hs := hintList(b.Inventory.Hints)
	hh := hintsHash(hs)
	var oldHash string
	if err := t.QueryRow(`SELECT hints_hash FROM computers WHERE id = ?`, computer).Scan(&oldHash); err != nil {
		return fmt.Errorf("read computer: %w", err)
	}
	in := b.Inventory
	if _, err := t.ExecComputer(computer, `UPDATE computers SET hostname = ?, os = ?, platform = ?, platform_version = ?, arch = ?, last_seen = ?, plugins = ?, basic_hash = ?, backlog = ?
		WHERE id = ?`, in.Hostname, in.OS, in.Platform, in.PlatformVersion, in.Arch, ms(t.Tx.Now), b.Plugins, b.Hash, b.Backlog, computer); err != nil {
		return fmt.Errorf("store basic inventory: %w", err)
	}
	if _, err := t.ExecUncached(`INSERT INTO basic_inventory (computer_id, blob) VALUES (?, ?)
		ON CONFLICT (computer_id) DO UPDATE SET blob = excluded.blob`, computer, b.Blob); err != nil {
		return fmt.Errorf("store basic inventory: %w", err)
	}
	if oldHash != hh {
		return replaceHints(t.Tx, computer, hs)
	}
	return nil
}

func (t *ledgerTx) Touch(computer int64, backlog uint32) error {
	_, err := t.ExecUncached(`UPDATE computers SET last_seen = ?, backlog = ? WHERE id = ?`, ms(t.Tx.Now), backlog, computer)
	return err
}

func (t *ledgerTx) StoreSoftware(n ledger.Node, sw *protocol.SoftwareInventory) (*protocol.SoftwareAck, string, error) {
	return t.db.storeSoftware(t.Tx, t.n, sw)
}

func (t *ledgerTx) StoreProductData(computer int64, product, kind string, blob []byte) error {
	_, err := t.ExecUncached(`INSERT INTO product_data (computer_id, product, kind, at, payload) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (computer_id, product, kind) DO UPDATE SET at = excluded.at, payload = excluded.payload, posts = product_data.posts + 1`,
		computer, product, kind, ms(t.Tx.Now), blob)
	return err
}

func (t *ledgerTx) TakeTasks(computer int64) ([]protocol.Task, error) {
	return takeTasks(t.Tx, computer)
}

func (t *ledgerTx) PatchCatalog(names []string) ([]protocol.MinimumVersion, error) {
	return patchCatalog(t.Tx, names)
}

func (t *ledgerTx) ComputerBindings(computer int64) ([]ledger.Binding, error) {
	rows, err := t.Query(`SELECT b.id, a.id, a.product, a.license_id FROM activations b JOIN activation_ids a ON a.id = b.activation_id
		WHERE b.computer_id = ? AND b.ended_at IS NULL`, computer)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var bs []ledger.Binding
	for rows.Next() {
		var b ledger.Binding
		if err := rows.Scan(&b.ID, &b.ActivationID, &b.Product, &b.License); err != nil {
			return nil, err
		}
		bs = append(bs, b)
	}
	return bs, rows.Err()
}

func (t *ledgerTx) ComputerLeases(computer int64) ([]ledger.HeldLease, error) {
	rows, err := t.Query(`SELECT product, license_id FROM leases WHERE computer_id = ? AND expires_at > ?`, computer, ms(t.Tx.Now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ls []ledger.HeldLease
	for rows.Next() {
		var l ledger.HeldLease
		if err := rows.Scan(&l.Product, &l.License); err != nil {
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, rows.Err()
}

func (t *ledgerTx) RevokeNode(node, reason string) error {
	_, err := t.Exec(`UPDATE nodes SET revoked_at = ?, revoked_reason = ? WHERE id = ?`, ms(t.Tx.Now), reason, node)
	return err
}

func (t *ledgerTx) SetFlag(computer int64, flag string, on bool, actor, why string) error {
	return setFlag(t.Tx, computer, flag, on, actor, why)
}

// SetPlugins also empties the basic inventory's hash: the stored basic
// inventory no longer describes the computer's row, so the next post that
// sends only a hash (an agent that put the plug-in back, say) is asked for
// the whole basic inventory.
func (t *ledgerTx) SetPlugins(computer int64, plugins string) error {
	_, err := t.ExecComputer(computer, `UPDATE computers SET plugins = ?, basic_hash = '' WHERE id = ?`, plugins, computer)
	return err
}

func (t *ledgerTx) ExpireActivations(actor string) ([]store.SeatChange, error) {
	return expireActivations(t.Tx, actor)
}

func (t *ledgerTx) ActivationID(id string) (*engine.ActivationID, error) {
	return loadActivationID(t.Tx, id)
}

func (t *ledgerTx) Binding(activationID string, computer int64) (ledger.Binding, bool, error) {
	b := ledger.Binding{ActivationID: activationID}
	err := t.QueryRow(`SELECT b.id, a.product, a.license_id, b.record FROM activations b JOIN activation_ids a ON a.id = b.activation_id
		WHERE b.activation_id = ? AND b.computer_id = ? AND b.ended_at IS NULL`, activationID, computer).Scan(&b.ID, &b.Product, &b.License, &b.Record)
	if errors.Is(err, sql.ErrNoRows) {
		return b, false, nil
	}
	return b, err == nil, err
}

func (t *ledgerTx) Bind(a *engine.ActivationID, n ledger.Node, machine string, record []byte) error {
	if _, err := t.Exec(`INSERT INTO activations (activation_id, computer_id, node_id, machine, activated_at, record) VALUES (?, ?, ?, ?, ?, ?)`,
		a.ID, n.ComputerID, n.ID, machine, ms(t.Tx.Now), record); err != nil {
		return err
	}
	return adjustHeld(t.Tx, a.License.ID, +1)
}

func (t *ledgerTx) EndBinding(b ledger.Binding, reason string) error {
	return endActivation(t.Tx, b.ID, b.License, reason)
}

func (t *ledgerTx) LastEndReason(activationID string, computer int64) (string, bool, error) {
	var reason string
	err := t.QueryRow(`SELECT end_reason FROM activations WHERE activation_id = ? AND computer_id = ? ORDER BY ended_at DESC LIMIT 1`, activationID, computer).Scan(&reason)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return reason, err == nil, err
}

func (t *ledgerTx) Lease(product string, computer int64) (ledger.Lease, bool, error) {
	var exp, ttl int64
	err := t.QueryRow(`SELECT expires_at, ttl FROM leases WHERE product = ? AND computer_id = ?`, product, computer).Scan(&exp, &ttl)
	if errors.Is(err, sql.ErrNoRows) {
		return ledger.Lease{}, false, nil
	}
	if err != nil {
		return ledger.Lease{}, false, err
	}
	return ledger.Lease{Expires: fromMS(exp), TTL: time.Duration(ttl) * time.Millisecond}, true, nil
}

func (t *ledgerTx) DropLease(product string, computer int64) error {
	_, err := t.Exec(`DELETE FROM leases WHERE product = ? AND computer_id = ?`, product, computer)
	return err
}

func (t *ledgerTx) RenewLease(product string, computer int64, expires time.Time, ttl time.Duration) error {
	if ttl == 0 {
		_, err := t.Exec(`UPDATE leases SET expires_at = ? WHERE product = ? AND computer_id = ?`, ms(expires), product, computer)
		return err
	}
	_, err := t.Exec(`UPDATE leases SET expires_at = ?, ttl = ? WHERE product = ? AND computer_id = ?`, ms(expires), ttl.Milliseconds(), product, computer)
	return err
}

func (t *ledgerTx) LeasePool(product string) ([]*engine.License, []time.Time, error) {
	return leasePool(t.Tx, product)
}

func (t *ledgerTx) GrantLease(product string, n ledger.Node, lic string, expires time.Time, ttl time.Duration) error {
	_, err := t.Exec(`INSERT INTO leases (product, computer_id, license_id, node_id, granted_at, expires_at, ttl) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (product, computer_id) DO UPDATE SET license_id = excluded.license_id, node_id = excluded.node_id,
		granted_at = excluded.granted_at, expires_at = excluded.expires_at, ttl = excluded.ttl`,
		product, n.ComputerID, lic, n.ID, ms(t.Tx.Now), ms(expires), ttl.Milliseconds())
	return err
}
