package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tallyhq/tally/protocol"
)

// Software inventory is stored compactly: each distinct package (source,
// name, version, arch, publisher) once for the whole fleet in packages, and
// per computer one row of computer_software_sets holding the package IDs
// and install dates as two blobs (softwareset.go), written whole at each
// post that changes the set. A computer's set has a generation and an
// incremental hash (protocol.SetHash), so that a delta is applied only on
// the base it was computed from, and an unchanged machine costs no writes
// at all.

func packageKey(p *protocol.Package) string {
	return p.Source + "\x00" + p.Name + "\x00" + p.Version + "\x00" + p.Arch + "\x00" + p.Publisher
}

// lookupPackageID returns the ID of a package already interned; ok is
// false when there is none. It writes nothing.
func (db *DB) lookupPackageID(tx *Tx, p *protocol.Package) (id int64, ok bool, err error) {
	key := packageKey(p)
	db.pkgMu.RLock()
	id, ok = db.pkgCache[key]
	db.pkgMu.RUnlock()
	if ok {
		return id, true, nil
	}
	err = tx.QueryRow(`SELECT id FROM packages WHERE source = ? AND name = ? AND version = ? AND arch = ? AND publisher = ?`,
		p.Source, p.Name, p.Version, p.Arch, p.Publisher).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("look up package: %w", err)
	}
	db.cachePackageID(tx, key, id)
	return id, true, nil
}

// cachePackageID remembers a package's ID once tx has committed: a
// rolled-back insert must not be remembered.
func (db *DB) cachePackageID(tx *Tx, key string, id int64) {
	tx.OnCommit(func() {
		db.pkgMu.Lock()
		if len(db.pkgCache) < 1<<20 {
			db.pkgCache[key] = id
		}
		db.pkgMu.Unlock()
	})
}

// packageID interns a package, creating it if needed.
func (db *DB) packageID(tx *Tx, p *protocol.Package) (int64, error) {
	id, ok, err := db.lookupPackageID(tx, p)
	if err != nil || ok {
		return id, err
	}
	if id, err = tx.ExecUncachedID(`INSERT INTO packages (source, name, version, arch, publisher) VALUES (?, ?, ?, ?, ?) RETURNING id`,
		p.Source, p.Name, p.Version, p.Arch, p.Publisher); err != nil {
		return 0, fmt.Errorf("intern package: %w", err)
	}
	db.cachePackageID(tx, packageKey(p), id)
	return id, nil
}

// swEntry is one package of a computer's set: its ID and install date,
// and where it came from in the posted list.
type swEntry struct {
	id, date int64
	at       int
}

func compareSWEntries(a, b swEntry) int { return cmp.Compare(a.id, b.id) }

// swScratch holds the buffers the writer reuses from one software post to
// the next, because reading, applying and encoding a set was most of what
// a delta allocated (docs/PERFORMANCE.md). Only the writer goroutine
// touches it, and nothing of it outlives the job (SQLite copies bound
// blobs).
type swScratch struct {
	ids, dates, outIDs, outDates []int64
	set                          []swEntry
	removed                      []bool
	idBlob, dateBlob             []byte
}

// storeSoftware applies a full or delta software inventory. A set that
// would pass the cap (Options.MaxPackages) is not stored: refused says why,
// and the ack says nothing was stored, so the agent keeps its state.
func (db *DB) storeSoftware(tx *Tx, n nodeState, sw *protocol.SoftwareInventory) (ack *protocol.SoftwareAck, refused string, err error) {
	ack, size, err := db.storeSoftwareUpTo(tx, n, sw)
	if err == nil && ack != nil && ack.Stored && int64(ack.Generation) != n.swGen {
		// The set changed (a new generation was written): recognise
		// applications in what ws.write stored.
		err = db.recognizeSet(tx, n.computerID, sw, db.ws.outIDs)
	}
	if err != nil || size == 0 {
		return ack, "", err
	}
	return &protocol.SoftwareAck{Generation: uint64(n.swGen)}, fmt.Sprintf("software inventory not stored: %d packages pass this server's limit of %d per computer (tally-server serve --max-packages)",
		size, db.opts.MaxPackages), nil
}

