package deployment_test

import (
	"context"
	"testing"

	"github.com/tallyhq/tally/agent/plugins/deployment"
	"github.com/tallyhq/tally/agent/plugins/pluginstest"
	"github.com/tallyhq/tally/protocol"
)

// It checks in, refused or not: the check-in is what takes a freed seat.
func TestChecksInEvenWhenRefused(t *testing.T) {
	for _, env := range []*pluginstest.Env{{}, {St: pluginstest.Refused("deployment")}} {
		env.P = protocol.Plugin{Name: deployment.Name, Version: deployment.Version}
		if err := (&deployment.Plugin{}).Run(context.Background(), env); err != nil {
			t.Fatal(err)
		}
		if len(env.Posts) != 1 || env.Posts[0].Kind != protocol.KindCheckIn {
			t.Fatalf("posts %+v", env.Posts)
		}
		if p := env.Posts[0].Body.(*protocol.PluginRequest).Plugin; p.Name != deployment.Name {
			t.Fatalf("checked in as %+v", p)
		}
	}
}
