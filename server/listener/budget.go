package listener

import (
	"errors"
	"io"
	"sync"
	"time"
)

// byteBudget is a semaphore on bytes: the request bodies being read (and
// then handled) hold their buffers' bytes, so that a flood of large bodies
// costs the server at most the budget, however many connections carry it.
type byteBudget struct {
	mu      sync.Mutex
	free    int64
	waiting int
	freed   chan struct{} // closed when bytes come back while someone waits
}

func newByteBudget(n int64) *byteBudget {
	return &byteBudget{free: n, freed: make(chan struct{})}
}

// take takes n bytes, waiting at most wait for them.
func (b *byteBudget) take(n int64, wait time.Duration) bool {
	var timer *time.Timer
	for {
		b.mu.Lock()
		if b.free >= n {
			b.free -= n
			b.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return true
		}
		b.waiting++
		ch := b.freed
		b.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(wait)
		}
		select {
		case <-ch:
			b.mu.Lock()
			b.waiting--
			b.mu.Unlock()
		case <-timer.C:
			b.mu.Lock()
			b.waiting--
			b.mu.Unlock()
			return false
		}
	}
}

// give returns n bytes.
func (b *byteBudget) give(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.free += n
	if b.waiting > 0 {
		close(b.freed)
		b.freed = make(chan struct{})
	}
	b.mu.Unlock()
}

// errNoBudget ends a read whose buffer could not grow within the byte
// budget in time: the request is answered busy.
var errNoBudget = errors.New("no room in the byte budget for request bodies")

// budgetWait is how long a request waits for bytes of a budget, or for a
// slot of the unauthenticated requests, before it is answered busy.
const budgetWait = time.Second

// minBodyRate is the slowest a body may arrive, past the body timeout's
// grace: a 4 MB body on a link of 64 KiB/s takes a minute, and a client
// that trickles a byte now and then holds nothing for long.
const minBodyRate = 64 << 10 // bytes a second

// paced reads a request's body under a deadline that starts at the body's
// first byte plus the grace, and moves on by one second for every
// minBodyRate bytes received, never past the request timeout.
type paced struct {
	r        io.Reader
	setRead  func(time.Time) error
	start    time.Time
	grace    time.Duration
	last     time.Time // the request timeout
	got      int64
	deadline time.Time // the deadline last set
}

func (p *paced) Read(b []byte) (int, error) {
	d := p.start.Add(p.grace + time.Duration(p.got)*time.Second/minBodyRate)
	if d.After(p.last) {
		d = p.last
	}
	if !d.Equal(p.deadline) {
		p.deadline = d
		if err := p.setRead(d); err != nil {
			return 0, err
		}
	}
	n, err := p.r.Read(b)
	p.got += int64(n)
	return n, err
}
