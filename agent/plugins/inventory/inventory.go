// Package inventory is the inventory plug-in: it adds the software
// installed on the machine to the agent's inventory posts. The runner
// sends the set whole the first time and as a delta against the set the
// server acknowledged afterwards.
package inventory

import (
	"context"

	"github.com/tallyhq/tally/agent/plugins"
	"github.com/tallyhq/tally/protocol"
)

// Name, Version and BuildDate identify this build of the plug-in.
const (
	Name      = "inventory"
	Version   = "7.2.0"
	BuildDate = "2026-11-25"
)

func init() {
	plugins.Register(plugins.Registration{Info: info, New: func() plugins.Plugin { return &Plugin{} }})
}

var info = plugins.Info{
	Name:      Name,
	Version:   Version,
	BuildDate: BuildDate,
	Summary:   "adds the installed software to inventory posts (sent as deltas once the server holds a copy)",
	Stopped:   "software inventory is not sent (each post carries an empty delta, so a freed seat is picked up)",
}

// Plugin is the inventory plug-in.
type Plugin struct{}

// Info describes the plug-in.
func (*Plugin) Info() plugins.Info { return info }

// Contribute adds the software inventory to the post: the whole set, or,
// while the product is refused, an empty probe (Full false, nothing in
// it). The runner turns the probe into an empty delta against the
// acknowledged set when it sends the post. A probe costs a few dozen
// bytes, stores nothing, and still qualifies the node for a seat of the
// generations consumed by a software inventory post (inventory-6), so a
// freed seat is taken on the next post.
func (p *Plugin) Contribute(ctx context.Context, env plugins.Env, req *protocol.InventoryRequest) error {
	if env.Status().Stopped() {
		req.Software = &protocol.SoftwareInventory{}
		return nil
	}
	pkgs, err := env.Software(ctx)
	if err != nil {
		return err
	}
	req.Software = &protocol.SoftwareInventory{Full: true, Packages: pkgs}
	return nil
}

// Run does nothing: the plug-in's work is its part of the inventory post.
func (*Plugin) Run(context.Context, plugins.Env) error { return nil }
