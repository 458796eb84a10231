// Package engine is the license engine: pure domain logic that takes the
// facts (a computer, its seats and plug-ins, the licenses of the products
// concerned), an event (a post, a status change, a deletion, a goodbye, a
// license change) and the time, and returns the decision: a verdict per
// product and the effects to apply (consume, free or move a seat, count a
// discard). It does no I/O and keeps no clock: the store calls it inside the
// transaction that applies its effects, so the decision, the data and the
// audit record commit together or not at all.
//
// A test checks that this package imports no database, network or file
// system package.
package engine

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/dates"
)

// License is what the engine knows of one license.
type License struct {
	ID      string
	Product string
	Seats   int
	// Expires is when a time-limited or subscription license stops
	// granting; zero for perpetual.
	Expires time.Time
	// UpgradeUntil is the end of upgrade protection: plug-in builds
	// released after it are not covered. Zero: no limit.
	UpgradeUntil time.Time
	// Held is the number of seats attributed to the license now.
	Held int
	// Allocated is the number of computers allocated to the license;
	// AllocatedHeld how many of them hold their seat on it.
	Allocated     int
	AllocatedHeld int
}

// Valid reports whether the license grants seats at now.
func (l *License) Valid(now time.Time) bool {
	return l.Expires.IsZero() || now.Before(l.Expires)
}

// Covers reports whether a plug-in built on build is within the license's
// upgrade protection. An unknown build date is covered.
func (l *License) Covers(build time.Time) bool {
	return l.UpgradeUntil.IsZero() || build.IsZero() || !build.After(l.UpgradeUntil)
}

// Reserved is the number of allocated seats not yet consumed: nobody else
// may take them.
func (l *License) Reserved() int { return l.Allocated - l.AllocatedHeld }

// FreeForOthers is the number of seats a computer without an allocation on
// the license may take.
func (l *License) FreeForOthers() int { return l.Seats - l.Held - l.Reserved() }

// Pool holds the licenses of the products a decision concerns, by product.
type Pool map[string][]*License

// License finds a license by ID.
func (p Pool) License(id string) *License {
	for _, ls := range p {
		for _, l := range ls {
			if l.ID == id {
				return l
			}
		}
	}
	return nil
}

// Computer is what the engine knows of one computer.
type Computer struct {
	ID     int64
	Status string
	// Seats maps a product to the license its seat is attributed to.
	Seats map[string]string
	// Plugins are the plug-ins of its latest basic inventory.
	Plugins []protocol.Plugin
	// Allocations maps a product to the license allocated to the computer.
	Allocations map[string]string
}

// Active reports whether the computer's status lets it consume.
func (c *Computer) Active() bool { return c.Status == catalog.StatusActive }

// PostKind says what kind of request a post is.
type PostKind int

// Post kinds.
const (
	PostInventory PostKind = iota + 1
	PostPluginData
	PostTaskRequest
	PostPackageRequest
	PostCheckIn
	PostCatalogRequest
)

// Post is a node's request, as far as licensing is concerned.
type Post struct {
	Kind PostKind
	// Plugins is the plug-in list of an inventory post: it replaces the
	// computer's.
	Plugins []protocol.Plugin
	// HasSoftware is true when an inventory post carries software inventory.
	HasSoftware bool
	// Plugin is the plug-in making a plug-in request (data, tasks,
	// packages, check-in, catalog).
	Plugin protocol.Plugin
}

// EffectKind is what to do to a seat.
type EffectKind int

// Effects.
const (
	Consume EffectKind = iota + 1 // take a seat of License
	Free                          // give back the seat held on From
	Move                          // re-attribute the seat from From to License
	Discard                       // count discarded product data (no seat change)
)

func (k EffectKind) String() string {
	switch k {
	case Consume:
		return "consume"
	case Free:
		return "free"
	case Move:
		return "move"
	case Discard:
		return "discard"
	}
	return fmt.Sprintf("effect(%d)", int(k))
}

