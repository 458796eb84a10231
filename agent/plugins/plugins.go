// Package plugins is the agent's plug-in registry and the interface
// plug-ins are written against. Each plug-in lives in its own folder
// (code, test, README), registers itself in init with Register, and works
// only through an Env the runner gives it: it never touches the spool, the
// client or the data folder itself. Register refuses an empty or duplicate
// name, as Caddy's RegisterModule does, rather than letting the last one win.
package plugins

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tallyhq/tally/protocol"
)

// Info describes a plug-in.
type Info struct {
	// Name is the plug-in's name on the wire and in the catalog.
	Name string
	// Version and BuildDate (YYYY-MM-DD) are compiled in; an installation
	// may report another version (state.InstalledPlugin).
	Version   string
	BuildDate string
	// Summary says in a line what the plug-in does.
	Summary string
	// Products are the stems of the product names the server licenses
	// the plug-in as, besides its own name ("software-delivery" for
	// software-management): product "software-delivery-6" belongs to it.
	Products []string
	// Stopped says what the plug-in does not do while its product is
	// refused, for 'tally-agent status' ("metrics are not collected").
	Stopped string
}

// Plugin is one plug-in. A runner keeps one instance per installed plug-in
// for as long as it runs, so a plug-in may remember things between cycles.
type Plugin interface {
	Info() Info
	// Run does the plug-in's work of one cycle, after the cycle's
	// inventory post has been answered (or queued, when the server could
	// not be reached: see Env.Online).
	Run(ctx context.Context, env Env) error
}

// Contributor is a plug-in that adds to the cycle's inventory post.
type Contributor interface {
	Plugin
	// Contribute fills its part of req before the post is queued.
	Contribute(ctx context.Context, env Env, req *protocol.InventoryRequest) error
}

// Status is the last verdict that decides what a plug-in may do.
type Status struct {
	Product string
	Verdict protocol.Verdict
	Reason  string
	At      time.Time
}

// Known reports whether the server has answered for the plug-in yet.
func (s Status) Known() bool { return s.Product != "" }

// Stopped reports whether the plug-in's product was refused: it then
// posts no data that would be discarded, only what qualifies it for a
// seat, so that a freed seat is picked up. A verdict is a final answer,
// never retried.
func (s Status) Stopped() bool { return s.Verdict.Discarded() }

// Env is what a plug-in may do. The runner provides it.
type Env interface {
	// Plugin is this plug-in as installed, as the server sees it.
	Plugin() protocol.Plugin
	// Status is the last verdict for the plug-in's product.
	Status() Status
	// Online reports whether the server answered this cycle's posts:
	// interactive requests (Call) are made only when it did.
	Online() bool
	// Software is the software installed on the inventoried system,
	// collected at most once per cycle.
	Software(ctx context.Context) ([]protocol.Package, error)
	// Post queues a request durably (through the spool); it is sent in
	// order with the agent's other posts, and its verdicts recorded.
	Post(kind protocol.Kind, body any) error
	// Call sends an interactive request now and decodes the answer into
	// out; the answer's verdicts are recorded before Call returns.
	Call(ctx context.Context, kind protocol.Kind, in, out any) error
	// CollectNow asks for a new inventory collection and post at once.
	CollectNow()
	// RefreshPlugins asks for a new post carrying the whole basic
	// inventory with the installed plug-ins re-read.
	RefreshPlugins()
	// Logger logs for the plug-in.
	Logger() *slog.Logger
}

// Registration is a plug-in as the registry knows it.
type Registration struct {
	Info Info
	New  func() Plugin
}

// Registry holds plug-ins by name.
type Registry struct {
	mu sync.RWMutex
	m  map[string]Registration
}

// Errors of Add.
var (
	ErrEmptyName = errors.New("plug-in name is empty")
	ErrDuplicate = errors.New("plug-in already registered")
)

// Add registers a plug-in. It refuses an empty, malformed or duplicate
// name, a missing constructor, and an Info that disagrees with what the
// constructor's plug-in says of itself.
func (r *Registry) Add(reg Registration) error {
	name := reg.Info.Name
	switch {
	case name == "":
		return ErrEmptyName
	case !protocol.ValidName(name):
		return fmt.Errorf("plug-in name %q: lower-case letters, digits and dashes only", name)
	case reg.New == nil:
		return fmt.Errorf("plug-in %s: no constructor", name)
	case reg.Info.Version == "":
		return fmt.Errorf("plug-in %s: no version", name)
	case !protocol.ValidDate(reg.Info.BuildDate):
		return fmt.Errorf("plug-in %s: build date %q is not YYYY-MM-DD", name, reg.Info.BuildDate)
	}
	if got := reg.New().Info().Name; got != name {
		return fmt.Errorf("plug-in %s: its constructor makes plug-in %q", name, got)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]Registration{}
	}
	if _, dup := r.m[name]; dup {
		return fmt.Errorf("%w: %s", ErrDuplicate, name)
	}
	r.m[name] = reg
	return nil
}

// Lookup returns the named plug-in's registration.
func (r *Registry) Lookup(name string) (Registration, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	reg, ok := r.m[name]
	return reg, ok
}

// List returns every registration, sorted by name.
func (r *Registry) List() []Registration {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Registration, 0, len(r.m))
	for _, reg := range r.m {
		out = append(out, reg)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Info.Name < out[j].Info.Name })
	return out
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string {
	var out []string
	for _, reg := range r.List() {
		out = append(out, reg.Info.Name)
	}
	return out
}

// Default is the registry the plug-ins of this build register in.
var Default = &Registry{}

// Register adds a plug-in to Default, panicking on a mistake: it runs in
// init, where a duplicate name is a programming error to find at once.
func Register(reg Registration) {
	if err := Default.Add(reg); err != nil {
		panic("plugins.Register: " + err.Error())
	}
}

// Lookup looks a plug-in up in Default.
func Lookup(name string) (Registration, bool) { return Default.Lookup(name) }

// Owner returns which of the installed plug-ins a product belongs to:
// learned (product → plug-in, from the answers to the plug-ins' own
// requests) when it knows, else the plug-in whose name, or one of whose
// Products stems, is the product's name or its prefix before a dash
// ("inventory-6" is the inventory plug-in's). Empty when none.
func (r *Registry) Owner(product string, installed []string, learned map[string]string) string {
	if p, ok := learned[product]; ok {
		return p
	}
	best, bestLen := "", 0
	for _, name := range installed {
		stems := []string{name}
		if reg, ok := r.Lookup(name); ok {
			stems = append(stems, reg.Info.Products...)
		}
		for _, s := range stems {
			if (product == s || strings.HasPrefix(product, s+"-")) && len(s) > bestLen {
				best, bestLen = name, len(s)
			}
		}
	}
	return best
}
