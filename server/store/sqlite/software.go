package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tallyhq/tally/protocol"
)

// Software inventory is stored compactly: each distinct package (source,
// name, version, arch, publisher) once for the whole fleet in packages, and
// per computer only the package IDs (and install dates) in
// computer_software. A computer's set has a generation and an incremental
// hash (protocol.SetHash), so that a delta is applied only on the base it
// was computed from, and an unchanged machine costs no writes at all.

func packageKey(p *protocol.Package) string {
	return p.Source + "\x00" + p.Name + "\x00" + p.Version + "\x00" + p.Arch + "\x00" + p.Publisher
}

// packageID interns a package, creating it if needed.
func (db *DB) packageID(tx *Tx, p *protocol.Package) (int64, error) {
	key := packageKey(p)
	db.pkgMu.RLock()
	id, ok := db.pkgCache[key]
	db.pkgMu.RUnlock()
	if ok {
		return id, nil
	}
	err := tx.QueryRow(`SELECT id FROM packages WHERE source = ? AND name = ? AND version = ? AND arch = ? AND publisher = ?`,
		p.Source, p.Name, p.Version, p.Arch, p.Publisher).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		res, err := tx.Exec(`INSERT INTO packages (source, name, version, arch, publisher) VALUES (?, ?, ?, ?, ?)`,
			p.Source, p.Name, p.Version, p.Arch, p.Publisher)
		if err != nil {
			return 0, fmt.Errorf("intern package: %w", err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return 0, err
		}
	} else if err != nil {
		return 0, fmt.Errorf("look up package: %w", err)
	}
	// Cache only once committed: a rolled-back insert must not be remembered.
	tx.OnCommit(func() {
		db.pkgMu.Lock()
		if len(db.pkgCache) < 1<<20 {
			db.pkgCache[key] = id
		}
		db.pkgMu.Unlock()
	})
	return id, nil
}

// storeSoftware applies a full or delta software inventory.
func (db *DB) storeSoftware(tx *Tx, n nodeState, sw *protocol.SoftwareInventory) (*protocol.SoftwareAck, error) {
	computer, gen, hashText, count := n.computerID, n.swGen, n.swHash, n.swCount
	if sw.Full {
		if _, err := tx.Exec(`DELETE FROM computer_software WHERE computer_id = ?`, computer); err != nil {
			return nil, fmt.Errorf("replace software: %w", err)
		}
		var h protocol.SetHash
		n := 0
		for i := range sw.Packages {
			p := &sw.Packages[i]
			id, err := db.packageID(tx, p)
			if err != nil {
				return nil, err
			}
			res, err := tx.Exec(`INSERT OR IGNORE INTO computer_software (computer_id, package_id, install_date) VALUES (?, ?, ?)`, computer, id, p.InstallDate)
			if err != nil {
				return nil, fmt.Errorf("store software: %w", err)
			}
			if k, _ := res.RowsAffected(); k == 1 { // duplicates in the list count once
				h.Add(protocol.ItemHash(p))
				n++
			}
		}
		gen++
		if _, err := tx.Exec(`UPDATE computers SET sw_generation = ?, sw_hash = ?, sw_count = ? WHERE id = ?`, gen, h.String(), n, computer); err != nil {
			return nil, err
		}
		return &protocol.SoftwareAck{Generation: uint64(gen), Stored: true}, nil
	}
	// A delta applies only to the generation it was computed against.
	if gen == 0 || uint64(gen) != sw.Base {
		return &protocol.SoftwareAck{Generation: uint64(gen), SendFull: true}, nil
	}
	h, err := protocol.ParseSetHash(hashText)
	if err != nil {
		return &protocol.SoftwareAck{Generation: uint64(gen), SendFull: true}, nil
	}
	if len(sw.Added) == 0 && len(sw.Removed) == 0 {
		if h.String() != sw.Hash || count != int(sw.Count) {
			return &protocol.SoftwareAck{Generation: uint64(gen), SendFull: true}, nil
		}
		return &protocol.SoftwareAck{Generation: uint64(gen), Stored: true}, nil
	}
	// Check the result before writing anything: a hash mismatch means the
	// two copies drifted, and the answer is "send full", with nothing stored.
	want := h
	for i := range sw.Removed {
		want.Remove(protocol.ItemHash(&sw.Removed[i]))
	}
	for i := range sw.Added {
		want.Add(protocol.ItemHash(&sw.Added[i]))
	}
	newCount := count - len(sw.Removed) + len(sw.Added)
	if want.String() != sw.Hash || newCount != int(sw.Count) {
		return &protocol.SoftwareAck{Generation: uint64(gen), SendFull: true}, nil
	}
	// The hashes agree; should the rows not (a hash collision, or a set
	// edited behind the store's back), undo the delta alone and ask for a
	// full inventory.
	if _, err := tx.Exec(`SAVEPOINT software`); err != nil {
		return nil, err
	}
	mismatch, err := db.applyDelta(tx, computer, sw)
	if err != nil || mismatch {
		if _, rbErr := tx.Exec(`ROLLBACK TO software`); rbErr != nil {
			return nil, rbErr
		}
		if _, relErr := tx.Exec(`RELEASE software`); relErr != nil {
			return nil, relErr
		}
		if err != nil {
			return nil, err
		}
		if _, err := tx.Exec(`UPDATE computers SET sw_hash = '' WHERE id = ?`, computer); err != nil {
			return nil, err
		}
		return &protocol.SoftwareAck{Generation: uint64(gen), SendFull: true}, nil
	}
	if _, err := tx.Exec(`RELEASE software`); err != nil {
		return nil, err
	}
	gen++
	if _, err := tx.Exec(`UPDATE computers SET sw_generation = ?, sw_hash = ?, sw_count = ? WHERE id = ?`, gen, want.String(), newCount, computer); err != nil {
		return nil, err
	}
	return &protocol.SoftwareAck{Generation: uint64(gen), Stored: true}, nil
}