// Effect is one change the store must apply.
type Effect struct {
	Kind       EffectKind
	ComputerID int64
	Product    string
	License    string // Consume, Move: the license that now carries the seat
	From       string // Free, Move: the license that carried it
	Verdict    protocol.Verdict
	Reason     string // a sentence for the audit log
}

// Decision is the engine's answer.
type Decision struct {
	Verdicts []protocol.ProductVerdict
	Effects  []Effect
	// Served lists the products whose request (catalog, tasks, packages,
	// check-in) is answered in full: the node holds their seat, or holds
	// none while one is free for it, so no over-the-count behaviour applies.
	Served []string
}

// Serves reports whether the request is answered in full for some product.
func (d Decision) Serves() bool { return len(d.Served) > 0 }

// Verdict returns the verdict for a product, or not-applicable.
func (d Decision) Verdict(product string) protocol.Verdict {
	for _, v := range d.Verdicts {
		if v.Product == product {
			return v.Verdict
		}
	}
	return protocol.VerdictNotApplicable
}

// Freed returns the products whose seats the decision frees.
func (d Decision) Freed() []string {
	var out []string
	for _, e := range d.Effects {
		if e.Kind == Free {
			out = append(out, e.Product)
		}
	}
	return out
}

// Engine decides with a catalog, in a time zone: the server's, where
// admins read the dates of its sentences and plug-in build days fall.
type Engine struct {
	cat  *catalog.Catalog
	zone *time.Location
}

// New returns an engine over the catalog, in UTC until InZone says
// otherwise.
func New(cat *catalog.Catalog) *Engine { return &Engine{cat: cat, zone: time.UTC} }

// InZone returns a copy of the engine that works in loc, the server's time
// zone (nil: UTC).
func (e *Engine) InZone(loc *time.Location) *Engine {
	if loc == nil {
		loc = time.UTC
	}
	cp := *e
	cp.zone = loc
	return &cp
}

// Zone is the time zone the engine writes dates in, for the store's own
// sentences to agree with the engine's.
func (e *Engine) Zone() *time.Location { return e.zone }

// Catalog returns the engine's catalog.
func (e *Engine) Catalog() *catalog.Catalog { return e.cat }

// buildDate parses a plug-in's build date as the start of that day in the
// engine's zone, so that a build of 2027-07-01 is past upgrade protection
// "until 2027-06-30" wherever the server is; zero when absent or malformed.
func (e *Engine) buildDate(p protocol.Plugin) time.Time {
	if p.BuildDate == "" {
		return time.Time{} // most plug-ins: no parse error to allocate
	}
	t, err := time.ParseInLocation("2006-01-02", p.BuildDate, e.zone)
	if err != nil {
		return time.Time{}
	}
	return t
}

// pluginFor returns the plug-in in list that belongs to product p.
func pluginFor(p *catalog.Product, list []protocol.Plugin) (protocol.Plugin, bool) {
	for _, pl := range list {
		if p.Matches(pl.Name, pl.Version) {
			return pl, true
		}
	}
	return protocol.Plugin{}, false
}

// touched lists the products a post concerns and the triggers it carries
// for each, with the plug-in build that matters for upgrade protection.
type touch struct {
	product  *catalog.Product
	triggers []catalog.Trigger
	plugin   protocol.Plugin
	request  bool // the post asks something of the product (tasks, catalog, check-in) or carries its data
}

// The trigger lists a post can carry, shared by every decision (read only).
var (
	presenceTriggers         = []catalog.Trigger{catalog.TriggerPluginPresence}
	presenceSoftwareTriggers = []catalog.Trigger{catalog.TriggerPluginPresence, catalog.TriggerSoftwareInventory}
	requestTriggers          = map[PostKind][]catalog.Trigger{
		PostPluginData:     {catalog.TriggerPluginData},
		PostTaskRequest:    {catalog.TriggerTaskRequest},
		PostPackageRequest: {catalog.TriggerPackageRequest},
		PostCheckIn:        {catalog.TriggerCheckIn},
	}
)

