package runner

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/tallyhq/tally/agent/plugins"
	_ "github.com/tallyhq/tally/agent/plugins/all" // the plug-ins of this build
	"github.com/tallyhq/tally/agent/software"
	"github.com/tallyhq/tally/agent/spool"
	"github.com/tallyhq/tally/agent/state"
	"github.com/tallyhq/tally/protocol"
)

// pluginTimeout bounds one plug-in's work in one cycle.
const pluginTimeout = 2 * time.Minute

// cycle is what the posts of one collection share: the software set is
// read at most once per cycle, whoever asks first.
type cycle struct {
	online bool

	once sync.Once
	pkgs []protocol.Package
	err  error
}

// software returns the cycle's software set; the problems met reading it
// are returned to the first caller only, so they are reported once.
func (c *cycle) software(ctx context.Context, root string) ([]protocol.Package, []string, error) {
	var problems []string
	c.once.Do(func() {
		var res software.Result
		res, c.err = software.Collect(ctx, root)
		c.pkgs, problems = res.Packages, res.Problems
	})
	// Callers may sort or trim what they get: each gets its own copy.
	return append([]protocol.Package(nil), c.pkgs...), problems, c.err
}

// Installed returns the installed plug-ins as the server sees them (name,
// version, build date), read again from the data folder on every call, so
// that installing or removing takes effect in a running agent.
func (a *Agent) Installed() ([]protocol.Plugin, error) { return PluginsOf(a.dir) }

func wirePlugin(ip state.InstalledPlugin) protocol.Plugin {
	p := protocol.Plugin{Name: ip.Name, Version: ip.Version, BuildDate: ip.BuildDate}
	if reg, ok := plugins.Lookup(ip.Name); ok {
		if p.Version == "" {
			p.Version = reg.Info.Version
		}
		if p.BuildDate == "" {
			p.BuildDate = reg.Info.BuildDate
		}
	}
	return p
}

// instance returns the running instance of an installed plug-in, making
// one the first time (or when its version changed); nil if this build
// does not have it.
func (a *Agent) instance(p protocol.Plugin) plugins.Plugin {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := p.Name + "@" + p.Version + "@" + p.BuildDate
	if inst, ok := a.instances[k]; ok {
		return inst
	}
	reg, ok := plugins.Lookup(p.Name)
	if !ok {
		a.log.Warn("installed plug-in is not part of this build; it is listed but does nothing", "plugin", p.Name)
		return nil
	}
	inst := reg.New()
	a.instances[k] = inst
	return inst
}

// newCycle starts the shared state of a collection.
func (a *Agent) newCycle() *cycle {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cyc = &cycle{}
	return a.cyc
}

// takeCycle returns the cycle QueueInventory started, or a new one.
func (a *Agent) takeCycle() *cycle {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.cyc
	a.cyc = nil
	if c == nil {
		c = &cycle{}
	}
	return c
}

// RunPlugins does the work of every installed plug-in for this cycle,
// after the cycle's inventory post was sent (online) or queued while the
// server could not be reached (then only what can be queued is done). A
// failing plug-in is logged; the others still run.
func (a *Agent) RunPlugins(ctx context.Context, online bool) {
	c := a.takeCycle()
	c.online = online
	installed, err := a.Installed()
	if err != nil {
		a.log.Error("could not read the installed plug-ins", "err", err)
		return
	}
	for _, p := range installed {
		inst := a.instance(p)
		if inst == nil {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, pluginTimeout)
		err := inst.Run(pctx, a.env(p, c))
		cancel()
		if err != nil && ctx.Err() == nil {
			a.log.Warn("plug-in failed this cycle", "plugin", p.Name, "err", err)
		}
	}
	if a.refresh.Swap(false) {
		if err := a.needBasic(); err != nil {
			a.log.Warn("could not mark the basic inventory for sending", "err", err)
		}
	}
}

// needBasic makes the next inventory post carry the whole basic inventory.
func (a *Agent) needBasic() error {
	return a.dir.WithNamedLock(state.SendLockFile, func() error {
		ack, err := a.dir.LoadAck()
		if err != nil {
			return err
		}
		if ack.NeedBasic {
			return nil
		}
		ack.NeedBasic = true
		return a.dir.SaveAck(ack)
	})
}

