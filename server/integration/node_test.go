package integration

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/agent/client"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/servertest"
)

// node is an enrolled agent that sends hand-made requests over real QUIC,
// to drive the license engine for plug-ins the agent does not ship yet.
type node struct {
	*agenttest.Agent
	raw *client.Client
	t   testing.TB
	id  int64
}

func newNode(t testing.TB, srv agenttest.Server, secret string) *node {
	t.Helper()
	a := agenttest.New(t, srv, agenttest.Options{Secret: secret})
	return &node{Agent: a, raw: a.RawClient(t), t: t, id: a.Enrollment().ComputerID}
}

// newNodes enrolls n nodes concurrently.
func newNodes(t testing.TB, srv *servertest.Server, n int) []*node {
	t.Helper()
	out := make([]*node, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := range out {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			a, err := agenttest.TryNew(t, srv, agenttest.Options{Secret: srv.Secret, MachineID: fmt.Sprintf("node-%d-%d", time.Now().UnixNano(), i)})
			if err != nil {
				errs <- err
				return
			}
			out[i] = &node{Agent: a, raw: a.RawClient(t), t: t, id: a.Enrollment().ComputerID}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("enroll: %v", err)
	}
	return out
}

func plug(name, version string) protocol.Plugin {
	return protocol.Plugin{Name: name, Version: version, BuildDate: "2026-01-15"}
}

// A request that did not reach the server, or whose answer was lost, is
// sent again with the same sequence number, as the agent's spool does: on
// a loaded machine two hundred handshakes at once can outlast one dial's
// timeout, and what these tests check is the answer, not that first dial.
func (n *node) call(kind protocol.Kind, body, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	seq := n.NextSeq(n.t)
	for {
		_, err := n.raw.Call(ctx, kind, seq, body, out)
		var te *client.TransportError
		if err == nil || !errors.As(err, &te) || ctx.Err() != nil {
			return err
		}
	}
}

// post sends an inventory post listing plugins, with software when given.
func (n *node) post(plugins []protocol.Plugin, software []protocol.Package) protocol.InventoryResponse {
	n.t.Helper()
	resp, err := n.tryPost(plugins, software)
	if err != nil {
		n.t.Fatalf("post: %v", err)
	}
	return resp
}

func (n *node) tryPost(plugins []protocol.Plugin, software []protocol.Package) (protocol.InventoryResponse, error) {
	basic, _ := n.CollectBasic(context.Background())
	basic.Plugins = plugins
	req := protocol.InventoryRequest{Basic: basic}
	if software != nil {
		req.Software = &protocol.SoftwareInventory{Full: true, Packages: software, Count: uint32(len(software)), Hash: protocol.HashPackages(software).String()}
	}
	var resp protocol.InventoryResponse
	err := n.call(protocol.KindInventory, &req, &resp)
	return resp, err
}

func verdictOf(vs []protocol.ProductVerdict, product string) protocol.Verdict {
	for _, v := range vs {
		if v.Product == product {
			return v.Verdict
		}
	}
	return protocol.VerdictNotApplicable
}

func samplePackages(n int) []protocol.Package {
	out := make([]protocol.Package, n)
	for i := range out {
		out[i] = protocol.Package{Name: fmt.Sprintf("pkg-%04d", i), Version: "1.0." + fmt.Sprint(i%7), Arch: "amd64", Source: "dpkg"}
	}
	return out
}
