// Package agenttest makes real agents for tests: each with its own data
// folder, key and machine identity, enrolled against a real server.
package agenttest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/client"
	"github.com/tallyhq/tally/agent/collect/logins"
	"github.com/tallyhq/tally/agent/plugins"
	"github.com/tallyhq/tally/agent/runner"
	"github.com/tallyhq/tally/agent/state"
	"github.com/tallyhq/tally/common/logging"
	"github.com/tallyhq/tally/protocol"
)

// Agent is an enrolled test agent.
type Agent struct {
	*runner.Agent
	T         testing.TB
	Dir       state.Dir
	MachineID string
}

// Server is what an agent needs to know of a server.
type Server interface {
	Addr() string
	Fingerprint() string
}

// Options for New.
type Options struct {
	MachineID string // default: a unique value per agent
	Secret    string
	DataDir   string // default: a fresh temporary folder
	// SoftwareRoot is the root whose software the agent inventories
	// (default "/"): a fake tree, e.g. from agent/software/softwaretest.
	SoftwareRoot string
	// Users says who uses the machine (default: nobody, so that tests do
	// not depend on who is logged in where they run).
	Users logins.Source
}

var counter atomic.Int64

func next() int64 { return counter.Add(1) }

// New enrolls a fresh agent with srv.
func New(t testing.TB, srv Server, o Options) *Agent {
	t.Helper()
	a, err := TryNew(t, srv, o)
	if err != nil {
		t.Fatalf("enroll agent: %v", err)
	}
	return a
}

// TryNew is New returning the enrollment error instead of failing.
func TryNew(t testing.TB, srv Server, o Options) (*Agent, error) {
	t.Helper()
	if o.MachineID == "" {
		o.MachineID = fmt.Sprintf("test-machine-%d-%d", time.Now().UnixNano(), next())
	}
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	dir, err := state.Open(o.DataDir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, _, err := runner.Enroll(ctx, dir, runner.EnrollOptions{Server: srv.Addr(), Fingerprint: srv.Fingerprint(),
		Secret: o.Secret, MachineID: o.MachineID, Version: "test", Logger: logging.Discard()}); err != nil {
		return nil, err
	}
	if o.Users == nil {
		o.Users = logins.Fixed(nil)
	}
	ra, err := runner.Open(runner.Config{Dir: dir, Logger: logging.Discard(), Version: "test", SoftwareRoot: o.SoftwareRoot, Users: o.Users})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { ra.Close() })
	return &Agent{Agent: ra, T: t, Dir: dir, MachineID: o.MachineID}, nil
}

// Install installs a plug-in of this build; version empty means the
// build's own.
func (a *Agent) Install(t testing.TB, name, version string) {
	t.Helper()
	reg, ok := plugins.Lookup(name)
	if !ok {
		t.Fatalf("no plug-in %q in this build", name)
	}
	ip := state.InstalledPlugin{Name: name, Version: reg.Info.Version, BuildDate: reg.Info.BuildDate, InstalledAt: time.Now()}
	if version != "" {
		ip.Version = version
	}
	if _, err := runner.Install(a.Dir, ip); err != nil {
		t.Fatal(err)
	}
}

// Cycle runs one cycle as 'tally-agent run --once' does and fails the
// test if the server could not be reached.
func (a *Agent) Cycle(t testing.TB) runner.FlushResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, res, err := a.Once(ctx)
	if err != nil {
		t.Fatalf("cycle: %v", err)
	}
	return res
}

// Status reads the agent's status file.
func (a *Agent) Status(t testing.TB) state.Status {
	t.Helper()
	st, err := a.Dir.LoadStatus()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Post queues a basic inventory post and flushes the spool.
func (a *Agent) Post(ctx context.Context) (runner.FlushResult, error) {
	if _, _, err := a.QueueInventory(ctx); err != nil {
		return runner.FlushResult{}, err
	}
	return a.Flush(ctx)
}

// RawClient returns a client with the agent's key, for hand-made requests.
func (a *Agent) RawClient(t testing.TB) *client.Client {
	return a.RawClientTo(t, a.Enrollment().Server)
}

// RawClientTo is RawClient for a server that moved to addr (a restart on
// port 0), with the same identity.
func (a *Agent) RawClientTo(t testing.TB, addr string) *client.Client {
	key, _, err := a.Dir.Key()
	if err != nil {
		t.Fatal(err)
	}
	e := a.Enrollment()
	c, err := client.New(client.Config{Server: addr, Fingerprint: e.Fingerprint, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// NextSeq allocates a sequence number as the agent would.
func (a *Agent) NextSeq(t testing.TB) uint64 {
	seq, err := a.Dir.AllocateSeq()
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// Envelope encodes a request as an agent would.
func Envelope(t testing.TB, kind protocol.Kind, seq uint64, body any) []byte {
	b, err := protocol.NewRequest(kind, seq, body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
