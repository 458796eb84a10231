package listener

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
)

// knowOnly authenticates the test server's client key and no other.
func knowOnly(known ed25519.PublicKey) func(context.Context, ed25519.PublicKey) *protocol.Error {
	return func(_ context.Context, key ed25519.PublicKey) *protocol.Error {
		if key.Equal(known) {
			return nil
		}
		return protocol.Errorf(protocol.StatusNotEnrolled, "never heard of this key")
	}
}

// dialQUICAs dials with another client key than the test server's.
func (s *testServer) dialQUICAs(key ed25519.PrivateKey) *quic.Conn {
	s.t.Helper()
	cert, err := identity.SelfSigned(key, "someone else")
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := quic.DialAddr(ctx, s.quic.Addr().String(), identity.ClientTLS(cert, s.pin, protocol.ALPN), nil)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.CloseWithError(0, "") })
	return c
}

// An unknown key's requests never take one of MaxInFlight: with the only
// slot held by a known key's request, an unknown key's small request is
// still handled; one larger than an enrollment gets the key's refusal,
// unread, on QUIC and on TCP (which then closes the connection).
func TestUnknownKeysHaveTheirOwnSmallBudget(t *testing.T) {
	h := newEcho()
	// Set once the server runs: atomic, since the race detector sees no
	// order in what crosses a socket.
	var knownKey atomic.Pointer[ed25519.PublicKey]
	s := start(t, h, func(c *Config) {
		c.MaxInFlight = 1
		c.Authenticate = func(ctx context.Context, key ed25519.PublicKey) *protocol.Error {
			return knowOnly(*knownKey.Load())(ctx, key)
		}
	})
	pub := s.key.Public().(ed25519.PublicKey)
	knownKey.Store(&pub)
	known := s.dialQUIC()
	blocked := make(chan error, 1)
	go func() {
		_, err := askQUIC(known, []byte("block"))
		blocked <- err
	}()
	<-h.started
	defer func() {
		close(h.release)
		if err := <-blocked; err != nil {
			t.Errorf("the known key's request: %v", err)
		}
	}()

	other, _ := identity.NewKey()
	stranger := s.dialQUICAs(other)
	if resp, err := askQUIC(stranger, []byte("an enrollment")); err != nil || resp.Status != protocol.StatusOK {
		t.Fatalf("an unknown key's small request with MaxInFlight taken: %+v %v", resp, err)
	}
	calls := h.calls.Load()
	resp, err := askQUICLarge(stranger, bytes.Repeat([]byte("x"), protocol.MaxUnauthenticatedSize+1))
	if err != nil || resp.Status != protocol.StatusNotEnrolled || resp.Message != "never heard of this key" {
		t.Fatalf("an unknown key's request over %d bytes: %+v %v, want its refusal", protocol.MaxUnauthenticatedSize, resp, err)
	}
	if h.calls.Load() != calls {
		t.Fatal("the handler saw an unknown key's request larger than an enrollment")
	}

	// Over TCP, the frame's announced length is enough to refuse it.
	s.key = other
	c := s.dial()
	writeFrame(t, c, bytes.Repeat([]byte("y"), protocol.MaxUnauthenticatedSize+1))
	if resp, err := readResponse(c); err != nil || resp.Status != protocol.StatusNotEnrolled {
		t.Fatalf("over TCP: %+v %v, want the refusal", resp, err)
	}
	if _, err := readResponse(c); err == nil {
		t.Fatal("the connection stayed open after a refused frame")
	}
	if resp := s.ask(s.dial(), []byte("small")); resp.Status != protocol.StatusOK {
		t.Fatalf("an unknown key's small request over TCP: %+v", resp)
	}
}

