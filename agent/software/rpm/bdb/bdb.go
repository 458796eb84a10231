// Package bdb reads the records of a Berkeley DB hash database (on-disk
// hash version 8 to 10), the format of rpm's /var/lib/rpm/Packages before
// rpm 4.16, without Berkeley DB.
//
// Pages are read in file order rather than by following hash buckets, so a
// corrupt bucket chain cannot loop; off-page values are followed through
// their overflow chains with every page visited at most once. Encrypted or
// checksummed databases, and sorted duplicates, are not read.
package bdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrCorrupt is wrapped by every error about a malformed file.
var ErrCorrupt = errors.New("malformed berkeley db file")

// ErrUnsupported is wrapped by errors about valid features not read here.
var ErrUnsupported = errors.New("unsupported berkeley db feature")

const (
	hashMagic = 0x061561

	pageHashUnsorted = 2
	pageOverflow     = 7
	pageHashMeta     = 8
	pageHash         = 13

	itemKeyData   = 1
	itemDuplicate = 2
	itemOffPage   = 3
	itemOffDup    = 4

	pageHeaderSize = 26
	metaChecksum   = 0x01 // DBMETA_CHKSUM in the metadata flags
)

// maxValue bounds one value; rpm caps a header at 256 MiB.
const maxValue = 256 << 20

// Records calls fn with the key and value of every record in the hash
// database r of size bytes, in page order. The slices are valid only during
// the call; an error from fn stops the walk and is returned. A record that
// cannot be read (a broken overflow chain, say) is passed to bad, if not
// nil, and skipped.
func Records(r io.ReaderAt, size int64, fn func(key, value []byte) error, bad func(error)) error {
	var meta [512]byte
	if size < int64(len(meta)) {
		return fmt.Errorf("%w: %d bytes, shorter than a metadata page", ErrCorrupt, size)
	}
	if _, err := r.ReadAt(meta[:], 0); err != nil {
		return fmt.Errorf("read metadata page: %w", err)
	}
	var order binary.ByteOrder = binary.LittleEndian
	switch {
	case binary.LittleEndian.Uint32(meta[12:]) == hashMagic:
	case binary.BigEndian.Uint32(meta[12:]) == hashMagic:
		order = binary.BigEndian
	default:
		return fmt.Errorf("%w: not a berkeley db hash file", ErrCorrupt)
	}
	if v := order.Uint32(meta[16:]); v < 8 || v > 10 {
		return fmt.Errorf("%w: hash version %d", ErrUnsupported, v)
	}
	pageSize := int(order.Uint32(meta[20:]))
	if pageSize < 512 || pageSize > 65536 || pageSize&(pageSize-1) != 0 {
		return fmt.Errorf("%w: page size %d", ErrCorrupt, pageSize)
	}
	if meta[24] != 0 {
		return fmt.Errorf("%w: encrypted database", ErrUnsupported)
	}
	if meta[25] != pageHashMeta {
		return fmt.Errorf("%w: metadata page type %d", ErrCorrupt, meta[25])
	}
	if meta[26]&metaChecksum != 0 {
		return fmt.Errorf("%w: page checksums", ErrUnsupported)
	}
	nPages := uint32(size / int64(pageSize))
	if last := order.Uint32(meta[32:]); last+1 < nPages {
		nPages = last + 1
	}

	if bad == nil {
		bad = func(error) {}
	}
	w := walker{r: r, order: order, pageSize: pageSize, nPages: nPages, claimed: make([]uint64, (nPages+64)/64)}
	page := make([]byte, pageSize)
	var value []byte
	for n := uint32(1); n < nPages; n++ {
		if err := w.read(n, page); err != nil {
			return err
		}
		if t := page[25]; t != pageHash && t != pageHashUnsorted {
			continue
		}
		entries := int(order.Uint16(page[20:]))
		if pageHeaderSize+2*entries > pageSize {
			return fmt.Errorf("%w: page %d: %d entries do not fit", ErrCorrupt, n, entries)
		}
		for i := 0; i+1 < entries; i += 2 {
			key, err := w.item(page, entries, i)
			if err != nil {
				bad(fmt.Errorf("page %d entry %d: %w", n, i, err))
				continue
			}
			val, err := w.item(page, entries, i+1)
			if err != nil {
				bad(fmt.Errorf("page %d entry %d: %w", n, i+1, err))
				continue
			}
			if key[0] != itemKeyData {
				bad(fmt.Errorf("%w: page %d entry %d: key of type %d", ErrUnsupported, n, i, key[0]))
				continue
			}
			switch val[0] {
			case itemKeyData:
				value = append(value[:0], val[1:]...)
			case itemOffPage:
				if len(val) < 12 {
					bad(fmt.Errorf("%w: page %d entry %d: short off-page item", ErrCorrupt, n, i+1))
					continue
				}
				value, err = w.overflow(order.Uint32(val[4:]), order.Uint32(val[8:]), value[:0])
				if err != nil {
					bad(fmt.Errorf("page %d entry %d: %w", n, i+1, err))
					continue
				}
			default:
				bad(fmt.Errorf("%w: page %d entry %d: value of type %d (duplicates)", ErrUnsupported, n, i+1, val[0]))
				continue
			}
			if err := fn(key[1:], value); err != nil {
				return err
			}
		}
	}
	return nil
}

