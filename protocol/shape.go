package protocol

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// A request body is checked against the shape of its type before it is
// decoded: every array's length and every map's pair count are read from
// the CBOR headers, without allocating, and compared with the limits the
// type declares, so that a body cannot make the decoder allocate more than
// its validated shape allows. Decoding alone would not do: an empty
// string costs one byte on the wire and sixteen in Go, an empty package
// one byte and a hundred, and the decoder's MaxArrayElements is one limit
// for every array.
//
// Each slice field of a request body declares its limit in a struct tag,
// `limit:"N"` (elements in one array), optionally with `group:"NAME"`,
// which adds the array's length to a total of that name for the whole
// body, bounded by groupLimits. A slice without a limit is a programming
// error the package's init refuses.

// Limits on the totals of one request body.
const (
	// MaxAddressesPerPost bounds the interface addresses of one basic
	// inventory: the agent sends at most 256 interfaces of 64 addresses.
	MaxAddressesPerPost = 16384
	// MaxPackagesPerPost bounds the packages of one software inventory,
	// full or delta (added plus removed).
	MaxPackagesPerPost = 2 * MaxArrayElements
)

// groupLimits names the totals that several arrays of a body add to.
var groupLimits = map[string]int{
	"interface addresses": MaxAddressesPerPost,
	"packages":            MaxPackagesPerPost,
}

// shape is what a type allows of a body's CBOR: nil for a value with no
// array inside (it is skipped), a struct's fields by key, or an array's
// bound and the shape of its elements.
type shape struct {
	fields  map[uint64]*shape // struct (a keyasint map): the shape of each field
	nfields int               // struct: pairs at most
	array   bool
	max     uint64 // array: elements at most
	group   string // array: the total it counts towards, if any
	what    string // array: what it holds, for the error
	elem    *shape
}

// requestBodies is the body type of every request kind, whose shapes are
// checked before decoding.
var requestBodies = map[Kind]any{
	KindEnroll:           EnrollRequest{},
	KindInventory:        InventoryRequest{},
	KindPluginData:       PluginDataRequest{},
	KindTaskRequest:      PluginRequest{},
	KindCheckIn:          PluginRequest{},
	KindCatalogRequest:   PluginRequest{},
	KindGoodbye:          GoodbyeRequest{},
	KindPackageRequest:   PackageRequest{},
	KindActivate:         ActivateRequest{},
	KindDeactivate:       DeactivateRequest{},
	KindActivationStatus: ActivationStatusRequest{},
	KindLeaseCheckout:    LeaseCheckoutRequest{},
	KindLeaseHeartbeat:   LeaseRequest{},
	KindLeaseCheckin:     LeaseRequest{},
}

// bodyShapes holds the shape of each request body type, built once by init
// and read-only after.
var bodyShapes map[reflect.Type]*shape

func init() {
	bodyShapes = map[reflect.Type]*shape{}
	for _, v := range requestBodies {
		t := reflect.TypeOf(v)
		s, err := shapeOf(t, t.Name())
		if err != nil {
			panic(err) // the types are fixed; a failure is a programming error
		}
		bodyShapes[t] = s
	}
}

// shapeOf builds the shape of t; path names where t is, for the error.
func shapeOf(t reflect.Type, path string) (*shape, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		if t.Kind() == reflect.Map || (t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8) {
			return nil, fmt.Errorf("protocol: %s is a list or map outside a struct field with a limit", path)
		}
		return nil, nil
	}
	s := &shape{fields: map[uint64]*shape{}}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("cbor"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		key, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("protocol: %s.%s: field key %q is not an integer", path, f.Name, name)
		}
		s.nfields++
		fs, err := fieldShape(f, path+"."+f.Name)
		if err != nil {
			return nil, err
		}
		s.fields[key] = fs
	}
	return s, nil
}

func fieldShape(f reflect.StructField, path string) (*shape, error) {
	t := f.Type
	if t.Kind() == reflect.Map {
		return nil, fmt.Errorf("protocol: %s: maps in request bodies have no shape check", path)
	}
	if t.Kind() != reflect.Slice || t.Elem().Kind() == reflect.Uint8 {
		return shapeOf(t, path) // a byte string is bounded by the message's size
	}
	max, err := strconv.ParseUint(f.Tag.Get("limit"), 10, 32)
	if err != nil || max == 0 || max > MaxArrayElements {
		return nil, fmt.Errorf("protocol: %s: a list needs a limit tag between 1 and %d", path, MaxArrayElements)
	}
	group := f.Tag.Get("group")
	if _, ok := groupLimits[group]; group != "" && !ok {
		return nil, fmt.Errorf("protocol: %s: unknown group %q", path, group)
	}
	what := f.Tag.Get("json")
	what, _, _ = strings.Cut(what, ",")
	if group != "" {
		what = group
	}
	elem, err := shapeOf(t.Elem(), path+"[]")
	if err != nil {
		return nil, err
	}
	return &shape{array: true, max: max, group: group, what: what, elem: elem}, nil
}

