package client_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/client"
	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/servertest"
)

// replicaDir makes a data folder holding the identity files of the server
// whose folder is from (key, admin token, QUIC keys, trusted issuers), as
// replicas share them, with a store of its own.
func replicaDir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	for _, name := range []string{datadir.KeyFile, datadir.TokenFile, datadir.QUICKeysFile, datadir.IssuersFile} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// freeAddr picks a loopback port that nothing listens on, so that a
// server can be stopped and started again at the same address.
func freeAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

func listenOn(addr string) servertest.Option { return func(c *daemon.Config) { c.Listen = addr } }

// answeredBy sends one request and returns the address that answered it.
// The key is not enrolled: any answer at all (the server's "not
// enrolled") shows which replica was reached.
func answeredBy(t *testing.T, c *client.Client, seq uint64) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Do(ctx, protocol.KindCheckIn, seq, nil)
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		t.Fatalf("request %d: %v, want an answer from a server", seq, err)
	}
	addr, _ := c.Preferred()
	return addr
}

// The failover policy, on two real servers sharing one identity: the
// first address while it answers; the next when it stops; the address that
// answered last while it keeps answering (the first, back, is not dialed
// again at once); the first again on the first new connection once
// ReturnAfter has passed.
func TestFailoverPolicy(t *testing.T) {
	addrA := freeAddr(t)
	a := servertest.New(t, listenOn(addrA))
	dirA := a.Config.DataDir
	b := servertest.New(t, servertest.WithDataDir(replicaDir(t, dirA)))
	if a.Fingerprint() != b.Fingerprint() {
		t.Fatalf("replicas with fingerprints %s and %s", a.Fingerprint(), b.Fingerprint())
	}
	key, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewManual(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	c, err := client.New(client.Config{Servers: []string{addrA, b.Addr()}, Fingerprint: a.Fingerprint(), Key: key,
		DialTimeout: 2 * time.Second, RequestTimeout: 5 * time.Second, ReturnAfter: 30 * time.Minute, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	if got := answeredBy(t, c, 1); got != addrA {
		t.Fatalf("answered by %s, want the first address %s", got, addrA)
	}
	a.Stop()
	c.Close() // a dial that fails; integration tests cover a request lost mid-flight
	if got := answeredBy(t, c, 2); got != b.Addr() {
		t.Fatalf("with the first stopped, answered by %s, want %s", got, b.Addr())
	}
	if _, since := c.Preferred(); !since.Equal(clk.Now()) {
		t.Fatalf("moved off the first address at %v, want %v", since, clk.Now())
	}
	servertest.New(t, servertest.WithDataDir(dirA), listenOn(addrA))
	c.Close() // a new connection, as each cycle of the agent makes
	clk.Advance(29 * time.Minute)
	if got := answeredBy(t, c, 3); got != b.Addr() {
		t.Fatalf("before ReturnAfter, answered by %s, want %s (the one that answered last)", got, b.Addr())
	}
	c.Close()
	clk.Advance(time.Minute)
	if got := answeredBy(t, c, 4); got != addrA {
		t.Fatalf("after ReturnAfter, answered by %s, want the first address %s again", got, addrA)
	}
	if _, since := c.Preferred(); !since.IsZero() {
		t.Fatalf("back on the first address since %v, want zero", since)
	}
}

// Every address unreachable: one error naming each, which the caller
// retries later as a transport failure.
func TestEveryAddressUnreachable(t *testing.T) {
	key, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	a, b := freeAddr(t), freeAddr(t)
	c, err := client.New(client.Config{Servers: []string{a, b}, Fingerprint: strings.Repeat("ab", 32), Key: key,
		Transport: client.TransportTCP, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Do(context.Background(), protocol.KindCheckIn, 1, nil)
	var te *client.TransportError
	if !errors.As(err, &te) || !client.Retryable(err) {
		t.Fatalf("%v, want a transport error", err)
	}
	for _, addr := range []string{a, b} {
		if !strings.Contains(err.Error(), "connect to "+addr) {
			t.Errorf("%v does not name %s", err, addr)
		}
	}
}

// A list with a duplicate or a malformed address is refused.
func TestNewRefusesABadList(t *testing.T) {
	key, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	fp := strings.Repeat("ab", 32)
	for _, list := range [][]string{{"a:1", "A:1"}, {"a:1", "nope"}, {"a:1", ""}} {
		if _, err := client.New(client.Config{Servers: list, Fingerprint: fp, Key: key}); err == nil {
			t.Errorf("%q accepted", list)
		}
	}
}