// TakeCollectNow reports, once, whether a task or an answer asked for a
// new collection at once.
func (a *Agent) TakeCollectNow() bool { return a.collectNow.Swap(false) }

// env is a plug-in's view of the agent.
type env struct {
	a   *Agent
	p   protocol.Plugin
	cyc *cycle
}

func (a *Agent) env(p protocol.Plugin, c *cycle) *env { return &env{a: a, p: p, cyc: c} }

func (e *env) Plugin() protocol.Plugin { return e.p }
func (e *env) Online() bool            { return e.cyc.online }
func (e *env) CollectNow()             { e.a.collectNow.Store(true) }
func (e *env) Logger() *slog.Logger    { return e.a.log.With("plugin", e.p.Name) }

func (e *env) RefreshPlugins() {
	e.a.refresh.Store(true)
	e.a.collectNow.Store(true)
}

func (e *env) Status() plugins.Status {
	st, _ := e.a.dir.LoadStatus()
	ps, ok := st.Plugins[e.p.Name]
	if !ok {
		return plugins.Status{}
	}
	return plugins.Status{Product: ps.Product, Verdict: ps.Verdict, Reason: ps.Reason, At: ps.At}
}

func (e *env) Software(ctx context.Context) ([]protocol.Package, error) {
	pkgs, problems, err := e.cyc.software(ctx, e.a.root)
	for _, p := range problems {
		e.a.log.Warn("software inventory part not collected", "problem", p)
	}
	return pkgs, err
}

// Post queues a plug-in's post. Each kind of post of a plug-in is a
// snapshot: a later one supersedes an earlier one still queued.
func (e *env) Post(kind protocol.Kind, body any) error {
	_, err := e.a.Enqueue(kind, spool.Snapshot, kind.String()+":"+e.p.Name, body)
	return err
}

func (e *env) Call(ctx context.Context, kind protocol.Kind, in, out any) error {
	return e.a.pluginCall(ctx, kind, e.p.Name, in, out)
}

// pluginCall sends an interactive request now (not through the spool: its
// answer is wanted now, and a stale one is worthless) and records the
// verdicts of its answer for plugin.
func (a *Agent) pluginCall(ctx context.Context, kind protocol.Kind, plugin string, in, out any) error {
	seq, err := a.dir.AllocateSeq()
	if err != nil {
		return err
	}
	return a.dir.WithNamedLock(state.SendLockFile, func() error {
		st, save := a.loadStatus()
		defer save()
		st.LastAttempt = a.clock.Now()
		_, err := a.client.Call(ctx, kind, seq, in, out)
		if err = a.refusal(err); err != nil {
			st.LastError = err.Error()
			return fmt.Errorf("%s: %w", kind, err)
		}
		st.LastSuccess, st.LastError = a.clock.Now(), ""
		a.recordVerdicts(st, nil, verdictsOf(out), plugin)
		return nil
	})
}

// verdictsOf returns the Verdicts field of a decoded answer, if it has one.
func verdictsOf(out any) []protocol.ProductVerdict {
	v := reflect.ValueOf(out)
	for v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	f := v.FieldByName("Verdicts")
	if !f.IsValid() {
		return nil
	}
	vs, _ := f.Interface().([]protocol.ProductVerdict)
	return vs
}

// pluginPhase follows the flush of a collection's inventory post (whose
// outcome res, err are): the plug-ins work, knowing the post's verdicts,
// and what they queued is sent at once when the server was reached.
func (a *Agent) pluginPhase(ctx context.Context, res FlushResult, err error) (FlushResult, error) {
	online := err == nil
	a.RunPlugins(ctx, online)
	if !online {
		return res, err
	}
	more, err := a.Flush(ctx)
	res.add(more)
	return res, err
}