// storeSoftwareUpTo is storeSoftware; over the cap it writes nothing and
// returns the size the set would have had.
func (db *DB) storeSoftwareUpTo(tx *Tx, n nodeState, sw *protocol.SoftwareInventory) (*protocol.SoftwareAck, int, error) {
	computer, gen, hashText, count := n.computerID, n.swGen, n.swHash, n.swCount
	ws := &db.ws
	if sw.Full {
		if len(sw.Packages) > db.opts.MaxPackages {
			// Over the cap unless listed twice: count before interning
			// anything, so that a refused post writes nothing.
			distinct := make(map[string]struct{}, len(sw.Packages))
			for i := range sw.Packages {
				distinct[packageKey(&sw.Packages[i])] = struct{}{}
			}
			if len(distinct) > db.opts.MaxPackages {
				return nil, len(distinct), nil
			}
		}
		set := slices.Grow(ws.set[:0], len(sw.Packages))[:len(sw.Packages)]
		ws.set = set
		for i := range sw.Packages {
			id, err := db.packageID(tx, &sw.Packages[i])
			if err != nil {
				return nil, 0, err
			}
			set[i] = swEntry{id: id, date: sw.Packages[i].InstallDate, at: i}
		}
		// A package listed twice counts once, with its first install date.
		slices.SortStableFunc(set, compareSWEntries)
		set = slices.CompactFunc(set, func(a, b swEntry) bool { return a.id == b.id })

		var h protocol.SetHash
		for _, e := range set {
			h.Add(protocol.ItemHash(&sw.Packages[e.at]))
		}
		if err := ws.write(tx, computer, set); err != nil {
			return nil, 0, err
		}
		gen++
		if _, err := tx.ExecComputer(computer, `UPDATE computers SET sw_generation = ?, sw_hash = ?, sw_count = ? WHERE id = ?`, gen, h.String(), len(set), computer); err != nil {
			return nil, 0, fmt.Errorf("store software: %w", err)
		}
		return &protocol.SoftwareAck{Generation: uint64(gen), Stored: true}, 0, nil
	}
	// A delta applies only to the generation it was computed against.
	if gen == 0 || uint64(gen) != sw.Base {
		return &protocol.SoftwareAck{Generation: uint64(gen), SendFull: true}, 0, nil
	}
	h, err := protocol.ParseSetHash(hashText)
	if err != nil {
		return &protocol.SoftwareAck{Generation: uint64(gen), SendFull: true}, 0, nil
	}
	if len(sw.Added) == 0 && len(sw.Removed) == 0 {
		if h.String() != sw.Hash || count != int(sw.Count) {
			return &protocol.SoftwareAck{Generation: uint64(gen), SendFull: true}, 0, nil
		}
		return &protocol.SoftwareAck{Generation: uint64(gen), Stored: true}, 0, nil
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
		return &protocol.SoftwareAck{Generation: uint64(gen), SendFull: true}, 0, nil
	}
	// Deltas add up: each post is bounded, the set they grow is bounded
	// here, before anything is read or written.
	if newCount > db.opts.MaxPackages {
		return nil, newCount, nil
	}
	// The hashes agree; should the packages not (a hash collision, or a
	// set edited behind the store's back), nothing of the delta is written
	// and a full inventory is asked for. The delta is applied in memory, so
	// there is nothing to undo.
	ids, dates, err := ws.load(tx, computer)
	var next []swEntry
	mismatch := errors.Is(err, errBadSoftwareSet)
	if mismatch {
		db.log.Warn("stored software set unreadable: asking for a full inventory", "computer", computer, "err", err)
	} else if err != nil {
		return nil, 0, err
	} else if next, mismatch, err = db.applyDelta(tx, ids, dates, sw); err != nil {
		return nil, 0, err
	}
	if mismatch {
		if _, err := tx.ExecComputer(computer, `UPDATE computers SET sw_hash = '' WHERE id = ?`, computer); err != nil {
			return nil, 0, fmt.Errorf("store software: %w", err)
		}
		return &protocol.SoftwareAck{Generation: uint64(gen), SendFull: true}, 0, nil
	}
	if err := ws.write(tx, computer, next); err != nil {
		return nil, 0, err
	}
	gen++
	if _, err := tx.ExecComputer(computer, `UPDATE computers SET sw_generation = ?, sw_hash = ?, sw_count = ? WHERE id = ?`, gen, want.String(), newCount, computer); err != nil {
		return nil, 0, fmt.Errorf("store software: %w", err)
	}
	return &protocol.SoftwareAck{Generation: uint64(gen), Stored: true}, 0, nil
}

