package protocol

import (
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"

	"github.com/fxamacker/cbor/v2"
)

// Limits on untrusted input. They bound what one request can cost the
// server in memory and CPU before it is refused.
const (
	MaxRequestSize = 4 << 20 // bytes of one encoded request
	// MaxUnauthenticatedSize bounds a request from a key the server does
	// not know, read before anything else: an enrollment (at most about
	// 3.5 KB) or the goodbye of an uninstalled agent sent again.
	MaxUnauthenticatedSize = 8 << 10
	MaxResponseSize        = 4 << 20 // bytes of one encoded response (the agent's limit)
	MaxNestedLevels        = 16
	MaxArrayElements       = 65536 // a software inventory may list tens of thousands of packages
	MaxMapPairs            = 256   // structs are keyasint maps with few fields
)

// ErrTooLarge is returned by ReadMessage when the input exceeds the limit.
var ErrTooLarge = errors.New("message exceeds the size limit")

// The CBOR modes are immutable and safe for concurrent use: built once, they
// are constants in all but syntax, not state.
var (
	decMode     cbor.DecMode
	lenientMode cbor.DecMode
	encMode     cbor.EncMode
	canonMode   cbor.EncMode
)

func init() {
	var err error
	if decMode, encMode, canonMode, err = buildModes(); err != nil {
		panic(err) // the options are fixed; a failure is a programming error
	}
	opts := decMode.DecOptions()
	opts.ExtraReturnErrors = cbor.ExtraDecErrorNone
	if lenientMode, err = opts.DecMode(); err != nil {
		panic(err)
	}
}

// buildModes builds the strict decoding mode for untrusted input and the
// encoding modes.
func buildModes() (dec cbor.DecMode, enc, canon cbor.EncMode, err error) {
	dec, err = cbor.DecOptions{
		MaxNestedLevels:   MaxNestedLevels,
		MaxArrayElements:  MaxArrayElements,
		MaxMapPairs:       MaxMapPairs,
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		IntDec:            cbor.IntDecConvertSignedOrFail,
		UTF8:              cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cbor decoding mode: %w", err)
	}
	enc, err = cbor.EncOptions{IndefLength: cbor.IndefLengthForbidden, TagsMd: cbor.TagsForbidden}.EncMode()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cbor encoding mode: %w", err)
	}
	canon, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cbor canonical mode: %w", err)
	}
	return dec, enc, canon, nil
}

// Marshal encodes v compactly.
func Marshal(v any) ([]byte, error) {
	return encMode.Marshal(v)
}

// MarshalCanonical encodes v deterministically (RFC 8949 core deterministic
// encoding), as signatures need.
func MarshalCanonical(v any) ([]byte, error) {
	return canonMode.Marshal(v)
}

// Unmarshal decodes untrusted data into v with every limit enforced. Trailing
// bytes are an error. After an error, v must be discarded.
func Unmarshal(data []byte, v any) error {
	if len(data) == 0 {
		return errors.New("empty message")
	}
	return decMode.Unmarshal(data, v)
}

// UnmarshalLenient decodes data into v ignoring fields v does not have, with
// every size limit still enforced. For reading one field out of a document
// whose whole is checked later (a signed record's key).
func UnmarshalLenient(data []byte, v any) error {
	if len(data) == 0 {
		return errors.New("empty message")
	}
	return lenientMode.Unmarshal(data, v)
}

// DecodeRequest decodes and checks a request envelope. The error is an
// *Error carrying the status to answer with.
func DecodeRequest(data []byte) (Request, error) {
	var req Request
	if err := Unmarshal(data, &req); err != nil {
		return Request{}, Errorf(StatusBadRequest, "malformed request: %v", err)
	}
	if req.Major != Major {
		return req, Errorf(StatusUnsupportedVersion,
			"protocol major version %d is not supported: this server speaks %d (revision %d); upgrade the agent or the server", req.Major, Major, Revision)
	}
	if req.Kind == 0 || !req.Kind.Known() {
		return req, Errorf(StatusUnknownKind, "unknown message kind %d", uint16(req.Kind))
	}
	if req.Seq == 0 || req.Seq > math.MaxInt64 {
		return req, Errorf(StatusBadRequest, "sequence number must be between 1 and 2^63-1")
	}
	return req, nil
}

