package sqlstore

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/tallyhq/tally/common/machineid"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/store"
)

// Hint kinds as stored in computer_hints and blocked, with the weight each
// carries when a new key's hints are matched to existing computers.
const (
	hintInstance  = "instance"
	hintUUID      = "uuid"
	hintSerial    = "serial"
	hintMachineID = "machine-id"
	hintMAC       = "mac"
	hintKey       = "key" // only in blocked
)

var hintWeight = map[string]int{hintInstance: 8, hintUUID: 4, hintMachineID: 4, hintSerial: 2, hintMAC: 1}

// minMatchScore is the weight a computer's shared hints must reach to be
// taken for the same machine: one strong identifier, or two MACs. A single
// shared MAC (a docking station's NIC) is not enough.
const minMatchScore = 2

type hint struct{ kind, value string }

func hintList(h protocol.Hints) []hint {
	var out []hint
	add := func(k, v string) {
		if v != "" {
			out = append(out, hint{k, v})
		}
	}
	add(hintInstance, h.InstanceID)
	add(hintUUID, h.ProductUUID)
	add(hintSerial, h.Serial)
	add(hintMachineID, h.MachineID)
	for _, m := range h.MACs {
		add(hintMAC, m)
	}
	return out
}

func hintsHash(hs []hint) string {
	h := sha256.New()
	for _, x := range hs {
		h.Write([]byte(x.kind))
		h.Write([]byte{0})
		h.Write([]byte(x.value))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// Enroll implements store.Nodes.
func (db *DB) Enroll(ctx context.Context, p store.EnrollParams) (protocol.EnrollResponse, error) {
	var resp protocol.EnrollResponse
	hints := machineid.Clean(p.Request.Hints)
	hs := hintList(hints)
	err := db.write(ctx, func(tx *Tx) error {
		resp = protocol.EnrollResponse{NodeID: p.NodeID}
		secretID, err := checkSecret(tx, p.Request.Secret)
		if err != nil {
			return err
		}
		// A key that is already enrolled: idempotent.
		var computerID int64
		var revokedReason string
		var revoked bool
		err = tx.QueryRow(`SELECT computer_id, revoked_at IS NOT NULL, revoked_reason FROM nodes WHERE id = ?`, p.NodeID).
			Scan(&computerID, &revoked, &revokedReason)
		// A revoked key enrolls again, with a valid secret, as a new key
		// would: its computer deleted (block lifted, if any), it becomes a
		// new computer that starts from nothing; its agent uninstalled, it
		// returns to the computer its hints match. Accepting the key rather
		// than making the agent mint another keeps the enroll line every
		// refusal prints working on that machine as it is, whatever the
		// agent's version; the secret is what admits a machine, not the key.
		// A blocked machine stays refused until unblocked, and a superseded
		// key (a clone, see SplitClone) is still enrolled.
		reuseKey := err == nil && revoked && revokedReason != store.RevokedBlocked && revokedReason != store.RevokedSuperseded
		revokedFrom := computerID
		switch {
		case reuseKey:
		case err == nil && revoked && revokedReason == store.RevokedBlocked:
			return store.BlockedError(computerID)
		case err == nil:
			resp.ComputerID, resp.Existing = computerID, true
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("look up node: %w", err)
		}
		if err := checkBlocked(tx, p.NodeID, hs); err != nil {
			return err
		}
		matched, err := matchComputer(tx, hs)
		if err != nil {
			return err
		}
		if matched != 0 {
			computerID = matched
			resp.Reenrolled = true
			// The machine's earlier keys fall silent: it was re-imaged. If
			// one speaks again, SplitClone separates the two machines.
			rows, err := tx.Query(`SELECT id FROM nodes WHERE computer_id = ? AND revoked_at IS NULL`, computerID)
			if err != nil {
				return fmt.Errorf("old keys: %w", err)
			}
			var old []string
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				old = append(old, id)
			}
			rows.Close()
			for _, id := range old {
				if _, err := tx.Exec(`UPDATE nodes SET revoked_at = ?, revoked_reason = ?, superseded_by = ? WHERE id = ?`,
					ms(tx.Now), store.RevokedSuperseded, p.NodeID, id); err != nil {
					return fmt.Errorf("revoke old key: %w", err)
				}
				if err := addEvent(tx, store.Event{Actor: store.NodeActor(p.NodeID), Kind: store.EventKeyRevoked, ComputerID: computerID,
					NodeID: id, Reason: "superseded: the machine enrolled again with key " + p.NodeID + " (re-imaged)"}); err != nil {
					return err
				}
			}
			why := "identity hints match this computer; new key replaces " + strings.Join(old, ", ")
			if reuseKey {
				why = fmt.Sprintf("identity hints match this computer; its key, revoked (%s) on computer %d, enrolled again", revokedReason, revokedFrom)
				if len(old) > 0 {
					why += " and replaces " + strings.Join(old, ", ")
				}
			}
			if err := addEvent(tx, store.Event{Actor: store.NodeActor(p.NodeID), Kind: store.EventReenrolled, ComputerID: computerID,
				NodeID: p.NodeID, Reason: why}); err != nil {
				return err
			}
			if err := setFlag(tx, computerID, store.FlagAgentUninstalled, false, store.NodeActor(p.NodeID), "the machine enrolled again"); err != nil {
				return err
			}
		} else {
			if computerID, err = tx.ExecID(`INSERT INTO computers (hostname, os, first_seen, last_seen, hints_hash) VALUES (?, ?, ?, ?, ?) RETURNING id`,
				p.Request.Hostname, p.Request.OS, ms(tx.Now), ms(tx.Now), hintsHash(hs)); err != nil {
				return fmt.Errorf("create computer: %w", err)
			}
			why := "new computer " + p.Request.Hostname
			if reuseKey {
				why += fmt.Sprintf(" (its key, revoked (%s) on computer %d, enrolled again)", revokedReason, revokedFrom)
			}
			if err := addEvent(tx, store.Event{Actor: store.NodeActor(p.NodeID), Kind: store.EventEnrolled, ComputerID: computerID,
				NodeID: p.NodeID, Reason: why}); err != nil {
				return err
			}
		}
		if err := replaceHints(tx, computerID, hs); err != nil {
			return err
		}
		if reuseKey {
			if _, err := tx.Exec(`UPDATE nodes SET computer_id = ?, secret_id = ?, enrolled_at = ?, last_seen = ?, revoked_at = NULL, revoked_reason = '', superseded_by = NULL
				WHERE id = ?`, computerID, secretID, ms(tx.Now), ms(tx.Now), p.NodeID); err != nil {
				return fmt.Errorf("enroll revoked key again: %w", err)
			}
		} else if _, err := tx.Exec(`INSERT INTO nodes (id, computer_id, public_key, secret_id, enrolled_at, last_seen) VALUES (?, ?, ?, ?, ?, ?)`,
			p.NodeID, computerID, p.PublicKey, secretID, ms(tx.Now), ms(tx.Now)); err != nil {
			return fmt.Errorf("create node: %w", err)
		}
		if _, err := tx.Exec(`UPDATE secrets SET uses = uses + 1, last_used = ? WHERE id = ?`, ms(tx.Now), secretID); err != nil {
			return fmt.Errorf("count secret use: %w", err)
		}
		resp.ComputerID = computerID
		return nil
	})
	if err != nil {
		return protocol.EnrollResponse{}, err
	}
	return resp, nil
}

// checkSecret finds the active secret equal to value, comparing in
// constant time so the comparison leaks nothing of the stored secrets.
func checkSecret(tx *Tx, value string) (string, error) {
	rows, err := tx.Query(`SELECT id, value, expires_at FROM secrets WHERE revoked_at IS NULL`)
	if err != nil {
		return "", fmt.Errorf("read secrets: %w", err)
	}
	defer rows.Close()
	found := ""
	for rows.Next() {
		var id, v string
		var exp sql.NullInt64
		if err := rows.Scan(&id, &v, &exp); err != nil {
			return "", err
		}
		if subtle.ConstantTimeCompare([]byte(v), []byte(value)) == 1 && (!exp.Valid || ms(tx.Now) < exp.Int64) {
			found = id
		}
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	if found == "" {
		return "", store.ErrBadSecret
	}
	return found, nil
}

func checkBlocked(tx *Tx, nodeID string, hs []hint) error {
	all := append([]hint{{hintKey, nodeID}}, hs...)
	for _, h := range all {
		if h.kind == hintMAC {
			continue // MACs alone never block: NICs move between machines
		}
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM blocked WHERE kind = ? AND value = ?`, h.kind, h.value).Scan(&n); err != nil {
			return fmt.Errorf("check block list: %w", err)
		}
		if n > 0 {
			var id int64
			if err := tx.QueryRow(`SELECT COALESCE(computer_id, 0) FROM blocked WHERE kind = ? AND value = ?`, h.kind, h.value).Scan(&id); err != nil {
				return fmt.Errorf("check block list: %w", err)
			}
			return store.BlockedError(id)
		}
	}
	return nil
}

// matchComputer returns the live computer whose stored hints best match hs,
// or 0 when none reaches minMatchScore.
func matchComputer(tx *Tx, hs []hint) (int64, error) {
	if len(hs) == 0 {
		return 0, nil
	}
	var sb strings.Builder
	args := make([]any, 0, 2*len(hs))
	sb.WriteString(`SELECT h.computer_id, h.kind, c.last_seen FROM computer_hints h JOIN computers c ON c.id = h.computer_id
		WHERE c.deleted_at IS NULL AND (`)
	for i, h := range hs {
		if i > 0 {
			sb.WriteString(" OR ")
		}
		sb.WriteString("(h.kind = ? AND h.value = ?)")
		args = append(args, h.kind, h.value)
	}
	sb.WriteString(")")
	rows, err := tx.Query(sb.String(), args...)
	if err != nil {
		return 0, fmt.Errorf("match hints: %w", err)
	}
	defer rows.Close()
	score := map[int64]int{}
	seen := map[int64]int64{}
	for rows.Next() {
		var id, last int64
		var kind string
		if err := rows.Scan(&id, &kind, &last); err != nil {
			return 0, err
		}
		score[id] += hintWeight[kind]
		seen[id] = last
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	var best int64
	for id, s := range score {
		if s < minMatchScore {
			continue
		}
		if best == 0 || s > score[best] || (s == score[best] && seen[id] > seen[best]) || (s == score[best] && seen[id] == seen[best] && id > best) {
			best = id
		}
	}
	return best, nil
}

func replaceHints(tx *Tx, computerID int64, hs []hint) error {
	if _, err := tx.ExecUncached(`DELETE FROM computer_hints WHERE computer_id = ?`, computerID); err != nil {
		return fmt.Errorf("replace hints: %w", err)
	}
	for _, h := range hs {
		if _, err := tx.ExecUncached(`INSERT INTO computer_hints (computer_id, kind, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, computerID, h.kind, h.value); err != nil {
			return fmt.Errorf("store hint: %w", err)
		}
	}
	if _, err := tx.ExecComputer(computerID, `UPDATE computers SET hints_hash = ? WHERE id = ?`, hintsHash(hs), computerID); err != nil {
		return fmt.Errorf("store hints hash: %w", err)
	}
	return nil
}

// Node implements store.Nodes.
func (db *DB) Node(ctx context.Context, id string) (store.Node, error) {
	var n store.Node
	var enrolled, last int64
	var revokedAt sql.NullInt64
	err := db.r.QueryRowContext(ctx, `SELECT id, computer_id, enrolled_at, last_seen, revoked_at, revoked_reason FROM nodes WHERE id = ?`, id).
		Scan(&n.ID, &n.ComputerID, &enrolled, &last, &revokedAt, &n.RevokedReason)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Node{}, store.ErrNotFound
	}
	if err != nil {
		return store.Node{}, fmt.Errorf("read node: %w", err)
	}
	n.EnrolledAt, n.LastSeen = fromMS(enrolled), fromMS(last)
	n.Revoked = revokedAt.Valid
	n.Superseded = n.Revoked && n.RevokedReason == store.RevokedSuperseded
	return n, nil
}

// SplitClone implements store.Nodes.
func (db *DB) SplitClone(ctx context.Context, nodeID string) (store.Node, error) {
	err := db.write(ctx, func(tx *Tx) error {
		var oldID int64
		var reason string
		var revoked bool
		err := tx.QueryRow(`SELECT computer_id, revoked_at IS NOT NULL, revoked_reason FROM nodes WHERE id = ?`, nodeID).Scan(&oldID, &revoked, &reason)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read node: %w", err)
		}
		if !revoked || reason != store.RevokedSuperseded {
			return nil // already split by a concurrent request
		}
		var hostname, os string
		if err := tx.QueryRow(`SELECT hostname, os FROM computers WHERE id = ?`, oldID).Scan(&hostname, &os); err != nil {
			return fmt.Errorf("read computer: %w", err)
		}
		newID, err := tx.ExecID(`INSERT INTO computers (hostname, os, first_seen, last_seen, flags, hints_hash)
			SELECT hostname, os, CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT), hints_hash FROM computers WHERE id = ? RETURNING id`, ms(tx.Now), ms(tx.Now), store.FlagDuplicateHints, oldID)
		if err != nil {
			return fmt.Errorf("create computer for clone: %w", err)
		}
		if _, err := tx.Exec(`INSERT INTO computer_hints (computer_id, kind, value) SELECT ?, kind, value FROM computer_hints WHERE computer_id = ?`, newID, oldID); err != nil {
			return fmt.Errorf("copy hints: %w", err)
		}
		if _, err := tx.Exec(`UPDATE nodes SET computer_id = ?, revoked_at = NULL, revoked_reason = '', superseded_by = NULL WHERE id = ?`, newID, nodeID); err != nil {
			return fmt.Errorf("move node: %w", err)
		}
		if err := flagDuplicates(tx, oldID, newID); err != nil {
			return err
		}
		reason = fmt.Sprintf("key %s was superseded by a newer key with the same identity hints, then posted again: two live machines share these hints (cloned image); computers %d and %d are kept apart and flagged", nodeID, oldID, newID)
		for _, id := range []int64{oldID, newID} {
			if err := addEvent(tx, store.Event{Actor: store.NodeActor(nodeID), Kind: store.EventCloneDetected, ComputerID: id, NodeID: nodeID, Reason: reason}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return store.Node{}, err
	}
	db.log.Warn("cloned machine detected: two live computers share identity hints", "node", nodeID)
	return db.nodeFromWriter(ctx, nodeID)
}

// nodeFromWriter reads a node just changed, through the writer so the read
// cannot miss the change.
func (db *DB) nodeFromWriter(ctx context.Context, id string) (store.Node, error) {
	var n store.Node
	err := db.write(ctx, func(tx *Tx) error {
		var enrolled, last int64
		var revokedAt sql.NullInt64
		if err := tx.QueryRow(`SELECT id, computer_id, enrolled_at, last_seen, revoked_at, revoked_reason FROM nodes WHERE id = ?`, id).
			Scan(&n.ID, &n.ComputerID, &enrolled, &last, &revokedAt, &n.RevokedReason); err != nil {
			return err
		}
		n.EnrolledAt, n.LastSeen, n.Revoked = fromMS(enrolled), fromMS(last), revokedAt.Valid
		n.Superseded = n.Revoked && n.RevokedReason == store.RevokedSuperseded
		return nil
	})
	return n, err
}

func flagDuplicates(tx *Tx, a, b int64) error {
	for _, pair := range [][2]int64{{a, b}, {b, a}} {
		if _, err := tx.Exec(`INSERT INTO duplicates (computer_id, other_id, detected_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, pair[0], pair[1], ms(tx.Now)); err != nil {
			return fmt.Errorf("flag duplicates: %w", err)
		}
		if err := addFlag(tx, pair[0], store.FlagDuplicateHints); err != nil {
			return err
		}
	}
	return nil
}

// addFlag sets a flag whose cause the caller audits itself.
func addFlag(tx *Tx, id int64, flag string) error {
	return setFlag(tx, id, flag, true, "", "")
}

func splitFlags(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