// applyDelta returns the set (ids, dates) with the delta's removals, then
// its additions, applied, sorted by package ID. mismatch reports a removal
// of a package not in the set (or not interned at all) or an addition of
// one already in it; packages new to the fleet are interned only when
// there is none, so that a mismatch writes nothing.
func (db *DB) applyDelta(tx *Tx, ids, dates []int64, sw *protocol.SoftwareInventory) (next []swEntry, mismatch bool, err error) {
	ws := &db.ws
	removed := slices.Grow(ws.removed[:0], len(ids))[:len(ids)]
	clear(removed)
	ws.removed = removed
	for i := range sw.Removed {
		id, ok, err := db.lookupPackageID(tx, &sw.Removed[i])
		if err != nil {
			return nil, false, err
		}
		if !ok {
			return nil, true, nil
		}
		j, found := slices.BinarySearch(ids, id)
		if !found || removed[j] {
			return nil, true, nil
		}
		removed[j] = true
	}
	added := make([]swEntry, 0, len(sw.Added))
	addedIDs := make(map[int64]bool, len(sw.Added))
	var fresh []int        // indices into added of packages not interned yet
	var freshKeys []string // and their keys
	for i := range sw.Added {
		p := &sw.Added[i]
		id, ok, err := db.lookupPackageID(tx, p)
		if err != nil {
			return nil, false, err
		}
		if !ok {
			key := packageKey(p)
			if slices.Contains(freshKeys, key) {
				return nil, true, nil
			}
			fresh, freshKeys = append(fresh, len(added)), append(freshKeys, key)
		} else {
			if j, found := slices.BinarySearch(ids, id); (found && !removed[j]) || addedIDs[id] {
				return nil, true, nil
			}
			addedIDs[id] = true
		}
		added = append(added, swEntry{id: id, date: p.InstallDate, at: i})
	}
	for _, k := range fresh {
		if added[k].id, err = db.packageID(tx, &sw.Added[added[k].at]); err != nil {
			return nil, false, err
		}
	}
	next = slices.Grow(ws.set[:0], len(ids)-len(sw.Removed)+len(added))
	for j, id := range ids {
		if !removed[j] {
			next = append(next, swEntry{id: id, date: dates[j]})
		}
	}
	next = append(next, added...)
	ws.set = next
	slices.SortFunc(next, compareSWEntries)
	return next, false, nil
}

// load is loadSoftwareSet in the write transaction, decoding into the
// scratch arrays: the result is valid until the next load.
func (ws *swScratch) load(tx *Tx, computer int64) (ids, dates []int64, err error) {
	ids, dates, err = loadSoftwareSetInto(context.Background(), tx, computer, ws.ids, ws.dates)
	if ids != nil {
		ws.ids, ws.dates = ids, dates
	}
	return ids, dates, err
}

// write stores a computer's set, sorted by package ID, in place of the
// one it held, encoding it in the scratch buffers.
func (ws *swScratch) write(tx *Tx, computer int64, set []swEntry) error {
	ids := slices.Grow(ws.outIDs[:0], len(set))[:len(set)]
	dates := slices.Grow(ws.outDates[:0], len(set))[:len(set)]
	ws.outIDs, ws.outDates = ids, dates
	for i, e := range set {
		ids[i], dates[i] = e.id, e.date
	}
	var err error
	if ws.idBlob, ws.dateBlob, err = appendSoftwareSet(ws.idBlob[:0], ws.dateBlob[:0], ids, dates); err != nil {
		return fmt.Errorf("computer %d: %w", computer, err)
	}
	if _, err := tx.ExecUncached(`INSERT INTO computer_software_sets (computer_id, ids, dates) VALUES (?, ?, ?)
		ON CONFLICT (computer_id) DO UPDATE SET ids = excluded.ids, dates = excluded.dates`, computer, ws.idBlob, ws.dateBlob); err != nil {
		return fmt.Errorf("store software: %w", err)
	}
	return nil
}

// rowQuerier is what loadSoftwareSet reads with: the read pool or a
// write transaction.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// loadSoftwareSet reads a computer's set: package IDs, ascending, and
// their install dates. A computer without a stored set has the empty one.
// A set that does not decode is an error wrapping errBadSoftwareSet.
func loadSoftwareSet(ctx context.Context, q rowQuerier, computer int64) (ids, dates []int64, err error) {
	return loadSoftwareSetInto(ctx, q, computer, nil, nil)
}

// loadSoftwareSetInto is loadSoftwareSet decoding into the arrays of ids
// and dates when they are large enough.
func loadSoftwareSetInto(ctx context.Context, q rowQuerier, computer int64, ids, dates []int64) ([]int64, []int64, error) {
	var idBlob, dateBlob []byte
	err := q.QueryRowContext(ctx, `SELECT ids, dates FROM computer_software_sets WHERE computer_id = ?`, computer).Scan(&idBlob, &dateBlob)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read software of computer %d: %w", computer, err)
	}
	if ids, dates, err = decodeSoftwareSetInto(ids, dates, idBlob, dateBlob); err != nil {
		return nil, nil, fmt.Errorf("read software of computer %d: %w", computer, err)
	}
	return ids, dates, nil
}

