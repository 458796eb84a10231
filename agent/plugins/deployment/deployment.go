// Package deployment is the deployment plug-in: each cycle it checks in
// with the server, which is what consumes a deployment seat.
package deployment

import (
	"context"

	"github.com/tallyhq/tally/agent/plugins"
	"github.com/tallyhq/tally/protocol"
)

// Name, Version and BuildDate identify this build of the plug-in.
const (
	Name      = "deployment"
	Version   = "7.1.0"
	BuildDate = "2026-11-25"
)

func init() {
	plugins.Register(plugins.Registration{Info: info, New: func() plugins.Plugin { return &Plugin{} }})
}

var info = plugins.Info{
	Name:      Name,
	Version:   Version,
	BuildDate: BuildDate,
	Summary:   "checks in with the server each cycle",
	Stopped:   "check-ins are refused or its tasks withheld (it keeps checking in: that is what takes a freed seat)",
}

// Plugin is the deployment plug-in.
type Plugin struct{}

// Info describes the plug-in.
func (*Plugin) Info() plugins.Info { return info }

// Run queues a check-in. It is sent even while the product is refused:
// the check-in is the post that qualifies for a seat.
func (*Plugin) Run(_ context.Context, env plugins.Env) error {
	return env.Post(protocol.KindCheckIn, &protocol.PluginRequest{Plugin: env.Plugin()})
}
