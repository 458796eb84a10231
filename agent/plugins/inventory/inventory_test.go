package inventory_test

import (
	"context"
	"testing"

	"github.com/tallyhq/tally/agent/plugins/inventory"
	"github.com/tallyhq/tally/agent/plugins/pluginstest"
	"github.com/tallyhq/tally/protocol"
)

func TestContributesTheSoftwareSet(t *testing.T) {
	env := &pluginstest.Env{Pkgs: []protocol.Package{{Name: "a", Version: "1", Source: "dpkg"}}}
	var req protocol.InventoryRequest
	if err := (&inventory.Plugin{}).Contribute(context.Background(), env, &req); err != nil {
		t.Fatal(err)
	}
	if req.Software == nil || !req.Software.Full || len(req.Software.Packages) != 1 {
		t.Fatalf("software %+v", req.Software)
	}
}

// Refused, it reads nothing and sends only the empty probe.
func TestRefusedSendsTheProbeOnly(t *testing.T) {
	env := &pluginstest.Env{St: pluginstest.Refused("inventory"), Pkgs: []protocol.Package{{Name: "a", Version: "1", Source: "dpkg"}}}
	var req protocol.InventoryRequest
	if err := (&inventory.Plugin{}).Contribute(context.Background(), env, &req); err != nil {
		t.Fatal(err)
	}
	if req.Software == nil || req.Software.Full || len(req.Software.Packages) != 0 || env.SoftwareRead != 0 {
		t.Fatalf("software %+v, read %d times", req.Software, env.SoftwareRead)
	}
	if err := req.Software.Validate(); err != nil {
		t.Fatal(err)
	}
}