// DecodeBody decodes a request or response body and, when v has a Validate
// method, validates it. Errors are *Error with StatusBadRequest.
//
// The body is first checked against the shape of v's type (see shape.go),
// so that no list longer than v allows is ever allocated.
func DecodeBody(raw cbor.RawMessage, v any) error {
	if err := checkShape(raw, reflect.TypeOf(v).Elem()); err != nil {
		if errors.Is(err, errShapeMalformed) {
			return Errorf(StatusBadRequest, "malformed body: %v", err)
		}
		return Errorf(StatusBadRequest, "invalid body: %v", err)
	}
	if err := Unmarshal(raw, v); err != nil {
		return Errorf(StatusBadRequest, "malformed body: %v", err)
	}
	if val, ok := v.(interface{ Validate() error }); ok {
		if err := val.Validate(); err != nil {
			return Errorf(StatusBadRequest, "invalid body: %v", err)
		}
	}
	return nil
}

// NewRequest builds an envelope around an encoded body.
func NewRequest(kind Kind, seq uint64, body any) ([]byte, error) {
	raw, err := Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode %s body: %w", kind, err)
	}
	return Marshal(Request{Major: Major, Rev: Revision, Kind: kind, Seq: seq, Body: raw})
}

// NewResponse builds an OK response around body (which may be nil).
func NewResponse(seq uint64, body any) (Response, error) {
	resp := Response{Major: Major, Rev: Revision, Status: StatusOK, Seq: seq}
	if body != nil {
		raw, err := Marshal(body)
		if err != nil {
			return resp, fmt.Errorf("encode response body: %w", err)
		}
		resp.Body = raw
	}
	return resp, nil
}

// ErrorResponse turns any error into a response. An *Error keeps its
// status; anything else becomes StatusInternal with a generic message, so
// internal details do not leak to the network.
func ErrorResponse(seq uint64, err error) Response {
	resp := Response{Major: Major, Rev: Revision, Seq: seq}
	var pe *Error
	if errors.As(err, &pe) {
		resp.Status, resp.Message, resp.RetryAfter = pe.Status, pe.Message, pe.RetryAfter
	} else {
		resp.Status, resp.Message = StatusInternal, "internal server error; the request can be retried"
	}
	return resp
}

// ReadMessage reads r to its end, failing with ErrTooLarge past max bytes.
// It never holds more than max+1 bytes.
//
// The buffer starts at readStart bytes and doubles when full, so that a
// delta post (about 100 bytes) costs one small allocation, where
// bytes.Buffer.ReadFrom keeps MinRead bytes free before every read
// (BenchmarkReadMessage; the figures are in docs/PERFORMANCE.md).
func ReadMessage(r io.Reader, max int) ([]byte, error) {
	return ReadMessageGrow(r, max, nil)
}

// ReadMessageGrow is ReadMessage calling grow, when it is not nil, with
// the buffer's new capacity before each allocation of it (the first one
// too), so that a server can count the bytes against a budget; an error
// from grow ends the read with that error.
func ReadMessageGrow(r io.Reader, max int, grow func(capacity int) error) ([]byte, error) {
	start := min(readStart, max+1)
	if grow != nil {
		if err := grow(start); err != nil {
			return nil, err
		}
	}
	buf := make([]byte, 0, start)
	for {
		if len(buf) == cap(buf) {
			size := min(2*cap(buf), max+1)
			if grow != nil {
				if err := grow(size); err != nil {
					return nil, err
				}
			}
			grown := make([]byte, len(buf), size)
			copy(grown, buf)
			buf = grown
		}
		// Never past max+1 bytes, enough to tell a message too large.
		n, err := r.Read(buf[len(buf):min(cap(buf), max+1)])
		buf = buf[:len(buf)+n]
		if len(buf) > max {
			return nil, ErrTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// readStart is ReadMessage's first buffer: larger than a delta post and
// its answer.
const readStart = 512
