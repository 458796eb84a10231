package client_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/client"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
)

// The failover between real servers is tested in server/integration
// (replicas_agent_test.go); these tests need no server.

// freeAddr picks a loopback port that nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	c, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.Addr().String()
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
		Transport: client.TransportTCP, DialTimeout: 5 * time.Second})
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
	if got, _ := c.Preferred(); got != a {
		t.Errorf("preferred %s after every address failed, want the first %s", got, a)
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
