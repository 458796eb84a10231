package sqlstore

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/recognize"
)

// Applications are recognised in software sets as they are written: the
// software set write path calls recognizeSet with the set it stored, and
// sw_recognitions (computer, application, packages) changes in the same
// transaction. Matching is memoised per package ID, so a post costs one
// slice lookup per package of its set, plus a read of the computer's
// recognitions; a package new to the fleet is matched once.
//
// Only the writer goroutine touches a recognizer (jobs and their commit
// hooks run there).

// recognizer is the writer's view of the applications.
type recognizer struct {
	st *recogState // nil: load from the database at next use
}

// recogState is one version of the applications' rules and what they
// recognised.
type recogState struct {
	index *recognize.Index
	// memo maps a package ID to 0 (not matched yet), 1 (no application)
	// or k ≥ 2: the applications sets[k].
	memo   []int32
	sets   [][]int64
	setKey map[string]int32
	counts map[int64]int // scratch of recognizeSet
}

// maxMemo bounds the memo: package IDs above it are matched each time.
const maxMemo = 1 << 26

func newRecogState(ix *recognize.Index) *recogState {
	return &recogState{index: ix, sets: [][]int64{nil, nil}, setKey: map[string]int32{}, counts: map[int64]int{}}
}

// invalidate forgets the state: a batch rolled back, and the state may
// hold what it did.
func (r *recognizer) invalidate() { r.st = nil }

// intern returns the memo value of a list of application IDs.
func (s *recogState) intern(apps []int64) int32 {
	if len(apps) == 0 {
		return 1
	}
	var b strings.Builder
	for _, a := range apps {
		b.WriteString(strconv.FormatInt(a, 36))
		b.WriteByte(',')
	}
	k := b.String()
	if v, ok := s.setKey[k]; ok {
		return v
	}
	v := int32(len(s.sets))
	s.sets = append(s.sets, slices.Clone(apps))
	s.setKey[k] = v
	return v
}

func (s *recogState) lookup(id int64) int32 {
	if id >= 0 && id < int64(len(s.memo)) {
		return s.memo[id]
	}
	return 0
}

func (s *recogState) remember(id int64, v int32) {
	if id < 0 || id >= maxMemo {
		return
	}
	if id >= int64(len(s.memo)) {
		s.memo = slices.Grow(s.memo, int(id+1)-len(s.memo)+len(s.memo)/4)[:id+1]
	}
	s.memo[id] = v
}