// checkShape checks data, a body for a value of type t, against t's shape.
// Types without a registered shape pass.
func checkShape(data []byte, t reflect.Type) error {
	s := bodyShapes[t]
	if s == nil {
		return nil
	}
	w := walker{data: data}
	return w.check(s, 0)
}

// walker reads CBOR headers, the only thing the shape check needs. Items
// the shape does not describe are skipped whole; anything ill-formed is an
// error, which the decoder would have refused too.
type walker struct {
	data   []byte
	pos    int
	groups map[string]uint64
}

var errShapeMalformed = errors.New("malformed CBOR")

// head reads an item's header: its major type and argument.
func (w *walker) head() (major byte, arg uint64, err error) {
	if w.pos >= len(w.data) {
		return 0, 0, errShapeMalformed
	}
	b := w.data[w.pos]
	w.pos++
	major, info := b>>5, b&0x1f
	switch {
	case info < 24:
		return major, uint64(info), nil
	case info <= 27:
		n := 1 << (info - 24)
		if len(w.data)-w.pos < n {
			return 0, 0, errShapeMalformed
		}
		for _, c := range w.data[w.pos : w.pos+n] {
			arg = arg<<8 | uint64(c)
		}
		w.pos += n
		return major, arg, nil
	}
	return 0, 0, errShapeMalformed // indefinite lengths and reserved values are refused by the decoder too
}

// rest skips what follows an item's header.
func (w *walker) rest(major byte, arg uint64, depth int) error {
	switch major {
	case 2, 3: // byte and text strings
		if arg > uint64(len(w.data)-w.pos) {
			return errShapeMalformed
		}
		w.pos += int(arg)
	case 4, 5: // arrays and maps: every item (both of a pair) skipped
		if depth >= MaxNestedLevels {
			return errShapeMalformed
		}
		n := arg
		if major == 5 {
			n *= 2
		}
		for ; n > 0; n-- {
			if err := w.skip(depth + 1); err != nil {
				return err
			}
		}
	case 6: // tags are refused by the decoder
		return errShapeMalformed
	}
	return nil
}

func (w *walker) skip(depth int) error {
	major, arg, err := w.head()
	if err != nil {
		return err
	}
	return w.rest(major, arg, depth)
}

// check walks one item against s.
func (w *walker) check(s *shape, depth int) error {
	if s == nil {
		return w.skip(depth)
	}
	major, arg, err := w.head()
	if err != nil {
		return err
	}
	switch {
	case s.array && major == 4:
		if arg > s.max {
			return fmt.Errorf("too many %s: %d in one list, at most %d", s.what, arg, s.max)
		}
		if s.group != "" {
			if w.groups == nil {
				w.groups = map[string]uint64{}
			}
			w.groups[s.group] += arg
			if limit := groupLimits[s.group]; w.groups[s.group] > uint64(limit) {
				return fmt.Errorf("too many %s: more than %d in one request", s.group, limit)
			}
		}
		if depth >= MaxNestedLevels {
			return errShapeMalformed
		}
		for ; arg > 0; arg-- {
			if err := w.check(s.elem, depth+1); err != nil {
				return err
			}
		}
		return nil
	case !s.array && major == 5:
		if arg > uint64(s.nfields) {
			return fmt.Errorf("a map of %d fields where at most %d are known", arg, s.nfields)
		}
		if depth >= MaxNestedLevels {
			return errShapeMalformed
		}
		for ; arg > 0; arg-- {
			km, key, err := w.head()
			if err != nil {
				return err
			}
			if km != 0 { // not a field key: the decoder refuses it
				if err := w.rest(km, key, depth+1); err != nil {
					return err
				}
				if err := w.skip(depth + 1); err != nil {
					return err
				}
				continue
			}
			if err := w.check(s.fields[key], depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	// Not what the type holds: the decoder refuses it, and skipping it
	// allocates nothing.
	return w.rest(major, arg, depth)
}
