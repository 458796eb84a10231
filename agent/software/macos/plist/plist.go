// Package plist decodes Apple property lists, in both their XML and their
// binary ("bplist00") forms, into Go values: map[string]any for a dict,
// []any for an array or set, string, int64, float64, bool, time.Time for a
// date, []byte for data, and UID for a keyed-archiver reference.
//
// It exists so that the macOS inventory can be built and tested anywhere
// without a third-party module, and it is written for untrusted files: every
// offset is checked, object references that loop are an error, and an object
// shared by many references is decoded once, so a small file cannot make it
// do a large amount of work.
package plist

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// ErrCorrupt is wrapped by every error about a malformed property list.
var ErrCorrupt = errors.New("malformed property list")

// UID is a keyed-archiver object reference (binary plists only).
type UID uint64

// maxDepth bounds nesting, in both forms.
const maxDepth = 128

// epoch is the origin of plist dates.
var epoch = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

// Decode decodes a property list, binary or XML.
func Decode(data []byte) (any, error) {
	if bytes.HasPrefix(data, []byte("bplist0")) {
		return decodeBinary(data)
	}
	return decodeXML(data)
}

// --- binary ---

type binaryDecoder struct {
	data      []byte
	offsets   []uint64
	refSize   int
	memo      []any
	state     []uint8 // 0 not decoded, 1 being decoded, 2 done
	objectEnd int     // where objects stop: the offset table
}

func decodeBinary(data []byte) (any, error) {
	if len(data) < 8+32 {
		return nil, fmt.Errorf("%w: %d bytes", ErrCorrupt, len(data))
	}
	t := data[len(data)-32:]
	offSize, refSize := int(t[6]), int(t[7])
	n := binary.BigEndian.Uint64(t[8:])
	top := binary.BigEndian.Uint64(t[16:])
	tableOff := binary.BigEndian.Uint64(t[24:])
	if offSize < 1 || offSize > 8 || refSize < 1 || refSize > 8 {
		return nil, fmt.Errorf("%w: offset size %d, reference size %d", ErrCorrupt, offSize, refSize)
	}
	end := uint64(len(data) - 32)
	if n == 0 || top >= n || tableOff < 8 || tableOff > end || n > (end-tableOff)/uint64(offSize) {
		return nil, fmt.Errorf("%w: %d objects, top %d, offset table at %d", ErrCorrupt, n, top, tableOff)
	}
	d := &binaryDecoder{data: data, refSize: refSize, objectEnd: int(tableOff)}
	d.offsets = make([]uint64, n)
	for i := range d.offsets {
		d.offsets[i] = uintN(data[int(tableOff)+i*offSize:], offSize)
	}
	d.memo = make([]any, n)
	d.state = make([]uint8, n)
	return d.object(top, 0)
}

func uintN(b []byte, size int) uint64 {
	var v uint64
	for _, c := range b[:size] {
		v = v<<8 | uint64(c)
	}
	return v
}

func (d *binaryDecoder) object(ref uint64, depth int) (any, error) {
	if ref >= uint64(len(d.offsets)) {
		return nil, fmt.Errorf("%w: reference %d of %d objects", ErrCorrupt, ref, len(d.offsets))
	}
	switch d.state[ref] {
	case 1:
		return nil, fmt.Errorf("%w: object %d contains itself", ErrCorrupt, ref)
	case 2:
		return d.memo[ref], nil
	}
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d", ErrCorrupt, maxDepth)
	}
	d.state[ref] = 1
	v, err := d.decode(d.offsets[ref], depth)
	if err != nil {
		return nil, err
	}
	d.memo[ref], d.state[ref] = v, 2
	return v, nil
}

