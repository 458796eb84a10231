// Package ndb reads the package blobs of rpm's NDB database (Packages.db,
// the default on SUSE since rpm 4.15), without rpm.
//
// The layout is rpm's lib/backend/ndb/rpmpkg.c: a header, slot pages
// mapping each package index to a run of 16-byte blocks, and at each run a
// blob framed by a head ("BlbS", index, timestamp, length) and a tail
// (adler32, length, "BlbE"). All integers are little-endian.
package ndb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
)

// ErrCorrupt is wrapped by every error about a malformed file.
var ErrCorrupt = errors.New("malformed rpm ndb file")

const (
	magicDB   = 'R' | 'p'<<8 | 'm'<<16 | 'P'<<24
	magicSlot = 'S' | 'l'<<8 | 'o'<<16 | 't'<<24
	magicHead = 'B' | 'l'<<8 | 'b'<<16 | 'S'<<24
	magicTail = 'B' | 'l'<<8 | 'b'<<16 | 'E'<<24

	headerSize = 32
	slotSize   = 16
	pageSize   = 4096
	blockSize  = 16
	headSize   = 16
	tailSize   = 12

	// maxSlotPages bounds the slot table (rpm grows it a page at a time).
	maxSlotPages = 1 << 16
	// maxBlob bounds one blob; rpm caps a header at 256 MiB.
	maxBlob = 256 << 20
)

// Blobs calls fn with the package index and blob of every package in the
// database r of size bytes, in slot order. The blob is valid only during
// the call; an error from fn stops the walk and is returned. A package whose
// blob is damaged is passed to bad, if not nil, and skipped.
func Blobs(r io.ReaderAt, size int64, fn func(pkgIdx uint32, blob []byte) error, bad func(error)) error {
	var h [headerSize]byte
	if size < pageSize {
		return fmt.Errorf("%w: %d bytes", ErrCorrupt, size)
	}
	if _, err := r.ReadAt(h[:], 0); err != nil {
		return fmt.Errorf("read ndb header: %w", err)
	}
	le := binary.LittleEndian
	if le.Uint32(h[0:]) != magicDB {
		return fmt.Errorf("%w: not an ndb Packages.db", ErrCorrupt)
	}
	if v := le.Uint32(h[4:]); v != 0 {
		return fmt.Errorf("%w: version %d", ErrCorrupt, v)
	}
	slotPages := le.Uint32(h[12:])
	if slotPages == 0 || slotPages > maxSlotPages || int64(slotPages)*pageSize > size {
		return fmt.Errorf("%w: %d slot pages in a %d-byte file", ErrCorrupt, slotPages, size)
	}
	slots := make([]byte, int(slotPages)*pageSize)
	if _, err := r.ReadAt(slots, 0); err != nil {
		return fmt.Errorf("read ndb slots: %w", err)
	}
	if bad == nil {
		bad = func(error) {}
	}
	firstBlock := uint64(slotPages) * pageSize / blockSize
	var scratch []byte
	for off := headerSize; off+slotSize <= len(slots); off += slotSize {
		s := slots[off:]
		if le.Uint32(s[0:]) != magicSlot {
			return fmt.Errorf("%w: bad slot at %d", ErrCorrupt, off)
		}
		idx, blkOff, blkCnt := le.Uint32(s[4:]), uint64(le.Uint32(s[8:])), uint64(le.Uint32(s[12:]))
		if idx == 0 {
			continue // free slot
		}
		if blkOff < firstBlock || blkCnt*blockSize < headSize+tailSize || blkCnt*blockSize > maxBlob+headSize+tailSize+blockSize ||
			(blkOff+blkCnt)*blockSize > uint64(size) {
			bad(fmt.Errorf("%w: package %d: blocks %d+%d out of range", ErrCorrupt, idx, blkOff, blkCnt))
			continue
		}
		if need := int(blkCnt * blockSize); cap(scratch) < need {
			scratch = make([]byte, need)
		}
		blob, err := readBlob(r, idx, int64(blkOff*blockSize), int64(blkCnt*blockSize), scratch)
		if err != nil {
			bad(fmt.Errorf("package %d: %w", idx, err))
			continue
		}
		if err := fn(idx, blob); err != nil {
			return err
		}
	}
	return nil
}

// readBlob reads and checks the blob of package idx stored in the n bytes
// at off (head, blob, zero padding, tail) into buf, which has room for it.
func readBlob(r io.ReaderAt, idx uint32, off, n int64, buf []byte) ([]byte, error) {
	buf = buf[:n]
	if _, err := r.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("read blob: %w", err)
	}
	le := binary.LittleEndian
	head, tail := buf[:headSize], buf[n-tailSize:]
	if le.Uint32(head[0:]) != magicHead || le.Uint32(head[4:]) != idx {
		return nil, fmt.Errorf("%w: bad blob head", ErrCorrupt)
	}
	length := int64(le.Uint32(head[12:]))
	if headSize+length+tailSize > n {
		return nil, fmt.Errorf("%w: blob of %d bytes in %d", ErrCorrupt, length, n)
	}
	if le.Uint32(tail[8:]) != magicTail || int64(le.Uint32(tail[4:])) != length {
		return nil, fmt.Errorf("%w: bad blob tail", ErrCorrupt)
	}
	// The checksum covers the head, the blob and the padding up to the tail.
	if got, want := adler32.Checksum(buf[:n-tailSize]), le.Uint32(tail[0:]); got != want {
		return nil, fmt.Errorf("%w: adler32 %#x, tail says %#x", ErrCorrupt, got, want)
	}
	return buf[headSize : headSize+length], nil
}
