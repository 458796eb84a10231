// Package catalog holds the products Tally licenses, as data: the built-in
// catalog embedded in the server (one entry per product generation of the
// seeds), merged with the products an administrator defines in the data
// folder, each validated with errors that name the file, the product and the
// field.
package catalog

import (
	_ "embed"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/BurntSushi/toml"

	"github.com/tallyhq/tally/protocol"
)

//go:embed builtin.toml
var builtinTOML []byte

// Trigger is a kind of post that may consume a seat.
type Trigger string

// Triggers of DESIGN §4.
const (
	TriggerSoftwareInventory Trigger = "software-inventory"
	TriggerPluginPresence    Trigger = "plugin-presence"
	TriggerPluginData        Trigger = "plugin-data"
	TriggerTaskRequest       Trigger = "task-request"
	TriggerPackageRequest    Trigger = "package-request"
	TriggerCheckIn           Trigger = "check-in"
)

// Triggers lists every trigger.
var Triggers = []Trigger{TriggerSoftwareInventory, TriggerPluginPresence, TriggerPluginData, TriggerTaskRequest, TriggerPackageRequest, TriggerCheckIn}

// SoftwarePlugin is the plug-in that adds software inventory to posts:
// software inventory is product data of this plug-in's products.
const SoftwarePlugin = "inventory"

// Behaviour is what a node without a seat gets.
type Behaviour string

// Over-the-count behaviours.
const (
	DiscardData   Behaviour = "discard-data"
	WithholdTasks Behaviour = "withhold-tasks"
	DenyCheckIn   Behaviour = "deny-check-in"
	RefuseCatalog Behaviour = "refuse-catalog"
)

// Behaviours lists every behaviour.
var Behaviours = []Behaviour{DiscardData, WithholdTasks, DenyCheckIn, RefuseCatalog}

// Statuses that free: the special values of freed-by.
const (
	FreedByAnyNonActive = "any-non-active"
	FreedByNone         = "none"
	StatusActive        = "Active"
)

// Product is one product generation's licensing rules.
type Product struct {
	Name           string
	Title          string
	Plugin         string
	PluginVersions Constraint
	Qualifying     []Trigger
	RequiresPlugin bool
	OverCount      []Behaviour
	// FreedByAnyNonActive is true for "any-non-active"; otherwise
	// FreedBy lists the statuses (empty: none).
	FreedByAnyNonActive bool
	FreedBy             []string
	PluginRemovalFrees  bool
	// PurgeAfterDays: product data of a computer whose seat was freed is
	// purged after this many days; negative: never.
	PurgeAfterDays int
	// Source is "builtin", the admin file that defined it, or
	// SourceDatabase.
	Source string
	// Application is true for a product licensed only by Activation IDs
	// or leases: it has no plug-in and no node seats, so none of the
	// plug-in rules above apply to it.
	Application bool
	// Kinds are the license kinds an application product takes; empty
	// for a plug-in product, which takes every kind.
	Kinds []string
	// InactiveDevicesConsume is seed 003's exception for per-user
	// licenses: a device registered to a user (a computer whose primary
	// user it is, holding the plug-in: the product's device ID token)
	// counts even while the device is inactive (its computer not Active),
	// until the registration ends. Off, an inactive device counts for
	// nothing, so retiring a user's devices frees the user's seat.
	InactiveDevicesConsume bool
}

// DeviceCounts reports whether a device registered to a user counts
// towards the user's seat while its computer has status.
func (p *Product) DeviceCounts(status string) bool {
	return status == StatusActive || p.InactiveDevicesConsume
}

// License kinds an application product can take: node seats come from a
// plug-in's qualifying posts, which an application product has none of.
const (
	KindNode       = "node"
	KindNodeLocked = "node-locked"
	KindConcurrent = "concurrent"
	KindUser       = "user"
)

// ApplicationKinds lists the kinds an application product may take.
var ApplicationKinds = []string{KindNodeLocked, KindConcurrent}

// SourceDatabase marks an application product an administrator added with
// 'tally-server products add'.
const SourceDatabase = "database"

// MaxTitle is the longest product title, in characters.
const MaxTitle = 200

// Takes reports, as a sentence that says what to do, why the product does
// not take licenses of kind; nil if it does.
func (p *Product) Takes(kind string) error {
	if !p.Application {
		return nil
	}
	for _, k := range p.Kinds {
		if k == kind {
			return nil
		}
	}
	if kind == KindNode || kind == KindUser {
		return fmt.Errorf("%s is an application product (licensed by Activation IDs or leases, with no plug-in to consume a %s seat): issue the license with --kind %s",
			p.Name, kind, strings.Join(p.Kinds, " or --kind "))
	}
	return fmt.Errorf("application product %s takes %s licenses only: issue the license with --kind %s, or add the kind to the product",
		p.Name, strings.Join(p.Kinds, " and "), strings.Join(p.Kinds, " or --kind "))
}