func (d *binaryDecoder) decode(off uint64, depth int) (any, error) {
	if off < 8 || off >= uint64(d.objectEnd) {
		return nil, fmt.Errorf("%w: object at %d", ErrCorrupt, off)
	}
	b := d.data[off:d.objectEnd]
	marker := b[0]
	kind, low := marker>>4, int(marker&0x0f)
	b = b[1:]
	switch kind {
	case 0x0:
		switch marker {
		case 0x00:
			return nil, nil
		case 0x08:
			return false, nil
		case 0x09:
			return true, nil
		}
	case 0x1:
		size := 1 << low
		if low > 4 || len(b) < size {
			return nil, fmt.Errorf("%w: integer at %d", ErrCorrupt, off)
		}
		if size == 16 {
			b, size = b[8:], 8 // 128-bit: keep the low 64 bits
		}
		// 1-, 2- and 4-byte integers are unsigned, 8-byte ones signed.
		return int64(uintN(b, size)), nil
	case 0x2:
		switch {
		case low == 2 && len(b) >= 4:
			return float64(math.Float32frombits(binary.BigEndian.Uint32(b))), nil
		case low == 3 && len(b) >= 8:
			return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
		}
		return nil, fmt.Errorf("%w: real at %d", ErrCorrupt, off)
	case 0x3:
		if marker != 0x33 || len(b) < 8 {
			return nil, fmt.Errorf("%w: date at %d", ErrCorrupt, off)
		}
		return date(math.Float64frombits(binary.BigEndian.Uint64(b))), nil
	case 0x4, 0x5, 0x6, 0x7:
		n, b, err := d.count(low, b)
		if err != nil {
			return nil, err
		}
		size := n
		if kind == 0x6 {
			size = 2 * n
		}
		if uint64(len(b)) < size {
			return nil, fmt.Errorf("%w: %d-byte value at %d overruns the objects", ErrCorrupt, size, off)
		}
		b = b[:size]
		switch kind {
		case 0x4:
			return bytes.Clone(b), nil
		case 0x6:
			u := make([]uint16, n)
			for i := range u {
				u[i] = binary.BigEndian.Uint16(b[2*i:])
			}
			return string(utf16.Decode(u)), nil
		default:
			return string(b), nil
		}
	case 0x8:
		if len(b) < low+1 {
			return nil, fmt.Errorf("%w: uid at %d", ErrCorrupt, off)
		}
		return UID(uintN(b, min(low+1, 8))), nil
	case 0xa, 0xc, 0xd:
		n, b, err := d.count(low, b)
		if err != nil {
			return nil, err
		}
		refs := n
		if kind == 0xd {
			refs = 2 * n
		}
		if refs > uint64(len(b))/uint64(d.refSize) {
			return nil, fmt.Errorf("%w: %d references at %d overrun the objects", ErrCorrupt, refs, off)
		}
		ref := func(i uint64) uint64 { return uintN(b[int(i)*d.refSize:], d.refSize) }
		if kind != 0xd {
			arr := make([]any, 0, n)
			for i := uint64(0); i < n; i++ {
				v, err := d.object(ref(i), depth+1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			return arr, nil
		}
		m := make(map[string]any, n)
		for i := uint64(0); i < n; i++ {
			k, err := d.object(ref(i), depth+1)
			if err != nil {
				return nil, err
			}
			key, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("%w: dict key of type %T at %d", ErrCorrupt, k, off)
			}
			v, err := d.object(ref(n+i), depth+1)
			if err != nil {
				return nil, err
			}
			m[key] = v
		}
		return m, nil
	}
	return nil, fmt.Errorf("%w: unknown object marker %#x at %d", ErrCorrupt, marker, off)
}

// count reads an object's element count: the marker's low nibble, or,
// when that is 0xF, the integer object that follows.
func (d *binaryDecoder) count(low int, b []byte) (uint64, []byte, error) {
	if low != 0xf {
		return uint64(low), b, nil
	}
	if len(b) < 1 || b[0]>>4 != 0x1 || b[0]&0xf > 3 {
		return 0, nil, fmt.Errorf("%w: bad element count", ErrCorrupt)
	}
	size := 1 << (b[0] & 0xf)
	if len(b) < 1+size {
		return 0, nil, fmt.Errorf("%w: truncated element count", ErrCorrupt)
	}
	n := uintN(b[1:], size)
	if n > uint64(len(d.data)) {
		return 0, nil, fmt.Errorf("%w: element count %d", ErrCorrupt, n)
	}
	return n, b[1+size:], nil
}

func date(secs float64) time.Time {
	if math.IsNaN(secs) || math.IsInf(secs, 0) || math.Abs(secs) > 1e11 {
		return time.Time{}
	}
	whole, frac := math.Modf(secs)
	return epoch.Add(time.Duration(whole) * time.Second).Add(time.Duration(frac * 1e9))
}

// --- XML ---

func decodeXML(data []byte) (any, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = false
	// The DOCTYPE names Apple's DTD; it is never fetched.
	d.Entity = xml.HTMLEntity
	for {
		tok, err := d.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: no plist element", ErrCorrupt)
			}
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if start.Name.Local != "plist" {
			// A bare value without the <plist> wrapper.
			return xmlValue(d, start, 0)
		}
		for {
			tok, err := d.Token()
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			switch t := tok.(type) {
			case xml.StartElement:
				return xmlValue(d, t, 0)
			case xml.EndElement:
				return nil, fmt.Errorf("%w: empty plist", ErrCorrupt)
			}
		}
	}
}