func (e *Engine) touched(post Post) []touch {
	var out []touch
	switch post.Kind {
	case PostInventory:
		// Sized for one product a plug-in: most have one, and the list is
		// built twice a post.
		out = make([]touch, 0, len(post.Plugins))
		for _, pl := range post.Plugins {
			for _, p := range e.cat.ForPlugin(pl.Name, pl.Version) {
				t := touch{product: p, plugin: pl, triggers: presenceTriggers}
				if post.HasSoftware && p.Plugin == catalog.SoftwarePlugin {
					t.triggers = presenceSoftwareTriggers
					t.request = true
				}
				out = append(out, t)
			}
		}
	default:
		trig := requestTriggers[post.Kind]
		for _, p := range e.cat.ForPlugin(post.Plugin.Name, post.Plugin.Version) {
			out = append(out, touch{product: p, plugin: post.Plugin, request: true, triggers: trig})
		}
	}
	slices.SortFunc(out, func(a, b touch) int { return strings.Compare(a.product.Name, b.product.Name) })
	return out
}

// DecidePost decides a node's post: which products it may use, which seats
// it consumes (first come, first served, attributed soonest-expiring
// first), which it frees (a plug-in no longer listed, a license expired or
// past its upgrade protection), and what of its product data is discarded.
//
// pool must hold the licenses of every product the post touches and every
// product the computer holds a seat of. The decision does not mutate its
// inputs; the store applies Effects.
func (e *Engine) DecidePost(c Computer, pool Pool, post Post, now time.Time) Decision {
	var d Decision
	st := newState(c, pool)

	plugins := c.Plugins
	if post.Kind == PostInventory {
		plugins = post.Plugins
		// Plug-ins no longer listed free their products' seats where the
		// rule says so (DESIGN §4: "an inventory that no longer lists it").
		for _, product := range sortedKeys(st.seats) {
			p, ok := e.cat.Product(product)
			if !ok || !p.PluginRemovalFrees {
				continue
			}
			if _, still := pluginFor(p, plugins); !still {
				st.free(&d, c.ID, product, protocol.VerdictNotApplicable,
					fmt.Sprintf("plug-in %s is no longer in the computer's basic inventory", p.Plugin))
			}
		}
	}

	for _, t := range e.touched(post) {
		p := t.product
		if p.RequiresPlugin {
			if _, ok := pluginFor(p, plugins); !ok {
				d.Verdicts = append(d.Verdicts, protocol.ProductVerdict{Product: p.Name, Verdict: protocol.VerdictNotApplicable,
					Reason: "plug-in " + p.Plugin + " is not installed"})
				continue
			}
		}
		qualifying := false
		for _, tr := range t.triggers {
			if p.Qualifies(tr) {
				qualifying = true
			}
		}
		if _, listed := pluginFor(p, plugins); p.PluginRemovalFrees && !listed {
			// A seat that the plug-in's removal would free at once is not
			// taken for a node whose basic inventory does not list it.
			qualifying = false
		}
		build := e.buildDate(t.plugin)
		v := e.decideProduct(&d, st, c, p, post.Kind, qualifying, t.request, build, now)
		d.Verdicts = append(d.Verdicts, v)
	}
	return d
}