type walker struct {
	r        io.ReaderAt
	order    binary.ByteOrder
	pageSize int
	nPages   uint32
	claimed  []uint64 // overflow pages already read
}

func (w *walker) read(n uint32, page []byte) error {
	if _, err := w.r.ReadAt(page, int64(n)*int64(w.pageSize)); err != nil {
		return fmt.Errorf("read page %d: %w", n, err)
	}
	return nil
}

// item returns entry i of a hash page: items are packed from the end of the
// page downwards, so each ends where the previous one starts.
func (w *walker) item(page []byte, entries, i int) ([]byte, error) {
	start := int(w.order.Uint16(page[pageHeaderSize+2*i:]))
	end := w.pageSize
	if i > 0 {
		end = int(w.order.Uint16(page[pageHeaderSize+2*(i-1):]))
	}
	if start < pageHeaderSize+2*entries || start >= end || end > w.pageSize {
		return nil, fmt.Errorf("%w: item at %d-%d", ErrCorrupt, start, end)
	}
	return page[start:end], nil
}

// overflow appends the length bytes of the overflow chain starting at page
// first to buf.
func (w *walker) overflow(first, length uint32, buf []byte) ([]byte, error) {
	if length > maxValue || uint64(length) > uint64(w.nPages)*uint64(w.pageSize) {
		return nil, fmt.Errorf("%w: off-page value of %d bytes", ErrCorrupt, length)
	}
	page := make([]byte, w.pageSize)
	for n := first; uint32(len(buf)) < length; {
		if n == 0 || n >= w.nPages {
			return nil, fmt.Errorf("%w: overflow page %d out of range", ErrCorrupt, n)
		}
		if w.claimed[n/64]&(1<<(n%64)) != 0 {
			return nil, fmt.Errorf("%w: overflow page %d used twice", ErrCorrupt, n)
		}
		w.claimed[n/64] |= 1 << (n % 64)
		if err := w.read(n, page); err != nil {
			return nil, err
		}
		if page[25] != pageOverflow {
			return nil, fmt.Errorf("%w: page %d in an overflow chain has type %d", ErrCorrupt, n, page[25])
		}
		used := int(w.order.Uint16(page[22:])) // hf_offset holds the bytes used
		if pageHeaderSize+used > w.pageSize {
			return nil, fmt.Errorf("%w: overflow page %d claims %d bytes", ErrCorrupt, n, used)
		}
		if rest := int(length) - len(buf); used > rest {
			used = rest
		}
		buf = append(buf, page[pageHeaderSize:pageHeaderSize+used]...)
		if used == 0 {
			return nil, fmt.Errorf("%w: empty overflow page %d", ErrCorrupt, n)
		}
		n = w.order.Uint32(page[16:])
	}
	return buf, nil
}
