package loadgen

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tallyhq/tally/agent/client"

	"github.com/tallyhq/tally/protocol"
)

// postKind separates the requests whose costs differ by orders of magnitude.
type postKind int

const (
	kindEnroll postKind = iota
	kindFull            // inventory post with the whole software set
	kindDelta           // inventory post with a software delta (often empty)
	kindBasic           // inventory post without software
	numKinds
)

var kindNames = [numKinds]string{"enroll", "full", "delta", "basic"}

// phase collects what happens during one measured part of a run. Every
// field is safe for concurrent use.
type phase struct {
	name  string
	start time.Time
	end   atomic.Int64 // unix nanos of the last acknowledgement

	lat       [numKinds]Histogram // from the first attempt to the acknowledgement
	acked     [numKinds]atomic.Int64
	reqBytes  [numKinds]atomic.Int64
	respBytes [numKinds]atomic.Int64
	attempts  atomic.Int64
	unacked   atomic.Int64
	notSent   atomic.Int64
	repeats   atomic.Int64
	failovers atomic.Int64
	inflight  atomic.Int64

	handshake   Histogram
	handFull    atomic.Int64
	handResumed atomic.Int64
	admin       Histogram
	adminErrs   atomic.Int64

	mu        sync.Mutex
	errs      map[string]int64
	verdicts  map[string]int64
	anomalies map[string]int64
}

func newPhase(name string) *phase {
	return &phase{name: name, start: time.Now(), errs: map[string]int64{}, verdicts: map[string]int64{}, anomalies: map[string]int64{}}
}

func (p *phase) ack(k postKind, d time.Duration, req, resp int) {
	p.lat[k].Record(d)
	p.acked[k].Add(1)
	p.reqBytes[k].Add(int64(req))
	p.respBytes[k].Add(int64(resp))
	now := time.Now().UnixNano()
	for {
		e := p.end.Load()
		if now <= e || p.end.CompareAndSwap(e, now) {
			break
		}
	}
}

func (p *phase) count(m map[string]int64, key string) {
	p.mu.Lock()
	m[key]++
	p.mu.Unlock()
}

func (p *phase) fail(kind string)    { p.count(p.errs, kind) }
func (p *phase) anomaly(what string) { p.count(p.anomalies, what) }

func (p *phase) addVerdicts(vs []protocol.ProductVerdict) {
	if len(vs) == 0 {
		return
	}
	p.mu.Lock()
	for _, v := range vs {
		p.verdicts[v.Product+" "+v.Verdict.String()]++
	}
	p.mu.Unlock()
}

func (p *phase) totalAcked() int64 {
	var n int64
	for k := range p.acked {
		n += p.acked[k].Load()
	}
	return n
}

func copyMap(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// errorKind names an error for the errors-by-kind table: the protocol
// status for a server's answer, a short class for transport failures.
func errorKind(err error) string {
	var pe *protocol.Error
	var idle *quic.IdleTimeoutError
	var hs *quic.HandshakeTimeoutError
	var app *quic.ApplicationError
	var se *quic.StreamError
	var tre *quic.TransportError
	var ne net.Error
	switch {
	case errors.As(err, &pe):
		return pe.Status.String()
	case errors.Is(err, errMalformed):
		return "malformed-answer"
	case errors.Is(err, errSeqMismatch):
		return "sequence-mismatch"
	case errors.As(err, &hs):
		return "transport:handshake-timeout"
	case errors.As(err, &idle):
		return "transport:idle-timeout"
	case errors.As(err, &app):
		return "transport:closed-by-peer"
	case errors.As(err, &se):
		return "transport:stream-reset"
	case errors.As(err, &tre):
		return "transport:" + strings.ToLower(tre.ErrorCode.String())
	case errors.Is(err, client.ErrStaleConnection):
		return "transport:stale-connection"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "transport:timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "transport:refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "transport:reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "transport:closed-by-peer"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &ne) && ne.Timeout():
		return "transport:timeout"
	}
	return "transport:other"
}

// retryable tells whether a post that failed so may be sent again with the
// same sequence number.
func retryable(err error) bool {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Status.Retryable()
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, errMalformed) && !errors.Is(err, errSeqMismatch)
}

// sortedKeys returns m's keys, largest value first.
func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