// decideProduct decides one product of a post and returns its verdict.
func (e *Engine) decideProduct(d *Decision, st *state, c Computer, p *catalog.Product, kind PostKind, qualifying, request bool, build, now time.Time) protocol.ProductVerdict {
	v := protocol.ProductVerdict{Product: p.Name}
	if !c.Active() {
		v.Verdict = protocol.VerdictDiscardedRetired
		v.Reason = fmt.Sprintf("computer status is %s: it consumes no license until an administrator sets it Active", c.Status)
		if request || qualifying {
			d.Effects = append(d.Effects, Effect{Kind: Discard, ComputerID: c.ID, Product: p.Name, Verdict: v.Verdict, Reason: v.Reason})
		}
		return v
	}
	if lic, held := st.seats[p.Name]; held {
		l := st.pool.License(lic)
		switch {
		case l != nil && l.Valid(now) && l.Covers(build):
			v.Verdict = protocol.VerdictLicensed
			d.Served = append(d.Served, p.Name)
			return v
		case l == nil || !l.Valid(now):
			why := fmt.Sprintf("license %s expired", lic)
			if l == nil {
				why = fmt.Sprintf("license %s was removed", lic)
			}
			if to := st.pick(c, p.Name, build, now); to != nil {
				st.move(d, c.ID, p.Name, lic, to.ID, why+fmt.Sprintf("; seat moved to license %s", to.ID))
				v.Verdict = protocol.VerdictLicensed
				d.Served = append(d.Served, p.Name)
				return v
			}
			st.free(d, c.ID, p.Name, protocol.VerdictDiscardedExpired, why+"; no other license of "+p.Name+" has room: the seat is lost")
			v.Verdict, v.Reason = protocol.VerdictDiscardedExpired, why
		default: // held on a license whose upgrade protection ended before this build
			why := fmt.Sprintf("plug-in build %s is newer than the upgrade protection of license %s (until %s)",
				build.Format("2006-01-02"), lic, dates.Text(l.UpgradeUntil, e.zone))
			if to := st.pick(c, p.Name, build, now); to != nil {
				st.move(d, c.ID, p.Name, lic, to.ID, why+fmt.Sprintf("; seat moved to license %s", to.ID))
				v.Verdict = protocol.VerdictLicensed
				d.Served = append(d.Served, p.Name)
				return v
			}
			st.free(d, c.ID, p.Name, protocol.VerdictDiscardedUpgradeProtection, why+"; no license covers it: the seat is freed")
			v.Verdict, v.Reason = protocol.VerdictDiscardedUpgradeProtection, why
		}
		d.Effects = append(d.Effects, Effect{Kind: Discard, ComputerID: c.ID, Product: p.Name, Verdict: v.Verdict, Reason: v.Reason})
		return v
	}
	if qualifying {
		if to := st.pick(c, p.Name, build, now); to != nil {
			reason := fmt.Sprintf("first qualifying post (%s)", kindText(kind))
			if c.Allocations[p.Name] == to.ID {
				reason += fmt.Sprintf("; seat allocated to this computer on license %s", to.ID)
			}
			st.consume(d, c.ID, p.Name, to.ID, reason)
			v.Verdict = protocol.VerdictLicensed
			d.Served = append(d.Served, p.Name)
			return v
		}
	} else if !request {
		v.Verdict = protocol.VerdictNotApplicable
		v.Reason = "no qualifying post for " + p.Name + " yet"
		return v
	} else if st.pick(c, p.Name, build, now) != nil {
		// Over-the-count behaviours are for nodes beyond the count (seed
		// 001): a node that holds no seat while one is free for it gets
		// its request answered, so that its first qualifying post takes
		// the seat whatever order its plug-in's requests come in.
		v.Verdict = protocol.VerdictNotApplicable
		v.Reason = fmt.Sprintf("no seat of %s yet: one is free, and the computer's first %s takes it", p.Name, qualifyingText(p))
		if kind == PostPluginData || kind == PostInventory {
			// Product data is kept only for seat holders: counted, not refused.
			d.Effects = append(d.Effects, Effect{Kind: Discard, ComputerID: c.ID, Product: p.Name, Verdict: v.Verdict, Reason: v.Reason})
		} else {
			d.Served = append(d.Served, p.Name)
		}
		return v
	}
	v.Verdict, v.Reason = st.refusal(p, kind, build, now)
	d.Effects = append(d.Effects, Effect{Kind: Discard, ComputerID: c.ID, Product: p.Name, Verdict: v.Verdict, Reason: v.Reason})
	return v
}

