package sqlitefile

import (
	"encoding/binary"
	"fmt"
	"io"
)

const (
	walHeaderSize      = 32
	walFrameHeaderSize = 24
	walMagicLE         = 0x377f0682 // checksums over little-endian words
	walMagicBE         = 0x377f0683 // checksums over big-endian words
)

// WithWAL applies the write-ahead log w of size bytes: pages carried by
// committed transactions in it are read from it instead of the main file.
// Frames after the last valid commit (an interrupted transaction, or stale
// frames of an earlier log generation) are ignored, as SQLite ignores them
// when it recovers a log. An empty or absent log changes nothing.
func (db *DB) WithWAL(w io.ReaderAt, size int64) error {
	if size < walHeaderSize {
		return nil
	}
	var h [walHeaderSize]byte
	if _, err := w.ReadAt(h[:], 0); err != nil {
		return fmt.Errorf("read wal header: %w", err)
	}
	var order binary.ByteOrder
	switch binary.BigEndian.Uint32(h[0:]) {
	case walMagicLE:
		order = binary.LittleEndian
	case walMagicBE:
		order = binary.BigEndian
	default:
		return fmt.Errorf("%w: bad wal magic", ErrCorrupt)
	}
	if ps := int(binary.BigEndian.Uint32(h[8:])); ps != db.pageSize {
		return fmt.Errorf("%w: wal page size %d, database %d", ErrCorrupt, ps, db.pageSize)
	}
	s0, s1 := walChecksum(order, 0, 0, h[:24])
	if s0 != binary.BigEndian.Uint32(h[24:]) || s1 != binary.BigEndian.Uint32(h[28:]) {
		return nil // a header being rewritten: nothing in the log is valid
	}
	salt := h[16:24]

	committed := map[uint32]int64{}
	pending := map[uint32]int64{}
	nPages := db.nPages
	frame := make([]byte, walFrameHeaderSize+db.pageSize)
	for off := int64(walHeaderSize); off+int64(len(frame)) <= size; off += int64(len(frame)) {
		if _, err := w.ReadAt(frame, off); err != nil {
			return fmt.Errorf("read wal frame at %d: %w", off, err)
		}
		if string(frame[8:16]) != string(salt) {
			break
		}
		s0, s1 = walChecksum(order, s0, s1, frame[:8])
		s0, s1 = walChecksum(order, s0, s1, frame[walFrameHeaderSize:])
		if s0 != binary.BigEndian.Uint32(frame[16:]) || s1 != binary.BigEndian.Uint32(frame[20:]) {
			break
		}
		pgno := binary.BigEndian.Uint32(frame[0:])
		if pgno == 0 {
			break
		}
		pending[pgno] = off + walFrameHeaderSize
		if commit := binary.BigEndian.Uint32(frame[4:]); commit != 0 {
			for p, o := range pending {
				committed[p] = o
			}
			clear(pending)
			nPages = commit
		}
	}
	if len(committed) == 0 {
		return nil
	}
	db.wal, db.walR, db.nPages = committed, w, nPages
	return nil
}

// walChecksum continues the WAL's running checksum over b, whose length is
// a multiple of 8.
func walChecksum(order binary.ByteOrder, s0, s1 uint32, b []byte) (uint32, uint32) {
	for i := 0; i+8 <= len(b); i += 8 {
		s0 += order.Uint32(b[i:]) + s1
		s1 += order.Uint32(b[i+4:]) + s0
	}
	return s0, s1
}
