package protocol

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	var stream bytes.Buffer
	msgs := [][]byte{{0xa0}, bytes.Repeat([]byte{7}, 70_000), []byte("x")}
	for _, m := range msgs {
		stream.Write(Frame(m))
	}
	for i, m := range msgs {
		raw, got, err := ReadFrame(&stream, 1<<20)
		if err != nil || !bytes.Equal(raw, m) || got != FrameHeader+len(m) {
			t.Fatalf("frame %d: %d bytes, got %d, %v", i, len(raw), got, err)
		}
	}
	if _, got, err := ReadFrame(&stream, 1<<20); err != io.EOF || got != 0 {
		t.Fatalf("after the last frame: got %d, %v; want 0, EOF", got, err)
	}
}

func TestFrameRefusals(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
		want error
		got  int
	}{
		{"empty", []byte{0, 0, 0, 0}, ErrEmptyFrame, 4},
		{"over the limit, body unread", append([]byte{0, 0, 4, 1}, make([]byte, 1025)...), ErrTooLarge, 4},
		{"header cut short", []byte{0, 0}, io.ErrUnexpectedEOF, 2},
		{"body cut short", []byte{0, 0, 0, 9, 1, 2, 3}, io.ErrUnexpectedEOF, 7},
		{"announces 4 GiB, sends 3 bytes", []byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3}, ErrTooLarge, 4},
	} {
		_, got, err := ReadFrame(bytes.NewReader(c.in), 1024)
		if !errors.Is(err, c.want) || got != c.got {
			t.Errorf("%s: got %d, %v; want %d, %v", c.name, got, err, c.got, c.want)
		}
	}
}

// FuzzReadFrame: any bytes give a frame within the limit, whose re-framing
// is the bytes read, or an error; never a panic, never more than the limit.
func FuzzReadFrame(f *testing.F) {
	f.Add(Frame([]byte{0xa0}))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Add(append(Frame([]byte("ab")), Frame([]byte("c"))...))
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 4096
		raw, got, err := ReadFrame(bytes.NewReader(in), max)
		if got > len(in) {
			t.Fatalf("counted %d bytes of %d", got, len(in))
		}
		if err != nil {
			return
		}
		if len(raw) == 0 || len(raw) > max {
			t.Fatalf("a frame of %d bytes passed", len(raw))
		}
		if !bytes.Equal(Frame(raw), in[:got]) {
			t.Fatal("the frame read is not the bytes read")
		}
	})
}