// NewApplication validates an application product. Its status rule is
// any-non-active: a computer that is not Active consumes nothing, so its
// activations and leases are returned when its status changes.
func NewApplication(name, title string, kinds []string, source string) (*Product, error) {
	if name == "" {
		return nil, errors.New("give the product a name: lower-case letters, digits and dashes, such as cad")
	}
	if !protocol.ValidName(name) {
		return nil, fmt.Errorf("product name %q: use 1 to 63 lower-case letters, digits and dashes, starting with a letter or digit, such as cad", name)
	}
	title = strings.TrimSpace(title)
	if utf8.RuneCountInString(title) > MaxTitle {
		return nil, fmt.Errorf("the title has %d characters: shorten it to %d at most", utf8.RuneCountInString(title), MaxTitle)
	}
	for _, r := range title {
		if r < ' ' || r == 0x7f {
			return nil, errors.New("the title holds a control character: give it on one line of printable text")
		}
	}
	if title == "" {
		title = name
	}
	if len(kinds) == 0 {
		return nil, fmt.Errorf("list the kinds of license product %s takes: %s, or both", name, strings.Join(ApplicationKinds, ", "))
	}
	p := &Product{Name: name, Title: title, Application: true, FreedByAnyNonActive: true, PurgeAfterDays: -1, Source: source}
	for _, k := range kinds {
		k = strings.TrimSpace(k)
		ok := false
		for _, a := range ApplicationKinds {
			ok = ok || a == k
		}
		switch {
		case ok && !slicesContains(p.Kinds, k):
			p.Kinds = append(p.Kinds, k)
		case ok:
		case k == KindNode || k == KindUser:
			return nil, fmt.Errorf("kind %q: an application product has no plug-in to consume %s seats; use %s (a product with a plug-in is defined in DATA/products.toml)",
				k, k, strings.Join(ApplicationKinds, " or "))
		default:
			return nil, fmt.Errorf("kind %q is not a license kind: use %s, or both separated by a comma", k, strings.Join(ApplicationKinds, " or "))
		}
	}
	// In the order of ApplicationKinds, whatever order they were given in.
	var ordered []string
	for _, k := range ApplicationKinds {
		if slicesContains(p.Kinds, k) {
			ordered = append(ordered, k)
		}
	}
	p.Kinds = ordered
	return p, nil
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Qualifies reports whether t consumes a seat of the product.
func (p *Product) Qualifies(t Trigger) bool {
	for _, q := range p.Qualifying {
		if q == t {
			return true
		}
	}
	return false
}

// Over reports whether the product has the over-the-count behaviour b.
func (p *Product) Over(b Behaviour) bool {
	for _, x := range p.OverCount {
		if x == b {
			return true
		}
	}
	return false
}

// FreedByStatus reports whether setting status frees the product's seat.
func (p *Product) FreedByStatus(status string) bool {
	if status == StatusActive {
		return false
	}
	if p.FreedByAnyNonActive {
		return true
	}
	for _, s := range p.FreedBy {
		if s == status {
			return true
		}
	}
	return false
}

// FreedByText describes the status rule for people.
func (p *Product) FreedByText() string {
	if p.FreedByAnyNonActive {
		return FreedByAnyNonActive
	}
	if len(p.FreedBy) == 0 {
		return FreedByNone
	}
	return strings.Join(p.FreedBy, ", ")
}

// Matches reports whether a plug-in of this name and version belongs to
// this product generation.
func (p *Product) Matches(plugin, version string) bool {
	return p.Plugin == plugin && p.PluginVersions.Allows(version)
}

// Catalog is the set of products.
type Catalog struct {
	// products and names are fixed once loaded: the posts' hot path
	// reads them without a lock.
	products map[string]*Product
	names    []string
	// apps are the application products added while the server runs
	// (stored in the database): they have no plug-in, so only Product and
	// Products see them.
	mu   sync.RWMutex
	apps map[string]*Product
}

// Product returns the named product.
func (c *Catalog) Product(name string) (*Product, bool) {
	if p, ok := c.products[name]; ok {
		return p, true
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	p, ok := c.apps[name]
	return p, ok
}

// Products returns every product, by name.
func (c *Catalog) Products() []*Product {
	c.mu.RLock()
	out := make([]*Product, len(c.names), len(c.names)+len(c.apps))
	for i, n := range c.names {
		out[i] = c.products[n]
	}
	for _, p := range c.apps {
		out = append(out, p)
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ErrDefined is returned when adding a product whose name is taken.
var ErrDefined = errors.New("product already defined")

// AddApplication adds an application product (validated by
// NewApplication) to the running catalog. A name taken by a built-in or
// file product, or by another application product, is refused.
func (c *Catalog) AddApplication(p *Product) error {
	if !p.Application {
		return fmt.Errorf("product %s has a plug-in: define it in DATA/products.toml", p.Name)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.nameFree(p.Name); err != nil {
		return err
	}
	if c.apps == nil {
		c.apps = map[string]*Product{}
	}
	c.apps[p.Name] = p
	return nil
}

// NameFree reports, as a sentence, why a new product may not take name;
// nil if it may.
func (c *Catalog) NameFree(name string) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.nameFree(name)
}

func (c *Catalog) nameFree(name string) error {
	if q, ok := c.products[name]; ok {
		where := "the built-in catalog"
		if q.Source != "builtin" {
			where = q.Source
		}
		return fmt.Errorf("%w: %s is a product of %s: choose another name", ErrDefined, name, where)
	}
	if _, ok := c.apps[name]; ok {
		return fmt.Errorf("%w: application product %s already exists (see 'tally-server products show %s')", ErrDefined, name, name)
	}
	return nil
}

// RemoveApplication takes an application product added at run time out
// of the catalog.
func (c *Catalog) RemoveApplication(name string) {
	c.mu.Lock()
	delete(c.apps, name)
	c.mu.Unlock()
}

// ForPlugin returns the products a plug-in of that name and version belongs to.
func (c *Catalog) ForPlugin(plugin, version string) []*Product {
	var out []*Product
	for _, n := range c.names {
		if p := c.products[n]; p.Matches(plugin, version) {
			out = append(out, p)
		}
	}
	return out
}

// ForPluginName returns the products of a plug-in, whatever its version.
func (c *Catalog) ForPluginName(plugin string) []*Product {
	var out []*Product
	for _, n := range c.names {
		if p := c.products[n]; p.Plugin == plugin {
			out = append(out, p)
		}
	}
	return out
}

// Plugins returns the plug-in names the catalog knows.
func (c *Catalog) Plugins() []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range c.names {
		if p := c.products[n].Plugin; p != "" && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// Builtin returns the embedded catalog.
func Builtin() (*Catalog, error) {
	return Load(nil)
}

// AdminFile is an administrator's products file: its name (for messages)
// and content.
type AdminFile struct {
	Name string
	Data []byte
}

// Load parses the built-in catalog and, when given, the admin's file, whose
// products add to or replace built-in ones of the same name.
func Load(admin *AdminFile) (*Catalog, error) {
	c := &Catalog{products: map[string]*Product{}}
	if err := c.add("builtin.toml", builtinTOML, false); err != nil {
		return nil, fmt.Errorf("built-in catalog: %w", err)
	}
	if admin != nil {
		if err := c.add(admin.Name, admin.Data, true); err != nil {
			return nil, err
		}
	}
	sort.Strings(c.names)
	return c, nil
}

type fileProduct struct {
	Name               string   `toml:"name"`
	Title              string   `toml:"title"`
	Plugin             string   `toml:"plugin"`
	PluginVersions     string   `toml:"plugin-versions"`
	Qualifying         []string `toml:"qualifying"`
	RequiresPlugin     bool     `toml:"requires-plugin"`
	OverCount          []string `toml:"over-count"`
	FreedBy            any      `toml:"freed-by"`
	PluginRemovalFrees *bool    `toml:"plugin-removal-frees"`
	PurgeAfterDays     *int     `toml:"purge-after-days"`
	InactiveDevices    bool     `toml:"inactive-devices-consume"`
}

// fileApplication is an application product in a products file:
// [application.cad] with kinds = ["node-locked", "concurrent"] and an
// optional title.
type fileApplication struct {
	Title string   `toml:"title"`
	Kinds []string `toml:"kinds"`
}

type file struct {
	Product     []fileProduct              `toml:"product"`
	Application map[string]fileApplication `toml:"application"`
}

func (c *Catalog) add(fileName string, data []byte, replace bool) error {
	var f file
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		return fmt.Errorf("%s: %w", fileName, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return fmt.Errorf("%s: unknown field %s (known: in [[product]]: name, title, plugin, plugin-versions, qualifying, requires-plugin, over-count, freed-by, plugin-removal-frees, purge-after-days, inactive-devices-consume; in [application.NAME]: title, kinds)",
			fileName, strings.Join(keys, ", "))
	}
	if len(f.Product) == 0 && len(f.Application) == 0 {
		return fmt.Errorf("%s: no products: add [[product]] entries (with a plug-in) or [application.NAME] tables (with kinds = [\"node-locked\", \"concurrent\"])", fileName)
	}
	seen := map[string]bool{}
	appNames := make([]string, 0, len(f.Application))
	for name := range f.Application {
		appNames = append(appNames, name)
	}
	sort.Strings(appNames)
	for _, name := range appNames {
		fa := f.Application[name]
		p, err := NewApplication(name, fa.Title, fa.Kinds, fileName)
		if err != nil {
			return fmt.Errorf("%s: [application.%s]: %w", fileName, name, err)
		}
		seen[name] = true
		if err := c.nameFree(name); err != nil {
			return fmt.Errorf("%s: [application.%s]: %w", fileName, name, err)
		}
		c.names = append(c.names, name)
		c.products[name] = p
	}
	for i, fp := range f.Product {
		p, err := fp.product(fileName)
		if err != nil {
			name := fp.Name
			if name == "" {
				name = fmt.Sprintf("#%d", i+1)
			}
			return fmt.Errorf("%s: product %s: %w", fileName, name, err)
		}
		if seen[p.Name] {
			return fmt.Errorf("%s: product %s is defined twice", fileName, p.Name)
		}
		seen[p.Name] = true
		if _, exists := c.products[p.Name]; exists && !replace {
			return fmt.Errorf("%s: product %s is defined twice", fileName, p.Name)
		}
		if _, exists := c.products[p.Name]; !exists {
			c.names = append(c.names, p.Name)
		}
		c.products[p.Name] = p
	}
	return nil
}

func (fp fileProduct) product(source string) (*Product, error) {
	p := &Product{Name: fp.Name, Title: fp.Title, Plugin: fp.Plugin, RequiresPlugin: fp.RequiresPlugin, Source: source,
		InactiveDevicesConsume: fp.InactiveDevices}
	if source == "builtin.toml" {
		p.Source = "builtin"
	}
	if !protocol.ValidName(fp.Name) {
		return nil, fmt.Errorf("name %q: use lower-case letters, digits and dashes", fp.Name)
	}
	if p.Title == "" {
		p.Title = p.Name
	}
	if fp.Plugin == "" {
		return nil, fmt.Errorf("plugin is missing: give the plug-in whose posts consume the seat; a product licensed only by Activation IDs or leases is an application product, two lines: [application.%s] and kinds = [\"node-locked\", \"concurrent\"]", fp.Name)
	}
	if !protocol.ValidName(fp.Plugin) {
		return nil, fmt.Errorf("plugin %q: use the plug-in's name (lower-case letters, digits and dashes)", fp.Plugin)
	}
	var err error
	if p.PluginVersions, err = ParseConstraint(fp.PluginVersions); err != nil {
		return nil, fmt.Errorf("plugin-versions: %w", err)
	}
	if len(fp.Qualifying) == 0 {
		return nil, errors.New("qualifying: list at least one of " + joinTriggers())
	}
	for _, q := range fp.Qualifying {
		if !validTrigger(Trigger(q)) {
			return nil, fmt.Errorf("qualifying: %q is not one of %s", q, joinTriggers())
		}
		p.Qualifying = append(p.Qualifying, Trigger(q))
	}
	if len(fp.OverCount) == 0 {
		return nil, errors.New("over-count: list at least one of discard-data, withhold-tasks, deny-check-in, refuse-catalog")
	}
	for _, b := range fp.OverCount {
		if !validBehaviour(Behaviour(b)) {
			return nil, fmt.Errorf("over-count: %q is not one of discard-data, withhold-tasks, deny-check-in, refuse-catalog", b)
		}
		p.OverCount = append(p.OverCount, Behaviour(b))
	}
	switch v := fp.FreedBy.(type) {
	case string:
		switch v {
		case FreedByAnyNonActive:
			p.FreedByAnyNonActive = true
		case FreedByNone:
		default:
			return nil, fmt.Errorf("freed-by: %q: use \"any-non-active\", \"none\", or a list of statuses", v)
		}
	case []any:
		for _, s := range v {
			str, ok := s.(string)
			if !ok || strings.TrimSpace(str) == "" {
				return nil, fmt.Errorf("freed-by: %v is not a status name", s)
			}
			if str == StatusActive {
				return nil, errors.New("freed-by: Active cannot free a seat")
			}
			p.FreedBy = append(p.FreedBy, str)
		}
	case nil:
		return nil, errors.New("freed-by is missing: a list of statuses, \"any-non-active\" or \"none\"")
	default:
		return nil, fmt.Errorf("freed-by: %v: use \"any-non-active\", \"none\", or a list of statuses", v)
	}
	if fp.PluginRemovalFrees == nil {
		return nil, errors.New("plugin-removal-frees is missing: true or false")
	}
	p.PluginRemovalFrees = *fp.PluginRemovalFrees
	if fp.PurgeAfterDays == nil {
		return nil, errors.New("purge-after-days is missing: a number of days, or -1 for never")
	}
	if *fp.PurgeAfterDays < -1 || *fp.PurgeAfterDays > 36500 {
		return nil, fmt.Errorf("purge-after-days: %d is not between -1 (never) and 36500", *fp.PurgeAfterDays)
	}
	p.PurgeAfterDays = *fp.PurgeAfterDays
	return p, nil
}

func validTrigger(t Trigger) bool {
	for _, x := range Triggers {
		if x == t {
			return true
		}
	}
	return false
}

func validBehaviour(b Behaviour) bool {
	for _, x := range Behaviours {
		if x == b {
			return true
		}
	}
	return false
}

func joinTriggers() string {
	s := make([]string, len(Triggers))
	for i, t := range Triggers {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// Constraint is a set of version comparisons that must all hold, such as
// ">= 6.1.2, < 7".
type Constraint struct {
	text  string
	terms []term
}

type term struct {
	op  string
	ver []int
}

// String returns the constraint as written.
func (c Constraint) String() string { return c.text }

// ParseConstraint parses a comma-separated list of comparisons (>=, >, <=,
// <, =) against dotted numeric versions.
func ParseConstraint(s string) (Constraint, error) {
	c := Constraint{text: strings.TrimSpace(s)}
	if c.text == "" {
		return c, errors.New(`missing: e.g. ">= 7" or ">= 6, < 7"`)
	}
	for _, part := range strings.Split(c.text, ",") {
		part = strings.TrimSpace(part)
		var op string
		for _, o := range []string{">=", "<=", ">", "<", "="} {
			if strings.HasPrefix(part, o) {
				op = o
				break
			}
		}
		if op == "" {
			return c, fmt.Errorf("%q: start each comparison with >=, >, <=, < or =", part)
		}
		v, ok := parseVersion(strings.TrimSpace(strings.TrimPrefix(part, op)))
		if !ok {
			return c, fmt.Errorf("%q: the version must be numbers separated by dots", part)
		}
		c.terms = append(c.terms, term{op, v})
	}
	return c, nil
}

// Allows reports whether version satisfies the constraint. A version that
// does not start with a number satisfies nothing.
func (c Constraint) Allows(version string) bool {
	// Every post checks its plug-ins' versions: parse into an array on
	// the stack rather than a slice.
	var buf [maxVersionParts]int
	v, ok := parseVersionInto(buf[:0], leadingNumeric(version))
	if !ok {
		return false
	}
	for _, t := range c.terms {
		cmp := compareVersions(v, t.ver)
		var good bool
		switch t.op {
		case ">=":
			good = cmp >= 0
		case ">":
			good = cmp > 0
		case "<=":
			good = cmp <= 0
		case "<":
			good = cmp < 0
		case "=":
			good = cmp == 0
		}
		if !good {
			return false
		}
	}
	return true
}

// leadingNumeric keeps the dotted numeric prefix of a version ("7.1.0-rc1" → "7.1.0").
func leadingNumeric(s string) string {
	end := 0
	for end < len(s) && (s[end] == '.' || (s[end] >= '0' && s[end] <= '9')) {
		end++
	}
	return strings.TrimRight(s[:end], ".")
}

// maxVersionParts is the most dot-separated numbers a version may have.
const maxVersionParts = 8

func parseVersion(s string) ([]int, bool) {
	return parseVersionInto(nil, s)
}

// parseVersionInto appends the numbers of dotted version s to out.
func parseVersionInto(out []int, s string) ([]int, bool) {
	if s == "" {
		return nil, false
	}
	for part := range strings.SplitSeq(s, ".") {
		if len(out) == maxVersionParts {
			return nil, false
		}
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return nil, false
		}
		out = append(out, n)
	}
	return out, true
}

func compareVersions(a, b []int) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}
