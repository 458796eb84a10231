package protocol

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// chunked reads at most n bytes a call, as a QUIC stream hands over one
// frame's data at a time.
type chunked struct {
	r io.Reader
	n int
}

func (c chunked) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

func TestReadMessageSizesAndLimits(t *testing.T) {
	for _, size := range []int{0, 1, 103, 511, 512, 513, 4096, 60_259} {
		msg := bytes.Repeat([]byte{0xa5}, size)
		for _, chunk := range []int{1, 7, 1200, 1 << 20} {
			for _, max := range []int{size, size + 1, size * 2, MaxRequestSize} {
				got, err := ReadMessage(chunked{bytes.NewReader(msg), chunk}, max)
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("size %d chunk %d max %d: %d bytes, %v", size, chunk, max, len(got), err)
				}
			}
			if size > 0 {
				if _, err := ReadMessage(chunked{bytes.NewReader(msg), chunk}, size-1); !errors.Is(err, ErrTooLarge) {
					t.Fatalf("size %d chunk %d max %d: %v, want ErrTooLarge", size, chunk, size-1, err)
				}
			}
		}
	}
}

func TestReadMessageStopsAtTheLimit(t *testing.T) {
	// An endless stream is refused after max+1 bytes, with a buffer of at
	// most that size.
	var endless endlessReader
	if _, err := ReadMessage(&endless, 10_000); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("endless stream: %v", err)
	}
	if endless.n > 10_001 {
		t.Fatalf("read %d bytes of an endless stream with a limit of 10,000", endless.n)
	}
}

type endlessReader struct{ n int }

func (e *endlessReader) Read(p []byte) (int, error) {
	e.n += len(p)
	return len(p), nil
}

func TestReadMessagePassesReadErrors(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(bytes.NewReader([]byte("abc")), iotest.ErrReader(boom))
	if _, err := ReadMessage(r, 100); !errors.Is(err, boom) {
		t.Fatalf("got %v, want the reader's error", err)
	}
	// Data and EOF in one call.
	if got, err := ReadMessage(iotest.DataErrReader(bytes.NewReader([]byte("abc"))), 100); err != nil || string(got) != "abc" {
		t.Fatalf("data with EOF: %q %v", got, err)
	}
}

// BenchmarkReadMessage reads a delta post's and a full post's size as
// the listener reads a request stream (1,200-byte frames).
func BenchmarkReadMessage(b *testing.B) {
	for _, c := range []struct {
		name string
		size int
	}{{"delta", 103}, {"full", 60_259}} {
		msg := bytes.Repeat([]byte{1}, c.size)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			r := bytes.NewReader(msg)
			for b.Loop() {
				r.Reset(msg)
				if _, err := ReadMessage(chunked{r, 1200}, MaxRequestSize); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