func kindText(k PostKind) string {
	switch k {
	case PostInventory:
		return "basic or software inventory"
	case PostPluginData:
		return "plug-in data"
	case PostTaskRequest:
		return "task request"
	case PostPackageRequest:
		return "package request"
	case PostCheckIn:
		return "check-in"
	case PostCatalogRequest:
		return "catalog request"
	}
	return "post"
}

// qualifyingText names a product's qualifying posts for people.
func qualifyingText(p *catalog.Product) string {
	parts := make([]string, len(p.Qualifying))
	for i, q := range p.Qualifying {
		switch q {
		case catalog.TriggerSoftwareInventory:
			parts[i] = "software inventory"
		case catalog.TriggerPluginPresence:
			parts[i] = "basic inventory listing plug-in " + p.Plugin
		case catalog.TriggerPluginData:
			parts[i] = "plug-in data"
		default:
			parts[i] = strings.ReplaceAll(string(q), "-", " ")
		}
	}
	return strings.Join(parts, " or ")
}

// StatusChange decides what setting a computer's status frees: exactly the
// seats whose product rule names the new status.
func (e *Engine) StatusChange(c Computer, status string) Decision {
	var d Decision
	if status == catalog.StatusActive {
		return d
	}
	for _, product := range sortedKeys(c.Seats) {
		p, ok := e.cat.Product(product)
		if ok && p.FreedByStatus(status) || !ok {
			why := fmt.Sprintf("status set to %s, which frees %s", status, product)
			if !ok {
				why = fmt.Sprintf("status set to %s; product %s is no longer in the catalog", status, product)
			}
			d.Effects = append(d.Effects, Effect{Kind: Free, ComputerID: c.ID, Product: product, From: c.Seats[product], Reason: why})
		}
	}
	return d
}

// Delete frees every seat of a deleted computer, whatever the products'
// status rules say.
func (e *Engine) Delete(c Computer) Decision {
	return freeAll(c, "computer deleted")
}

// Goodbye decides an agent's goodbye: plugin "" means the agent was
// uninstalled, which frees every seat; otherwise one plug-in was removed,
// which frees its products' seats where their rule says so.
func (e *Engine) Goodbye(c Computer, plugin string) Decision {
	if plugin == "" {
		return freeAll(c, "agent uninstalled")
	}
	var d Decision
	for _, product := range sortedKeys(c.Seats) {
		p, ok := e.cat.Product(product)
		if ok && p.Plugin == plugin && p.PluginRemovalFrees {
			d.Effects = append(d.Effects, Effect{Kind: Free, ComputerID: c.ID, Product: product, From: c.Seats[product],
				Reason: "plug-in " + plugin + " uninstalled"})
		}
	}
	return d
}

func freeAll(c Computer, why string) Decision {
	var d Decision
	for _, product := range sortedKeys(c.Seats) {
		d.Effects = append(d.Effects, Effect{Kind: Free, ComputerID: c.ID, Product: product, From: c.Seats[product], Reason: why})
	}
	return d
}

// Holder is a computer holding a seat on a license being re-examined.
type Holder struct {
	Computer Computer
	Product  string
	License  string
}

