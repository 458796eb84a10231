package monitor

import (
	"context"
	"testing"

	"github.com/shirou/gopsutil/v3/cpu"

	"github.com/tallyhq/tally/agent/plugins/pluginstest"
	"github.com/tallyhq/tally/protocol"
)

// The metrics are this machine's, read for real, and pass the server's checks.
func TestPostsRealMetrics(t *testing.T) {
	env := &pluginstest.Env{P: protocol.Plugin{Name: Name, Version: Version, BuildDate: BuildDate}}
	p := &Plugin{}
	if err := p.Run(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	if len(env.Posts) != 1 || env.Posts[0].Kind != protocol.KindPluginData {
		t.Fatalf("posts %+v", env.Posts)
	}
	req := env.Posts[0].Body.(*protocol.PluginDataRequest)
	if err := req.Validate(); err != nil {
		t.Fatal(err)
	}
	m := req.Metrics
	if m.MemTotalBytes == 0 || m.MemUsedBytes == 0 || m.CPUPercent < 0 || m.CPUPercent > 100 {
		t.Fatalf("metrics %+v", m)
	}
	if m.Uptime == 0 || len(m.Disks) == 0 {
		t.Logf("no uptime or disks on this machine: %+v", m)
	}
	// A second cycle measures since the first, without waiting.
	if err := p.Run(context.Background(), env); err != nil || len(env.Posts) != 2 {
		t.Fatalf("second cycle: %v, %d posts", err, len(env.Posts))
	}
}

func TestRefusedPostsNothing(t *testing.T) {
	env := &pluginstest.Env{St: pluginstest.Refused("monitor")}
	if err := (&Plugin{}).Run(context.Background(), env); err != nil || len(env.Posts) != 0 {
		t.Fatalf("%v, posts %+v", err, env.Posts)
	}
}

func TestBusyPercent(t *testing.T) {
	a := cpu.TimesStat{User: 10, System: 10, Idle: 80}
	b := cpu.TimesStat{User: 20, System: 20, Idle: 140} // 20 busy of 80
	if got := busyPercent(a, b); got != 25 {
		t.Fatalf("busy %v, want 25", got)
	}
	if got := busyPercent(b, a); got != 0 {
		t.Fatalf("a clock going back gives %v", got)
	}
}
