// Package softwaremanagement is the software-management plug-in: each
// cycle it asks the server for tasks and runs the ones that are agent
// actions (collect now, refresh the plug-ins). It never runs a command it
// is sent: an action it does not know is logged and ignored.
package softwaremanagement

import (
	"context"

	"github.com/tallyhq/tally/agent/plugins"
	"github.com/tallyhq/tally/protocol"
)

// Name, Version and BuildDate identify this build of the plug-in.
const (
	Name      = "software-management"
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
	Summary:   "asks the server for tasks and runs the agent actions among them (collect now, refresh plug-ins)",
	Products:  []string{"software-delivery"},
	Stopped:   "the server withholds its tasks (the task request is still sent: it qualifies for a seat)",
}

// Plugin is the software-management plug-in.
type Plugin struct{}

// Info describes the plug-in.
func (*Plugin) Info() plugins.Info { return info }

// Outcome is what the plug-in did with one task.
type Outcome struct {
	Task   protocol.Task
	Result string
}

// Run asks for tasks and runs them. A task request is sent even while the
// product is refused: it is the qualifying post of software-delivery 6.x,
// and the server withholds the tasks anyway.
func (p *Plugin) Run(ctx context.Context, env plugins.Env) error {
	if !env.Online() {
		return nil
	}
	var resp protocol.TaskResponse
	if err := env.Call(ctx, protocol.KindTaskRequest, &protocol.PluginRequest{Plugin: env.Plugin()}, &resp); err != nil {
		return err
	}
	for _, o := range Execute(env, resp.Tasks) {
		env.Logger().Info("task", "id", o.Task.ID, "action", o.Task.Action, "result", o.Result)
	}
	return nil
}

// Execute runs the agent actions among tasks and says what came of each.
func Execute(env plugins.Env, tasks []protocol.Task) []Outcome {
	out := make([]Outcome, 0, len(tasks))
	for _, t := range tasks {
		o := Outcome{Task: t}
		switch t.Action {
		case protocol.TaskCollectNow:
			env.CollectNow()
			o.Result = "inventory collected and posted"
		case protocol.TaskRefreshPlugins:
			env.RefreshPlugins()
			o.Result = "plug-ins re-read and posted"
		default:
			o.Result = "ignored: not an agent action this agent knows"
		}
		out = append(out, o)
	}
	return out
}
