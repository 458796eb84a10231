package sqlstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// A computer's software set is stored as two blobs in one row of
// computer_software_sets, rather than one row per package, which cost
// bytes on disk and an insert per package in the single writer
// (docs/PERFORMANCE.md).
//
// Both blobs begin with a format version byte and the number of entries
// (unsigned varint). The IDs blob then holds the package IDs, strictly
// increasing, as unsigned varints: the first absolute, each next one as
// the difference from the one before (at least 1). The dates blob holds the
// install dates in the same order, each as a zigzag varint of the
// difference from the date before (the first from 0), so that an unknown
// date (0) after another costs one byte. Only minimal varints are valid,
// so a blob that decodes re-encodes to the same bytes.

// softwareSetVersion is the format version byte of both blobs.
const softwareSetVersion = 1

// errBadSoftwareSet marks a stored software set that does not decode.
var errBadSoftwareSet = errors.New("malformed software set")

// encodeSoftwareSet encodes the package IDs (strictly increasing, not
// negative) and their install dates (as many).
func encodeSoftwareSet(ids, dates []int64) (idBlob, dateBlob []byte, err error) {
	return appendSoftwareSet(nil, nil, ids, dates)
}

// appendSoftwareSet is encodeSoftwareSet appending to idBlob and dateBlob
// (the writer reuses its buffers).
func appendSoftwareSet(idBlob, dateBlob []byte, ids, dates []int64) ([]byte, []byte, error) {
	if len(ids) != len(dates) {
		return nil, nil, fmt.Errorf("encode software set: %d package IDs but %d dates", len(ids), len(dates))
	}
	idBlob = slices.Grow(idBlob, 2+binary.MaxVarintLen64+2*len(ids))
	idBlob = append(idBlob, softwareSetVersion)
	idBlob = binary.AppendUvarint(idBlob, uint64(len(ids)))
	var prev int64
	for i, id := range ids {
		if id < 0 || (i > 0 && id <= prev) {
			return nil, nil, fmt.Errorf("encode software set: package ID %d at %d is not above %d", id, i, prev)
		}
		if i == 0 {
			idBlob = binary.AppendUvarint(idBlob, uint64(id))
		} else {
			idBlob = binary.AppendUvarint(idBlob, uint64(id-prev))
		}
		prev = id
	}
	dateBlob = slices.Grow(dateBlob, 2+binary.MaxVarintLen64+4*len(dates))
	dateBlob = append(dateBlob, softwareSetVersion)
	dateBlob = binary.AppendUvarint(dateBlob, uint64(len(dates)))
	prev = 0
	for _, d := range dates {
		// The difference may wrap around; decoding wraps it back.
		dateBlob = binary.AppendVarint(dateBlob, d-prev)
		prev = d
	}
	return idBlob, dateBlob, nil
}

// decodeSoftwareSet decodes blobs written by encodeSoftwareSet. Anything
// else (another version, truncated or overlong varints, IDs not strictly
// increasing or past int64, counts that differ, trailing bytes) is an
// error wrapping errBadSoftwareSet.
func decodeSoftwareSet(idBlob, dateBlob []byte) (ids, dates []int64, err error) {
	return decodeSoftwareSetInto(nil, nil, idBlob, dateBlob)
}

// decodeSoftwareSetInto is decodeSoftwareSet reusing the arrays of ids and
// dates (the writer's buffers) when they are large enough.
func decodeSoftwareSetInto(ids, dates []int64, idBlob, dateBlob []byte) ([]int64, []int64, error) {
	idBody, n, err := setHeader("package IDs", idBlob)
	if err != nil {
		return nil, nil, err
	}
	dateBody, dn, err := setHeader("install dates", dateBlob)
	if err != nil {
		return nil, nil, err
	}
	if n != dn {
		return nil, nil, fmt.Errorf("%w: %d package IDs but %d install dates", errBadSoftwareSet, n, dn)
	}
	ids = slices.Grow(ids[:0], n)[:n]
	var prev uint64
	for i := range ids {
		v, k, err := minimalUvarint(idBody)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: package ID %d: %w", errBadSoftwareSet, i, err)
		}
		idBody = idBody[k:]
		if i > 0 {
			if v == 0 || v > math.MaxInt64-prev {
				return nil, nil, fmt.Errorf("%w: package ID %d: difference %d after %d", errBadSoftwareSet, i, v, prev)
			}
			v += prev
		} else if v > math.MaxInt64 {
			return nil, nil, fmt.Errorf("%w: first package ID %d", errBadSoftwareSet, v)
		}
		ids[i], prev = int64(v), v
	}
	if len(idBody) > 0 {
		return nil, nil, fmt.Errorf("%w: %d bytes after the package IDs", errBadSoftwareSet, len(idBody))
	}
	dates = slices.Grow(dates[:0], n)[:n]
	var date int64
	for i := range dates {
		u, k, err := minimalUvarint(dateBody)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: install date %d: %w", errBadSoftwareSet, i, err)
		}
		dateBody = dateBody[k:]
		date += int64(u>>1) ^ -int64(u&1) // zigzag, as binary.Varint
		dates[i] = date
	}
	if len(dateBody) > 0 {
		return nil, nil, fmt.Errorf("%w: %d bytes after the install dates", errBadSoftwareSet, len(dateBody))
	}
	return ids, dates, nil
}

// setHeader checks a blob's version and returns its entries and their
// count.
func setHeader(what string, b []byte) (body []byte, n int, err error) {
	if len(b) == 0 {
		return nil, 0, fmt.Errorf("%w: empty %s blob", errBadSoftwareSet, what)
	}
	if b[0] != softwareSetVersion {
		return nil, 0, fmt.Errorf("%w: %s blob of version %d, want %d", errBadSoftwareSet, what, b[0], softwareSetVersion)
	}
	count, k, err := minimalUvarint(b[1:])
	if err != nil {
		return nil, 0, fmt.Errorf("%w: count of %s: %w", errBadSoftwareSet, what, err)
	}
	body = b[1+k:]
	// Every entry takes at least one byte: a larger count is a lie, and
	// must not size an allocation.
	if count > uint64(len(body)) {
		return nil, 0, fmt.Errorf("%w: %d %s in %d bytes", errBadSoftwareSet, count, what, len(body))
	}
	return body, int(count), nil
}

// minimalUvarint reads an unsigned varint of the shortest form.
func minimalUvarint(b []byte) (uint64, int, error) {
	v, k := binary.Uvarint(b)
	switch {
	case k == 0:
		return 0, 0, errors.New("truncated varint")
	case k < 0:
		return 0, 0, errors.New("varint overflows 64 bits")
	case k > 1 && b[k-1] == 0:
		return 0, 0, errors.New("varint not of the shortest form")
	}
	return v, k, nil
}