// applyDelta removes and adds packages; mismatch reports a removal of a
// package not stored or an addition of one already stored.
func (db *DB) applyDelta(tx *Tx, computer int64, sw *protocol.SoftwareInventory) (mismatch bool, err error) {
	for i := range sw.Removed {
		p := &sw.Removed[i]
		res, err := tx.Exec(`DELETE FROM computer_software WHERE computer_id = ? AND package_id =
			(SELECT id FROM packages WHERE source = ? AND name = ? AND version = ? AND arch = ? AND publisher = ?)`,
			computer, p.Source, p.Name, p.Version, p.Arch, p.Publisher)
		if err != nil {
			return false, fmt.Errorf("remove software: %w", err)
		}
		if k, _ := res.RowsAffected(); k != 1 {
			return true, nil
		}
	}
	for i := range sw.Added {
		p := &sw.Added[i]
		id, err := db.packageID(tx, p)
		if err != nil {
			return false, err
		}
		res, err := tx.Exec(`INSERT OR IGNORE INTO computer_software (computer_id, package_id, install_date) VALUES (?, ?, ?)`, computer, id, p.InstallDate)
		if err != nil {
			return false, fmt.Errorf("add software: %w", err)
		}
		if k, _ := res.RowsAffected(); k != 1 {
			return true, nil
		}
	}
	return false, nil
}

// Software implements store.Computers.
func (db *DB) Software(ctx context.Context, id int64) ([]protocol.Package, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT p.source, p.name, p.version, p.arch, p.publisher, cs.install_date
		FROM computer_software cs JOIN packages p ON p.id = cs.package_id WHERE cs.computer_id = ?
		ORDER BY p.source, p.name, p.arch, p.version`, id)
	if err != nil {
		return nil, fmt.Errorf("read software: %w", err)
	}
	defer rows.Close()
	out := []protocol.Package{}
	for rows.Next() {
		var p protocol.Package
		if err := rows.Scan(&p.Source, &p.Name, &p.Version, &p.Arch, &p.Publisher, &p.InstallDate); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