// Rebalance re-examines the seats held on licenses that no longer grant
// (expired at now, or removed: absent from pool): each moves to another
// license of its product with room that covers its plug-in, allocated
// computers first, else it is freed. Also run after a license import, it
// changes nothing for seats on valid licenses.
func (e *Engine) Rebalance(holders []Holder, pool Pool, now time.Time) Decision {
	var d Decision
	hs := append([]Holder(nil), holders...)
	// Allocated computers pick first, then soonest consumers by ID order
	// (the store passes holders in consumption order).
	sort.SliceStable(hs, func(i, j int) bool {
		ai := hs[i].Computer.Allocations[hs[i].Product] != ""
		aj := hs[j].Computer.Allocations[hs[j].Product] != ""
		return ai && !aj
	})
	st := &state{pool: clonePool(pool), seats: map[string]string{}}
	for _, h := range hs {
		l := st.pool.License(h.License)
		if l != nil && l.Valid(now) {
			continue
		}
		why := fmt.Sprintf("license %s expired", h.License)
		if l == nil {
			why = fmt.Sprintf("license %s was removed", h.License)
		}
		var build time.Time
		if p, ok := e.cat.Product(h.Product); ok {
			if pl, ok := pluginFor(p, h.Computer.Plugins); ok {
				build = e.buildDate(pl)
			}
		}
		st.seats = map[string]string{h.Product: h.License}
		st.alloc = h.Computer.Allocations
		if to := st.pick(h.Computer, h.Product, build, now); to != nil {
			st.move(&d, h.Computer.ID, h.Product, h.License, to.ID, why+fmt.Sprintf("; seat moved to license %s", to.ID))
			continue
		}
		st.free(&d, h.Computer.ID, h.Product, protocol.VerdictDiscardedExpired, why+"; no other license of "+h.Product+" has room: the seat is lost")
	}
	return d
}

// state is the engine's working copy of the facts during one decision, so
// that several effects in one decision see each other.
type state struct {
	pool  Pool
	seats map[string]string // product → license, of the computer being decided
	alloc map[string]string // product → license allocated to that computer
}

func newState(c Computer, pool Pool) *state {
	s := &state{pool: clonePool(pool), seats: map[string]string{}, alloc: c.Allocations}
	for k, v := range c.Seats {
		s.seats[k] = v
	}
	return s
}

func clonePool(p Pool) Pool {
	out := Pool{}
	for k, ls := range p {
		for _, l := range ls {
			cp := *l
			out[k] = append(out[k], &cp)
		}
	}
	return out
}

