// Package rpm inventories RPM-based systems (Fedora, RHEL and its rebuilds,
// Amazon Linux, SUSE, Mariner) by reading the rpm database directly, in pure
// Go, in all three of its formats: SQLite (rpmdb.sqlite, rpm ≥ 4.16), NDB
// (Packages.db, SUSE) and Berkeley DB hash (Packages, older systems).
//
// Reading the files instead of running `rpm -qa` is deliberate: it works on
// a root that is not the running system (a container image, a chroot, the
// host seen from a container) where no rpm binary may exist, and it costs no
// process. The SQLite reader is this module's own (see sqlitefile) so the
// agent links no SQL engine.
//
// gpg-pubkey entries are skipped: `rpm -qa` lists them, but they are the
// signing keys rpm imported, stored as pseudo-packages, not software.
// Version is rpm's EVR, "[EPOCH:]VERSION-RELEASE", with the epoch shown
// whenever the package has the tag (even 0), as %{EPOCH} prints it;
// Publisher is the Vendor tag and InstallDate the InstallTime tag.
package rpm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// Header tags read by the inventory (rpm's lib/rpmtag.h).
const (
	tagName        = 1000
	tagVersion     = 1001
	tagRelease     = 1002
	tagEpoch       = 1003
	tagInstallTime = 1008
	tagVendor      = 1011
	tagArch        = 1022
)

// Header entry data types.
const (
	typeInt32       = 4
	typeString      = 6
	typeStringArray = 8
	typeI18NString  = 9
)

// Limits rpm itself enforces on a header (hdrchkTags, hdrchkData).
const (
	maxIndexEntries = 0xffff
	maxDataLength   = 0x0fffffff
)

// ErrBadHeader is wrapped by every error about a malformed header blob.
var ErrBadHeader = errors.New("malformed rpm header")

// Header is the part of an installed package's header the inventory uses.
type Header struct {
	Name, Version, Release, Arch, Vendor string
	Epoch                                int32
	HasEpoch                             bool
	InstallTime                          int64 // unix seconds, 0 if absent
}

// EVR returns "[EPOCH:]VERSION-RELEASE".
func (h Header) EVR() string {
	vr := h.Version + "-" + h.Release
	if h.HasEpoch {
		return strconv.Itoa(int(h.Epoch)) + ":" + vr
	}
	return vr
}

// ParseHeader parses a header blob as the rpm database stores it: the
// index-entry count and data length (big-endian), the index entries, then
// the data store (no leading magic).
func ParseHeader(blob []byte) (Header, error) {
	var h Header
	if len(blob) < 8 {
		return h, fmt.Errorf("%w: %d bytes", ErrBadHeader, len(blob))
	}
	il := binary.BigEndian.Uint32(blob[0:])
	dl := binary.BigEndian.Uint32(blob[4:])
	if il == 0 || il > maxIndexEntries || dl > maxDataLength {
		return h, fmt.Errorf("%w: %d entries, %d data bytes", ErrBadHeader, il, dl)
	}
	start := 8 + 16*int(il)
	if len(blob) < start+int(dl) {
		return h, fmt.Errorf("%w: %d entries and %d data bytes overrun a %d-byte blob", ErrBadHeader, il, dl, len(blob))
	}
	index, data := blob[8:start], blob[start:start+int(dl)]
	for i := 0; i < int(il); i++ {
		e := index[16*i:]
		tag := binary.BigEndian.Uint32(e[0:])
		typ := binary.BigEndian.Uint32(e[4:])
		off := binary.BigEndian.Uint32(e[8:])
		count := binary.BigEndian.Uint32(e[12:])
		if off >= uint32(len(data)) {
			switch tag {
			case tagName, tagVersion, tagRelease, tagEpoch, tagInstallTime, tagVendor, tagArch:
				return h, fmt.Errorf("%w: tag %d at offset %d beyond %d data bytes", ErrBadHeader, tag, off, len(data))
			}
			continue
		}
		var err error
		switch tag {
		case tagName:
			h.Name, err = str(data, typ, off)
		case tagVersion:
			h.Version, err = str(data, typ, off)
		case tagRelease:
			h.Release, err = str(data, typ, off)
		case tagArch:
			h.Arch, err = str(data, typ, off)
		case tagVendor:
			h.Vendor, err = str(data, typ, off)
		case tagEpoch:
			var v uint32
			v, err = int32At(data, typ, off, count)
			h.Epoch, h.HasEpoch = int32(v), err == nil
		case tagInstallTime:
			var v uint32
			v, err = int32At(data, typ, off, count)
			h.InstallTime = int64(v)
		}
		if err != nil {
			return h, fmt.Errorf("tag %d: %w", tag, err)
		}
	}
	if h.Name == "" {
		return h, fmt.Errorf("%w: no name", ErrBadHeader)
	}
	return h, nil
}

// str reads the NUL-terminated string at off (the first one, for arrays).
func str(data []byte, typ, off uint32) (string, error) {
	switch typ {
	case typeString, typeStringArray, typeI18NString:
	default:
		return "", fmt.Errorf("%w: type %d where a string belongs", ErrBadHeader, typ)
	}
	b := data[off:]
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), nil
		}
	}
	return "", fmt.Errorf("%w: unterminated string", ErrBadHeader)
}

// int32At reads the first element of an INT32 entry.
func int32At(data []byte, typ, off, count uint32) (uint32, error) {
	if typ != typeInt32 || count < 1 {
		return 0, fmt.Errorf("%w: type %d count %d where an int32 belongs", ErrBadHeader, typ, count)
	}
	if uint64(off)+4 > uint64(len(data)) {
		return 0, fmt.Errorf("%w: int32 beyond the data", ErrBadHeader)
	}
	return binary.BigEndian.Uint32(data[off:]), nil
}