func xmlValue(d *xml.Decoder, start xml.StartElement, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d", ErrCorrupt, maxDepth)
	}
	switch start.Name.Local {
	case "dict":
		m := map[string]any{}
		for {
			key, done, err := xmlChild(d)
			if err != nil || done {
				return m, err
			}
			if key.Name.Local != "key" {
				return nil, fmt.Errorf("%w: <%s> where a <key> belongs", ErrCorrupt, key.Name.Local)
			}
			k, err := xmlText(d)
			if err != nil {
				return nil, err
			}
			vs, done, err := xmlChild(d)
			if err != nil {
				return nil, err
			}
			if done {
				return nil, fmt.Errorf("%w: key %q without a value", ErrCorrupt, k)
			}
			v, err := xmlValue(d, vs, depth+1)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
	case "array":
		arr := []any{}
		for {
			vs, done, err := xmlChild(d)
			if err != nil || done {
				return arr, err
			}
			v, err := xmlValue(d, vs, depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
	case "true", "false":
		if err := d.Skip(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return start.Name.Local == "true", nil
	}
	text, err := xmlText(d)
	if err != nil {
		return nil, err
	}
	switch start.Name.Local {
	case "string", "key":
		return text, nil
	case "integer":
		s := strings.TrimSpace(text)
		if v, err := strconv.ParseInt(s, 0, 64); err == nil {
			return v, nil
		}
		if v, err := strconv.ParseUint(s, 0, 64); err == nil {
			return int64(v), nil
		}
		return nil, fmt.Errorf("%w: integer %q", ErrCorrupt, s)
	case "real":
		v, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
		if err != nil {
			return nil, fmt.Errorf("%w: real %q", ErrCorrupt, text)
		}
		return v, nil
	case "date":
		v, err := time.Parse(time.RFC3339, strings.TrimSpace(text))
		if err != nil {
			return nil, fmt.Errorf("%w: date %q", ErrCorrupt, text)
		}
		return v, nil
	case "data":
		v, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text), ""))
		if err != nil {
			return nil, fmt.Errorf("%w: data: %v", ErrCorrupt, err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("%w: unknown element <%s>", ErrCorrupt, start.Name.Local)
}

// xmlChild returns the next child element, or done at the parent's end.
func xmlChild(d *xml.Decoder) (start xml.StartElement, done bool, err error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return start, false, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, false, nil
		case xml.EndElement:
			return start, true, nil
		}
	}
}

// xmlText returns the character data up to the current element's end.
func xmlText(d *xml.Decoder) (string, error) {
	var s strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			s.Write(t)
		case xml.StartElement:
			return "", fmt.Errorf("%w: <%s> inside a scalar", ErrCorrupt, t.Name.Local)
		case xml.EndElement:
			return s.String(), nil
		}
	}
}