// pick chooses the license a computer's seat of product goes to: its
// allocation if valid and covering, else the valid, covering license with
// room for others that expires soonest (perpetual last; ID breaks ties).
func (s *state) pick(c Computer, product string, build, now time.Time) *License {
	if a := c.Allocations[product]; a != "" {
		if l := s.pool.License(a); l != nil && l.Product == product && l.Valid(now) && l.Covers(build) && l.Held < l.Seats {
			return l
		}
	}
	var cands []*License
	for _, l := range s.pool[product] {
		if l.Valid(now) && l.Covers(build) && l.FreeForOthers() > 0 {
			cands = append(cands, l)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	sort.Slice(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.Expires.IsZero() != b.Expires.IsZero() {
			return !a.Expires.IsZero()
		}
		if !a.Expires.Equal(b.Expires) {
			return a.Expires.Before(b.Expires)
		}
		return a.ID < b.ID
	})
	return cands[0]
}

// refusal explains why no license could take the computer's seat, as the
// verdict the request gets.
func (s *state) refusal(p *catalog.Product, kind PostKind, build, now time.Time) (protocol.Verdict, string) {
	ls := s.pool[p.Name]
	if len(ls) == 0 {
		return noSeat(p, kind, "no license of "+p.Name+" is imported")
	}
	var valid, covering int
	for _, l := range ls {
		if l.Valid(now) {
			valid++
			if l.Covers(build) {
				covering++
			}
		}
	}
	if valid == 0 {
		return protocol.VerdictDiscardedExpired, "every license of " + p.Name + " has expired"
	}
	if covering == 0 {
		return protocol.VerdictDiscardedUpgradeProtection, fmt.Sprintf("plug-in build %s is newer than the upgrade protection of every license of %s",
			build.Format("2006-01-02"), p.Name)
	}
	return noSeat(p, kind, "all seats of "+p.Name+" are taken")
}

func noSeat(p *catalog.Product, kind PostKind, why string) (protocol.Verdict, string) {
	switch {
	case kind == PostCheckIn && p.Over(catalog.DenyCheckIn):
		return protocol.VerdictDeniedNoSeat, "license count exceeded: " + why
	case kind == PostCatalogRequest && p.Over(catalog.RefuseCatalog):
		return protocol.VerdictDeniedNoSeat, "catalog refused: " + why
	case kind == PostTaskRequest && p.Over(catalog.WithholdTasks):
		return protocol.VerdictDiscardedNoSeat, "tasks withheld: " + why
	}
	return protocol.VerdictDiscardedNoSeat, why
}

// take and release keep a license's counts, allocation included, in step
// with a seat attributed to or removed from it.
func (s *state) take(product, lic string) {
	if l := s.pool.License(lic); l != nil {
		l.Held++
		if s.alloc[product] == lic {
			l.AllocatedHeld++
		}
	}
}

func (s *state) release(product, lic string) {
	if l := s.pool.License(lic); l != nil {
		l.Held--
		if s.alloc[product] == lic {
			l.AllocatedHeld--
		}
	}
}

func (s *state) consume(d *Decision, computer int64, product, lic, why string) {
	s.take(product, lic)
	s.seats[product] = lic
	d.Effects = append(d.Effects, Effect{Kind: Consume, ComputerID: computer, Product: product, License: lic, Verdict: protocol.VerdictLicensed, Reason: why})
}

func (s *state) free(d *Decision, computer int64, product string, v protocol.Verdict, why string) {
	from := s.seats[product]
	s.release(product, from)
	delete(s.seats, product)
	d.Effects = append(d.Effects, Effect{Kind: Free, ComputerID: computer, Product: product, From: from, Verdict: v, Reason: why})
}

func (s *state) move(d *Decision, computer int64, product, from, to, why string) {
	s.release(product, from)
	s.take(product, to)
	s.seats[product] = to
	d.Effects = append(d.Effects, Effect{Kind: Move, ComputerID: computer, Product: product, From: from, License: to, Verdict: protocol.VerdictLicensed, Reason: why})
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Summary describes a decision's seat changes in one line, for CLI output.
func (d *Decision) Summary() string {
	var parts []string
	for _, e := range d.Effects {
		switch e.Kind {
		case Free:
			parts = append(parts, fmt.Sprintf("freed %s (license %s)", e.Product, e.From))
		case Consume:
			parts = append(parts, fmt.Sprintf("consumed %s (license %s)", e.Product, e.License))
		case Move:
			parts = append(parts, fmt.Sprintf("moved %s from %s to %s", e.Product, e.From, e.License))
		}
	}
	if len(parts) == 0 {
		return "no seat changed"
	}
	return strings.Join(parts, "; ")
}

// NeedsCounts reports whether deciding post needs the licenses' seat
// counts (held, allocated), or only what licenses exist with their dates.
// Counts are needed when a seat may be taken or moved: a qualifying post of
// a product the computer holds no seat of, or a seat on a license that
// expired or does not cover the plug-in's build. Most posts of a fleet
// that took its seats need no counts: the store then skips reading them.
func (e *Engine) NeedsCounts(c Computer, meta Pool, post Post, now time.Time) bool {
	plugins := c.Plugins
	if post.Kind == PostInventory {
		plugins = post.Plugins
	}
	for product, lic := range c.Seats {
		if l := meta.License(lic); l == nil || !l.Valid(now) {
			return true // the seat must move or be freed
		}
		_ = product
	}
	if !c.Active() {
		return false
	}
	for _, t := range e.touched(post) {
		p := t.product
		listed := false
		if _, ok := pluginFor(p, plugins); ok {
			listed = true
		}
		if p.RequiresPlugin && !listed {
			continue
		}
		if lic, held := c.Seats[p.Name]; held {
			if l := meta.License(lic); l == nil || !l.Valid(now) || !l.Covers(e.buildDate(t.plugin)) {
				return true
			}
			continue
		}
		qualifying := false
		for _, tr := range t.triggers {
			if p.Qualifies(tr) {
				qualifying = true
			}
		}
		if qualifying && (!p.PluginRemovalFrees || listed) || t.request {
			// A request of a node without the seat is refused only beyond
			// the count: whether a seat is free needs the counts.
			return true
		}
	}
	return false
}