// loadIndex reads the applications' rules.
func loadIndex(tx *Tx) (*recognize.Index, error) {
	rows, err := tx.Query(`SELECT id, rules FROM sw_applications ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read applications: %w", err)
	}
	defer rows.Close()
	var apps []recognize.Application
	for rows.Next() {
		var a recognize.Application
		var rules string
		if err := rows.Scan(&a.ID, &rules); err != nil {
			return nil, fmt.Errorf("read applications: %w", err)
		}
		if err := json.Unmarshal([]byte(rules), &a.Rules); err != nil {
			return nil, fmt.Errorf("application %d: rules: %w", a.ID, err)
		}
		apps = append(apps, a)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return recognize.NewIndex(apps)
}

// state returns the current state, loading it if needed.
func (r *recognizer) state(tx *Tx) (*recogState, error) {
	if r.st == nil {
		ix, err := loadIndex(tx)
		if err != nil {
			return nil, err
		}
		r.st = newRecogState(ix)
	}
	return r.st, nil
}

// recognizeSet brings a computer's recognitions in line with its software
// set (package IDs), in the transaction that wrote the set (sw). A delta
// whose packages no application recognises changes nothing and costs a
// memo lookup per package it adds or removes; any other post recounts
// the computer's whole set.
func (db *DB) recognizeSet(tx *Tx, computer int64, sw *protocol.SoftwareInventory, ids []int64) error {
	st, err := db.recog.state(tx)
	if err != nil {
		return err
	}
	if st.index.Empty() {
		return nil
	}
	var missed map[int64]int32
	var buf []int64
	apps := func(id int64) ([]int64, error) {
		v := st.lookup(id)
		if v == 0 {
			if v = missed[id]; v == 0 {
				var p recognize.Package
				if err := tx.QueryRow(`SELECT source, name, version FROM packages WHERE id = ?`, id).Scan(&p.Source, &p.Name, &p.Version); err != nil {
					return nil, fmt.Errorf("recognise package %d: %w", id, err)
				}
				buf = st.index.Match(buf[:0], p)
				v = st.intern(buf)
				if missed == nil {
					missed = map[int64]int32{}
				}
				missed[id] = v
			}
		}
		return st.sets[v], nil
	}
	defer func() {
		if len(missed) > 0 {
			// A package row of a transaction that rolls back may see its
			// ID reused: remember only what committed.
			tx.OnCommit(func() {
				if db.recog.st == st {
					for id, v := range missed {
						st.remember(id, v)
					}
				}
			})
		}
	}()
	if !sw.Full {
		// Only the applications of the packages the delta removes or
		// adds change, by as many packages.
		diff := map[int64]int{}
		for sign, list := range [2][]protocol.Package{sw.Removed, sw.Added} {
			for i := range list {
				id, ok, err := db.lookupPackageID(tx, &list[i])
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("recognise: package %s %s of a stored delta is not interned", list[i].Name, list[i].Version)
				}
				as, err := apps(id)
				if err != nil {
					return err
				}
				for _, a := range as {
					diff[a] += 2*sign - 1
				}
			}
		}
		return adjustRecognitions(tx, computer, diff)
	}
	counts := st.counts
	clear(counts)
	for _, id := range ids {
		as, err := apps(id)
		if err != nil {
			return err
		}
		for _, a := range as {
			counts[a]++
		}
	}
	return writeRecognitions(tx, computer, counts)
}

// adjustRecognitions adds diff (application → packages) to a computer's
// recognitions.
func adjustRecognitions(tx *Tx, computer int64, diff map[int64]int) error {
	for a, d := range diff {
		if d == 0 {
			continue
		}
		var n int
		err := tx.QueryRow(`SELECT packages FROM sw_recognitions WHERE application_id = ? AND computer_id = ?`, a, computer).Scan(&n)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read recognitions: %w", err)
		}
		if n += d; n <= 0 {
			_, err = tx.ExecUncached(`DELETE FROM sw_recognitions WHERE application_id = ? AND computer_id = ?`, a, computer)
		} else {
			_, err = tx.ExecUncached(`INSERT INTO sw_recognitions (application_id, computer_id, packages) VALUES (?, ?, ?)
			ON CONFLICT (application_id, computer_id) DO UPDATE SET packages = excluded.packages`, a, computer, n)
		}
		if err != nil {
			return fmt.Errorf("store recognitions: %w", err)
		}
	}
	return nil
}

// writeRecognitions replaces a computer's recognitions with counts,
// writing only what differs.
func writeRecognitions(tx *Tx, computer int64, counts map[int64]int) error {
	rows, err := tx.Query(`SELECT application_id, packages FROM sw_recognitions WHERE computer_id = ?`, computer)
	if err != nil {
		return fmt.Errorf("read recognitions: %w", err)
	}
	type rec struct {
		app int64
		n   int
	}
	var stale []int64
	var same []int64
	for rows.Next() {
		var r rec
		if err := rows.Scan(&r.app, &r.n); err != nil {
			rows.Close()
			return fmt.Errorf("read recognitions: %w", err)
		}
		n, ok := counts[r.app]
		switch {
		case !ok:
			stale = append(stale, r.app)
		case n == r.n:
			same = append(same, r.app)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, a := range stale {
		if _, err := tx.ExecUncached(`DELETE FROM sw_recognitions WHERE application_id = ? AND computer_id = ?`, a, computer); err != nil {
			return fmt.Errorf("store recognitions: %w", err)
		}
	}
	for a, n := range counts {
		if slices.Contains(same, a) {
			continue
		}
		if _, err := tx.ExecUncached(`INSERT INTO sw_recognitions (application_id, computer_id, packages) VALUES (?, ?, ?)
			ON CONFLICT (application_id, computer_id) DO UPDATE SET packages = excluded.packages`, a, computer, n); err != nil {
			return fmt.Errorf("store recognitions: %w", err)
		}
	}
	return nil
}

// recognizeFleet rebuilds the memo after the applications changed,
// matching every package of the fleet against the new rules once, and
// recognises the added applications on every stored set through it (the
// others' recognitions do not change). The new state takes effect at
// once for the jobs after this one; should the batch roll back, the
// writer invalidates it.
func (db *DB) recognizeFleet(tx *Tx, added []int64) error {
	ix, err := loadIndex(tx)
	if err != nil {
		return err
	}
	st := newRecogState(ix)
	if !ix.Empty() {
		rows, err := tx.Query(`SELECT id, source, name, version FROM packages`)
		if err != nil {
			return fmt.Errorf("read packages: %w", err)
		}
		var buf []int64
		for rows.Next() {
			var id int64
			var p recognize.Package
			if err := rows.Scan(&id, &p.Source, &p.Name, &p.Version); err != nil {
				rows.Close()
				return fmt.Errorf("read packages: %w", err)
			}
			buf = ix.Match(buf[:0], p)
			st.remember(id, st.intern(buf))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	if len(added) > 0 {
		if err := recognizeAdded(tx, st, added); err != nil {
			return err
		}
	}
	db.recog.st = st
	return nil
}

// recognizeAdded writes the recognitions of new applications on every
// stored software set.
func recognizeAdded(tx *Tx, st *recogState, added []int64) error {
	// Which memo values hold an added application, and which ones.
	only := make([][]int64, len(st.sets))
	for v, apps := range st.sets {
		for _, a := range apps {
			if slices.Contains(added, a) {
				only[v] = append(only[v], a)
			}
		}
	}
	rows, err := tx.Query(`SELECT computer_id, ids FROM computer_software_sets`)
	if err != nil {
		return fmt.Errorf("read software sets: %w", err)
	}
	type rec struct {
		computer, app int64
		n             int
	}
	var out []rec
	counts := map[int64]int{}
	for rows.Next() {
		var c int64
		var idBlob []byte
		if err := rows.Scan(&c, &idBlob); err != nil {
			rows.Close()
			return fmt.Errorf("read software sets: %w", err)
		}
		clear(counts)
		err := eachSetID(idBlob, func(id int64) {
			// Packages past the memo's bound are left to the next post.
			for _, a := range only[st.lookup(id)] {
				counts[a]++
			}
		})
		if err != nil {
			continue // unreadable: recognised at its next full post
		}
		for a, n := range counts {
			out = append(out, rec{c, a, n})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range out {
		if _, err := tx.ExecUncached(`INSERT INTO sw_recognitions (application_id, computer_id, packages) VALUES (?, ?, ?)
			ON CONFLICT (application_id, computer_id) DO UPDATE SET packages = excluded.packages`, r.app, r.computer, r.n); err != nil {
			return fmt.Errorf("store recognitions: %w", err)
		}
	}
	return nil
}

// eachSetID calls f with each package ID of a set's IDs blob (the format
// of softwareset.go), without decoding its dates.
func eachSetID(idBlob []byte, f func(int64)) error {
	body, n, err := setHeader("package IDs", idBlob)
	if err != nil {
		return err
	}
	var prev uint64
	for i := range n {
		v, k, err := minimalUvarint(body)
		if err != nil {
			return fmt.Errorf("%w: package ID %d: %w", errBadSoftwareSet, i, err)
		}
		body = body[k:]
		if i > 0 {
			v += prev
		}
		prev = v
		f(int64(v))
	}
	return nil
}
