package softwaremanagement_test

import (
	"context"
	"testing"

	"github.com/tallyhq/tally/agent/plugins/pluginstest"
	"github.com/tallyhq/tally/agent/plugins/softwaremanagement"
	"github.com/tallyhq/tally/protocol"
)

// Only agent actions are run; anything else the server sends is ignored.
func TestRunsOnlyAgentActions(t *testing.T) {
	env := &pluginstest.Env{IsOnline: true, Answer: func(kind protocol.Kind, in, out any) error {
		if kind != protocol.KindTaskRequest {
			t.Errorf("asked %s", kind)
		}
		out.(*protocol.TaskResponse).Tasks = []protocol.Task{
			{ID: "t-1", Action: protocol.TaskCollectNow},
			{ID: "t-2", Action: "rm -rf /"},
			{ID: "t-3", Action: protocol.TaskRefreshPlugins},
		}
		return nil
	}}
	if err := (&softwaremanagement.Plugin{}).Run(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	if env.CollectNows != 1 || env.Refreshes != 1 || len(env.Posts) != 0 {
		t.Fatalf("collect-now %d, refresh %d, posts %d", env.CollectNows, env.Refreshes, len(env.Posts))
	}
	outs := softwaremanagement.Execute(env, []protocol.Task{{ID: "x", Action: "exec:/bin/sh"}})
	if len(outs) != 1 || outs[0].Result == "" || env.CollectNows != 1 {
		t.Fatalf("unknown action: %+v", outs)
	}
}

func TestOfflineAsksNothing(t *testing.T) {
	env := &pluginstest.Env{}
	if err := (&softwaremanagement.Plugin{}).Run(context.Background(), env); err != nil || len(env.Calls) != 0 {
		t.Fatalf("%v, calls %d", err, len(env.Calls))
	}
}
