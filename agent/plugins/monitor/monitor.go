// Package monitor is the monitor plug-in: each cycle it posts the
// machine's metrics (CPU use, load, memory, disk use, network counters,
// uptime), read through gopsutil, as plug-in data.
package monitor

import (
	"context"
	"math"
	"runtime"
	"sort"
	"time"

	"github.com/shirou/gopsutil/v3/cpu"
	"github.com/shirou/gopsutil/v3/host"
	"github.com/shirou/gopsutil/v3/load"
	"github.com/shirou/gopsutil/v3/mem"
	gnet "github.com/shirou/gopsutil/v3/net"

	"github.com/tallyhq/tally/agent/collect"
	"github.com/tallyhq/tally/agent/plugins"
	"github.com/tallyhq/tally/protocol"
)

// Name, Version and BuildDate identify this build of the plug-in.
const (
	Name      = "monitor"
	Version   = "1.4.0"
	BuildDate = "2026-11-25"
)

func init() {
	plugins.Register(plugins.Registration{Info: info, New: func() plugins.Plugin { return &Plugin{} }})
}

var info = plugins.Info{
	Name:      Name,
	Version:   Version,
	BuildDate: BuildDate,
	Summary:   "posts CPU, load, memory, disk, network and uptime metrics each cycle",
	Stopped:   "metrics are not collected",
}

// firstSample is the window of the first CPU measurement; later ones
// cover the time since the previous cycle.
const firstSample = 250 * time.Millisecond

// Plugin is the monitor plug-in.
type Plugin struct {
	last *cpu.TimesStat // CPU times at the previous cycle
}

// Info describes the plug-in.
func (*Plugin) Info() plugins.Info { return info }

// Run collects and queues the metrics, unless the product is refused.
func (p *Plugin) Run(ctx context.Context, env plugins.Env) error {
	if env.Status().Stopped() {
		return nil
	}
	m, err := p.Collect(ctx)
	if err != nil {
		return err
	}
	return env.Post(protocol.KindPluginData, &protocol.PluginDataRequest{Plugin: env.Plugin(), Metrics: m})
}

// Collect reads the metrics. A part that cannot be read is left empty.
func (p *Plugin) Collect(ctx context.Context) (*protocol.Metrics, error) {
	m := &protocol.Metrics{}
	pct, err := p.cpuPercent(ctx)
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	m.CPUPercent = finite(pct)
	if runtime.GOOS != "windows" { // Windows has no load average; gopsutil's imitation needs a sampling goroutine
		if l, err := load.AvgWithContext(ctx); err == nil {
			m.Load1 = finite(l.Load1)
		}
	}
	if vm, err := mem.VirtualMemoryWithContext(ctx); err == nil {
		m.MemUsedBytes, m.MemTotalBytes = vm.Used, vm.Total
	}
	if ds, err := collect.Disks(ctx); err == nil {
		for _, d := range ds {
			if d.TotalBytes == 0 {
				continue
			}
			used := d.TotalBytes - min(d.FreeBytes, d.TotalBytes)
			m.Disks = append(m.Disks, protocol.DiskUsage{Mountpoint: d.Mountpoint, UsedBytes: used, TotalBytes: d.TotalBytes,
				UsedPct: finite(math.Round(float64(used)/float64(d.TotalBytes)*10000) / 100)})
		}
	}
	if ns, err := gnet.IOCountersWithContext(ctx, true); err == nil {
		for _, n := range ns {
			if n.Name == "lo" || n.Name == "lo0" {
				continue
			}
			m.Net = append(m.Net, protocol.NetCounter{Name: n.Name, BytesSent: n.BytesSent, BytesRecv: n.BytesRecv})
		}
		sort.Slice(m.Net, func(i, j int) bool { return m.Net[i].Name < m.Net[j].Name })
		if len(m.Net) > 256 {
			m.Net = m.Net[:256]
		}
	}
	if up, err := host.UptimeWithContext(ctx); err == nil {
		m.Uptime = up
	}
	return m, nil
}

// cpuPercent is the machine's CPU use since the previous cycle, or over a
// short window the first time.
func (p *Plugin) cpuPercent(ctx context.Context) (float64, error) {
	now, err := totalTimes(ctx)
	if err != nil {
		return 0, err
	}
	prev := p.last
	if prev == nil {
		t := time.NewTimer(firstSample)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-t.C:
		}
		prev = now
		if now, err = totalTimes(ctx); err != nil {
			return 0, err
		}
	}
	p.last = now
	return busyPercent(*prev, *now), nil
}

func totalTimes(ctx context.Context) (*cpu.TimesStat, error) {
	ts, err := cpu.TimesWithContext(ctx, false)
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, errNoCPU
	}
	return &ts[0], nil
}

type cpuError string

func (e cpuError) Error() string { return string(e) }

const errNoCPU = cpuError("no CPU times")

// busyPercent is the share of time not idle between two readings.
func busyPercent(a, b cpu.TimesStat) float64 {
	total := func(t cpu.TimesStat) float64 {
		return t.User + t.System + t.Idle + t.Nice + t.Iowait + t.Irq + t.Softirq + t.Steal
	}
	idle := func(t cpu.TimesStat) float64 { return t.Idle + t.Iowait }
	dt := total(b) - total(a)
	if dt <= 0 {
		return 0
	}
	busy := dt - (idle(b) - idle(a))
	return math.Round(min(max(busy/dt*100, 0), 100)*100) / 100
}

// finite replaces a value the wire refuses (NaN, ±Inf) by 0.
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}
