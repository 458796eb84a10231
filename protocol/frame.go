package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// On TLS over TCP, the fallback where UDP is blocked (on the QUIC port
// number, with the same TLS and ALPN), requests and answers travel as
// frames: a 4-byte big-endian length, then that many bytes of one CBOR
// envelope. A connection carries one request at a time: the client sends a
// frame and reads the answer's frame before it sends the next.

// FrameHeader is the size of a frame's length prefix.
const FrameHeader = 4

// ErrEmptyFrame marks a frame that announces no bytes: no envelope is empty.
var ErrEmptyFrame = errors.New("empty frame")

// Frame returns msg as one frame: its length, then msg.
func Frame(msg []byte) []byte {
	f := make([]byte, FrameHeader+len(msg))
	binary.BigEndian.PutUint32(f, uint32(len(msg)))
	copy(f[FrameHeader:], msg)
	return f
}

// FrameLength decodes a frame's header.
func FrameLength(hdr [FrameHeader]byte) uint32 { return binary.BigEndian.Uint32(hdr[:]) }

// ReadFrameBody reads the n bytes of a frame's body once its header has
// been read. The buffer grows with what arrives, so a frame that announces
// much and sends little costs little; a body cut short is
// io.ErrUnexpectedEOF.
func ReadFrameBody(r io.Reader, n uint32) ([]byte, error) {
	raw, err := ReadMessage(io.LimitReader(r, int64(n)), int(n))
	if err == nil && len(raw) < int(n) {
		err = io.ErrUnexpectedEOF
	}
	return raw, err
}

// ReadFrame reads one frame of at most max bytes. got counts the bytes
// read, header included, so that a caller can tell a peer that never
// answered from one cut short. A frame over max is refused before its body
// is read (ErrTooLarge); an empty one is ErrEmptyFrame.
func ReadFrame(r io.Reader, max int) (raw []byte, got int, err error) {
	var hdr [FrameHeader]byte
	if got, err = io.ReadFull(r, hdr[:]); err != nil {
		return nil, got, err
	}
	n := FrameLength(hdr)
	if n == 0 {
		return nil, got, ErrEmptyFrame
	}
	if n > uint32(max) {
		return nil, got, fmt.Errorf("frame of %d bytes is over the %d-byte limit: %w", n, max, ErrTooLarge)
	}
	raw, err = ReadFrameBody(r, n)
	return raw, got + len(raw), err
}