// Software implements store.Computers. The packages come ordered by
// source, name, arch and version (then publisher and install date).
func (db *DB) Software(ctx context.Context, id int64) ([]protocol.Package, error) {
	ids, dates, err := loadSoftwareSet(ctx, db.r, id)
	if err != nil {
		return nil, err
	}
	out := make([]protocol.Package, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	// One query whatever the set's size: the IDs go as one JSON array,
	// and each is a rowid lookup. Packages are never deleted, so every ID
	// of a committed set is found, even outside the set's transaction.
	list := make([]byte, 0, 8*len(ids))
	list = append(list, '[')
	for i, pid := range ids {
		if i > 0 {
			list = append(list, ',')
		}
		list = strconv.AppendInt(list, pid, 10)
	}
	list = append(list, ']')
	rows, err := db.r.QueryContext(ctx, `SELECT p.id, p.source, p.name, p.version, p.arch, p.publisher
		FROM json_each(?) j JOIN packages p ON p.id = j.value`, string(list))
	if err != nil {
		return nil, fmt.Errorf("read software of computer %d: %w", id, err)
	}
	defer rows.Close()
	found := 0
	for rows.Next() {
		var pid int64
		var p protocol.Package
		if err := rows.Scan(&pid, &p.Source, &p.Name, &p.Version, &p.Arch, &p.Publisher); err != nil {
			return nil, fmt.Errorf("read software of computer %d: %w", id, err)
		}
		j, ok := slices.BinarySearch(ids, pid)
		if !ok || out[j].Name != "" {
			return nil, fmt.Errorf("read software of computer %d: unexpected package %d", id, pid)
		}
		p.InstallDate = dates[j]
		out[j] = p
		found++
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read software of computer %d: %w", id, err)
	}
	if found != len(ids) {
		return nil, fmt.Errorf("read software of computer %d: %d of its %d packages are not in packages", id, len(ids)-found, len(ids))
	}
	slices.SortFunc(out, func(a, b protocol.Package) int {
		return cmp.Or(strings.Compare(a.Source, b.Source), strings.Compare(a.Name, b.Name), strings.Compare(a.Arch, b.Arch),
			strings.Compare(a.Version, b.Version), strings.Compare(a.Publisher, b.Publisher), cmp.Compare(a.InstallDate, b.InstallDate))
	})
	return out, nil
}

// convertSoftwareSets is the Go step of migration 7: it moves each
// computer's rows of computer_software, the earlier one-row-per-package
// form, into one row of computer_software_sets, then drops
// computer_software. It runs in the migration's transaction, so a failure
// leaves the old table whole and the migration to run again.
func convertSoftwareSets(tx *sql.Tx) error {
	var computers []int64
	rows, err := tx.Query(`SELECT DISTINCT computer_id FROM computer_software ORDER BY computer_id`)
	if err != nil {
		return fmt.Errorf("convert software sets: %w", err)
	}
	for rows.Next() {
		var c int64
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return fmt.Errorf("convert software sets: %w", err)
		}
		computers = append(computers, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("convert software sets: %w", err)
	}
	read, err := tx.Prepare(`SELECT package_id, install_date FROM computer_software WHERE computer_id = ? ORDER BY package_id`)
	if err != nil {
		return fmt.Errorf("convert software sets: %w", err)
	}
	defer read.Close()
	write, err := tx.Prepare(`INSERT INTO computer_software_sets (computer_id, ids, dates) VALUES (?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("convert software sets: %w", err)
	}
	defer write.Close()
	var ids, dates []int64
	for _, c := range computers {
		ids, dates = ids[:0], dates[:0]
		rows, err := read.Query(c)
		if err != nil {
			return fmt.Errorf("convert software of computer %d: %w", c, err)
		}
		for rows.Next() {
			var id, date int64
			if err := rows.Scan(&id, &date); err != nil {
				rows.Close()
				return fmt.Errorf("convert software of computer %d: %w", c, err)
			}
			ids, dates = append(ids, id), append(dates, date)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("convert software of computer %d: %w", c, err)
		}
		idBlob, dateBlob, err := encodeSoftwareSet(ids, dates)
		if err != nil {
			return fmt.Errorf("convert software of computer %d: %w", c, err)
		}
		if _, err := write.Exec(c, idBlob, dateBlob); err != nil {
			return fmt.Errorf("convert software of computer %d: %w", c, err)
		}
	}
	if _, err := tx.Exec(`DROP TABLE computer_software`); err != nil {
		return fmt.Errorf("convert software sets: %w", err)
	}
	return nil
}