// Once makes one cycle, as 'tally-agent run --once' does: queue the
// inventory post, send everything queued, let the plug-ins work and send
// what they queued; then, if a task or an answer asked for it, one more
// inventory post. It returns the inventory post's sequence number.
func (a *Agent) Once(ctx context.Context) (uint64, FlushResult, error) {
	seq, _, err := a.QueueInventory(ctx)
	if err != nil {
		return 0, FlushResult{}, err
	}
	res, err := a.Flush(ctx)
	if ctx.Err() != nil {
		return seq, res, err
	}
	res, err = a.pluginPhase(ctx, res, err)
	if err == nil {
		if _, serr := a.SyncActivations(ctx); serr != nil {
			a.log.Warn("could not check activation records with the server", "err", serr)
		}
	}
	if err != nil || !(a.TakeCollectNow() || res.Repost) {
		return seq, res, err
	}
	if _, _, err := a.QueueInventory(ctx); err != nil {
		return seq, res, err
	}
	a.takeCycle() // this post's plug-ins already worked this cycle
	more, err := a.Flush(ctx)
	res.add(more)
	return seq, res, err
}

// PluginsOf returns the plug-ins installed in dir as the server sees them
// (the build's version and date unless the installation set others).
func PluginsOf(dir state.Dir) ([]protocol.Plugin, error) {
	ips, err := dir.Plugins()
	if err != nil {
		return nil, err
	}
	out := make([]protocol.Plugin, 0, len(ips))
	for _, ip := range ips {
		out = append(out, wirePlugin(ip))
	}
	return out, nil
}

// QueueGoodbye durably queues the goodbye of a removed plug-in: an event
// record, never dropped, so its seat is freed even if the server is
// reached only much later.
func (a *Agent) QueueGoodbye(plugin, reason string) (uint64, error) {
	return a.Enqueue(protocol.KindGoodbye, spool.Event, "goodbye:"+plugin, &protocol.GoodbyeRequest{Plugin: plugin, Reason: reason})
}

// Install records ip as installed in dir, in place of the same plug-in in
// another version, and forgets what the server said of the old one. It
// returns the installation it replaced, if any.
func Install(dir state.Dir, ip state.InstalledPlugin) (*state.InstalledPlugin, error) {
	var prev *state.InstalledPlugin
	err := dir.WithLock(func() error {
		ps, err := dir.Plugins()
		if err != nil {
			return err
		}
		keep := ps[:0]
		for _, p := range ps {
			if p.Name == ip.Name {
				prev = &p
				continue
			}
			keep = append(keep, p)
		}
		return dir.SavePlugins(append(keep, ip))
	})
	if err != nil {
		return nil, err
	}
	return prev, forgetPlugin(dir, ip.Name)
}

// Uninstall removes a plug-in from dir; it reports whether it was
// installed. The server is told by a goodbye (Agent.QueueGoodbye).
func Uninstall(dir state.Dir, name string) (bool, error) {
	found := false
	err := dir.WithLock(func() error {
		ps, err := dir.Plugins()
		if err != nil {
			return err
		}
		keep := ps[:0]
		for _, p := range ps {
			if p.Name == name {
				found = true
				continue
			}
			keep = append(keep, p)
		}
		if !found {
			return nil
		}
		return dir.SavePlugins(keep)
	})
	if err != nil || !found {
		return found, err
	}
	return true, forgetPlugin(dir, name)
}

// forgetPlugin drops what the server last said of a plug-in: installed
// again, or in another version, it starts afresh.
func forgetPlugin(dir state.Dir, name string) error {
	return dir.WithNamedLock(state.SendLockFile, func() error {
		st, err := dir.LoadStatus()
		if err != nil {
			return err
		}
		if _, ok := st.Plugins[name]; !ok {
			return nil
		}
		delete(st.Plugins, name)
		return dir.SaveStatus(st)
	})
}

// RemovePlugin uninstalls a plug-in and tells the server at once with a
// goodbye, queued durably first: if the server cannot be reached, the
// goodbye waits in the spool and the error says why. It returns the
// products whose seats the server freed.
func (a *Agent) RemovePlugin(ctx context.Context, name string) (found bool, freed []string, err error) {
	if found, err = Uninstall(a.dir, name); err != nil || !found {
		return found, nil, err
	}
	if _, err := a.QueueGoodbye(name, "removed with 'tally-agent plugin remove'"); err != nil {
		return true, nil, err
	}
	res, err := a.Flush(ctx)
	return true, res.Freed, err
}