// A body that trickles is cut at the body timeout (and the minimum rate
// past it) and frees its slot: with one slot, a trickling request is
// answered within a second or two, and the next request is served.
func TestTricklingBodyIsCutAtTheBodyTimeout(t *testing.T) {
	s := start(t, newEcho(), func(c *Config) { c.MaxInFlight = 1; c.BodyTimeout = 300 * time.Millisecond })
	c := s.dialQUIC()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(10 * time.Second))
	began := time.Now()
	go func() {
		for range 200 {
			if _, err := st.Write([]byte{0xa5}); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	raw, err := protocol.ReadMessage(st, protocol.MaxResponseSize)
	took := time.Since(began)
	var resp protocol.Response
	if err == nil {
		err = protocol.Unmarshal(raw, &resp)
	}
	if err != nil || resp.Status != protocol.StatusBadRequest || !strings.Contains(resp.Message, "deadline") {
		t.Fatalf("trickling request: %+v %v after %v, want refused for its deadline", resp, err, took)
	}
	if took > 5*time.Second {
		t.Fatalf("a trickling request held its slot for %v", took)
	}
	t.Logf("cut after %v", took)
	if resp, err := askQUIC(c, []byte("next")); err != nil || resp.Status != protocol.StatusOK {
		t.Fatalf("the next request: %+v %v", resp, err)
	}
}

// Known keys' bodies share BodyBytes: with room for two bodies of 1.5 MiB
// (read into buffers of 2 MiB) held by their handlers, a third waits a second, then is
// answered busy with a retry-after; once the two are answered, it goes
// through.
func TestBodiesShareTheByteBudget(t *testing.T) {
	h := &holdBig{release: make(chan struct{}), started: make(chan struct{}, 4)}
	s := start(t, h, func(c *Config) { c.BodyBytes = MinBodyBytes })
	big := make([]byte, 3<<19) // 1.5 MiB, read into 2 MiB
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		c := s.dialQUIC()
		wg.Go(func() {
			resp, err := askQUICLarge(c, big)
			if err == nil && resp.Status != protocol.StatusOK {
				err = protocol.Errorf(resp.Status, "%s", resp.Message)
			}
			errs <- err
		})
	}
	<-h.started
	<-h.started
	c := s.dialQUIC()
	began := time.Now()
	resp, err := askQUICLarge(c, big)
	if err != nil || resp.Status != protocol.StatusBusy || resp.RetryAfter == 0 || !strings.Contains(resp.Message, "bytes") {
		t.Fatalf("a third body with the budget taken: %+v %v, want busy", resp, err)
	}
	if waited := time.Since(began); waited < budgetWait/2 {
		t.Fatalf("answered busy after %v, without waiting for room", waited)
	}
	close(h.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a body within the budget: %v", err)
		}
	}
	if resp, err := askQUICLarge(c, big); err != nil || resp.Status != protocol.StatusOK {
		t.Fatalf("once the budget is free again: %+v %v", resp, err)
	}
}

// askQUICLarge is askQUIC reading the answer even when the server stopped
// reading the request, as the agent does.
func askQUICLarge(c *quic.Conn, body []byte) (protocol.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.OpenStreamSync(ctx)
	if err != nil {
		return protocol.Response{}, err
	}
	st.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := st.Write(body); err == nil {
		st.Close()
	}
	raw, err := protocol.ReadMessage(st, protocol.MaxResponseSize)
	if err != nil {
		return protocol.Response{}, err
	}
	var resp protocol.Response
	return resp, protocol.Unmarshal(raw, &resp)
}

// holdBig holds the requests larger than a megabyte until release.
type holdBig struct {
	release chan struct{}
	started chan struct{}
}

func (h *holdBig) Handle(ctx context.Context, _ ed25519.PublicKey, raw []byte) protocol.Response {
	if len(raw) > 1<<20 {
		select {
		case <-h.release:
		default:
			h.started <- struct{}{}
			select {
			case <-h.release:
			case <-ctx.Done():
			}
		}
	}
	return protocol.Response{Major: protocol.Major, Status: protocol.StatusOK}
}

// The byte budget lets a waiter in as soon as bytes come back.
func TestByteBudgetWakesWaiters(t *testing.T) {
	b := newByteBudget(10)
	if !b.take(8, 0) || b.take(4, 10*time.Millisecond) {
		t.Fatal("took more than the budget")
	}
	got := make(chan bool)
	go func() { got <- b.take(4, 10*time.Second) }()
	b.give(8)
	select {
	case ok := <-got:
		if !ok {
			t.Fatal("the waiter was refused after bytes came back")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter was not woken")
	}
}
