// Package positions computes license positions from purchases and
// consumption, as seed 004 describes them: the entitlements a license has
// today (license purchases, current subscriptions, extra entitlements),
// its maintenance coverage, the expiry listing (one row per expiring
// license, and per license and expiring purchase) and the compliance
// report. It is pure: the store hands it a snapshot and today's date, and
// it returns rows, so that every rule is tested with an injected today.
package positions

import (
	"fmt"
	"slices"
	"strings"
)

// License kinds: a software license defined in Tally for any application
// recognised in inventory, or one of Tally's own signed product licenses.
const (
	KindSoftware = "software"
	KindProduct  = "product"
)

// License types.
const (
	TypeDevice = "device" // one entitlement per computer where any of its applications is installed
	TypeUser   = "user"   // one entitlement per primary user of such computers (PerUser)
)

// Durations of a license.
const (
	Perpetual    = "perpetual"
	Subscription = "subscription"
	TimeLimited  = "time-limited"
)

// Purchase types.
const (
	PurchaseLicense      = "license"      // adds entitlements for good
	PurchaseSubscription = "subscription" // adds entitlements from its effective to its expiry date
	PurchaseMaintenance  = "maintenance"  // covers entitlements from its effective to its expiry date
)

// License statuses, in life-cycle order.
var Statuses = []string{"active", "pending", "retired"}

// License is what the reports need of a license.
type License struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Product   string `json:"product"` // the applications (or Tally product) it licenses
	Publisher string `json:"publisher,omitempty"`
	Type      string `json:"type"`
	Duration  string `json:"duration"`
	Expiry    Date   `json:"expiry"`
	// Extra entitlements are granted outside purchases.
	Extra             int    `json:"extra_entitlements"`
	UnitPrice         Money  `json:"unit_price"`
	PlannedNonRenewal bool   `json:"planned_non_renewal"`
	TrueUp            bool   `json:"subject_to_true_up"`
	Status            string `json:"status"`
	Serial            string `json:"serial,omitempty"`
	Manager           string `json:"manager,omitempty"`
	CostCentre        string `json:"cost_centre,omitempty"`
	// Granted is what a product license's signed file grants today (zero
	// once it has expired); software licenses leave it zero.
	Granted int `json:"granted,omitempty"`
	// Consumed counts the computers consuming the license (for type
	// user, their distinct primary users: PerUser); Raw counts
	// installations (a computer with two of its applications counts two).
	Consumed int `json:"consumed"`
	Raw      int `json:"raw_consumption"`
	// Reserved counts the computers allocated the license (see
	// Reserved) where none of its applications is installed yet: they
	// consume it too, so the compliance report's consumed is Consumed +
	// Reserved (for type user, the further users they bring: PerUser). Product licenses leave it zero (their Consumed is seats
	// held, which include allocated ones).
	Reserved int `json:"reserved"`
}

// Reserved counts, of the computers allocated a software license, those
// that consume it by allocation alone: an allocation reserves an
// entitlement for a computer, so an allocated computer consumes the
// license even before one of its applications is recognised on it, and a
// computer both allocated and installed is counted once (as installed); a
// computer that consumes no license (retired, disposed, deleted) consumes
// none by its allocation either.
func Reserved(allocated []int64, consuming, installed func(computer int64) bool) int {
	n := 0
	for _, c := range allocated {
		if consuming(c) && !installed(c) {
			n++
		}
	}
	return n
}

// PerUser counts a per-user license's consumption from the computers
// that consume it: one entitlement per distinct primary user of a
// computer where any of its applications is installed (consumed), and
// one per further distinct primary user of a computer allocated the
// license (reserved), so that consumed + reserved is the users who take
// an entitlement. A computer with no known primary user counts as one
// user of its own, so that a machine the agent has not named a user for
// is never left uncounted. A user's internal status does not matter: the
// installation is what is licensed, and it stays usable on the machine
// whether the account is Active, Disabled or Deleted. Computers that
// consume no license (consuming false: retired, disposed, deleted) count
// nothing, whether installed or allocated.
func PerUser(installed, allocated []int64, consuming func(computer int64) bool, primary func(computer int64) (user int64, ok bool)) (consumed, reserved int) {
	type unit struct {
		user bool
		id   int64
	}
	of := func(c int64) unit {
		if u, ok := primary(c); ok {
			return unit{true, u}
		}
		return unit{false, c}
	}
	seen := map[unit]bool{}
	for _, c := range installed {
		if consuming(c) && !seen[of(c)] {
			seen[of(c)] = true
			consumed++
		}
	}
	for _, c := range allocated {
		if consuming(c) && !seen[of(c)] {
			seen[of(c)] = true
			reserved++
		}
	}
	return consumed, reserved
}

// Purchase is one purchase order line.
type Purchase struct {
	ID          int64  `json:"id"`
	PO          string `json:"po"`
	Item        string `json:"item"`
	Vendor      string `json:"vendor,omitempty"`
	Date        Date   `json:"date"`
	Quantity    int    `json:"quantity"`
	UnitPrice   Money  `json:"unit_price"`
	Type        string `json:"type"`
	Effective   Date   `json:"effective"`
	Expiry      Date   `json:"expiry"`
	CostCentre  string `json:"cost_centre,omitempty"`
	Description string `json:"description,omitempty"`
}

// Link is a part of a purchase given to one license: a purchase may be
// split across licenses, each link taking a quantity.
type Link struct {
	Purchase int64  `json:"purchase"`
	License  string `json:"license"`
	Quantity int    `json:"quantity"`
}

// MaxQuantity bounds quantities so that sums and costs cannot overflow.
const MaxQuantity = 100_000_000

// Validate checks a purchase as an administrator gives it.
func (p Purchase) Validate() error {
	var errs []string
	if strings.TrimSpace(p.PO) == "" {
		errs = append(errs, "a purchase needs a purchase order number (--po)")
	}
	if strings.TrimSpace(p.Item) == "" {
		errs = append(errs, "a purchase needs an item (what was bought, --item)")
	}
	if p.Quantity <= 0 {
		errs = append(errs, fmt.Sprintf("quantity %d: a purchase's quantity is a positive number", p.Quantity))
	} else if p.Quantity > MaxQuantity {
		errs = append(errs, fmt.Sprintf("quantity %d: at most %d", p.Quantity, MaxQuantity))
	}
	if p.UnitPrice < 0 || p.UnitPrice > MaxMoney {
		errs = append(errs, fmt.Sprintf("unit price %s: from 0 to %s", p.UnitPrice, MaxMoney))
	}
	switch p.Type {
	case PurchaseLicense:
	case PurchaseSubscription:
		if p.Effective.IsZero() || p.Expiry.IsZero() {
			errs = append(errs, "a subscription purchase needs an effective date and an expiry date (--effective, --expiry)")
		}
	case PurchaseMaintenance:
		if p.Effective.IsZero() {
			errs = append(errs, "a maintenance purchase needs an effective date, the first day covered (--effective); its expiry date, the last day covered, may be left out for maintenance that never ends")
		}
	default:
		errs = append(errs, fmt.Sprintf("purchase type %q: want license, subscription or maintenance", p.Type))
	}
	if !p.Effective.IsZero() && !p.Expiry.IsZero() && p.Expiry < p.Effective {
		errs = append(errs, fmt.Sprintf("expiry date %s is before the effective date %s: the expiry is the last day covered", p.Expiry, p.Effective))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// Validate checks a license's own fields as an administrator gives them.
func (l License) Validate() error {
	var errs []string
	if strings.TrimSpace(l.Name) == "" {
		errs = append(errs, "a license needs a name")
	}
	switch l.Type {
	case TypeDevice, TypeUser:
	default:
		errs = append(errs, fmt.Sprintf("license type %q: want device (per computer) or user (per primary user)", l.Type))
	}
	switch l.Duration {
	case Perpetual:
	case Subscription, TimeLimited:
		if l.Expiry.IsZero() {
			errs = append(errs, fmt.Sprintf("a %s license needs an expiry date (--expiry YYYY-MM-DD)", l.Duration))
		}
	default:
		errs = append(errs, fmt.Sprintf("duration %q: want perpetual, subscription or time-limited", l.Duration))
	}
	if l.Extra < 0 || l.Extra > MaxQuantity {
		errs = append(errs, fmt.Sprintf("extra entitlements %d: from 0 to %d", l.Extra, MaxQuantity))
	}
	if l.UnitPrice < 0 || l.UnitPrice > MaxMoney {
		errs = append(errs, fmt.Sprintf("unit price %s: from 0 to %s", l.UnitPrice, MaxMoney))
	}
	if !slices.Contains(Statuses, l.Status) {
		errs = append(errs, fmt.Sprintf("status %q: want one of %s", l.Status, strings.Join(Statuses, ", ")))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// CheckSplit checks that the links of one purchase (with the one being
// added or changed among them) do not give away more than it bought.
func CheckSplit(p Purchase, links []Link) error {
	total := 0
	for _, l := range links {
		if l.Quantity <= 0 {
			return fmt.Errorf("quantity %d for license %s: a link takes a positive quantity", l.Quantity, l.License)
		}
		total += l.Quantity
	}
	if total > p.Quantity {
		var parts []string
		for _, l := range links {
			parts = append(parts, fmt.Sprintf("%d to %s", l.Quantity, l.License))
		}
		name := "purchase " + p.PO
		if p.ID != 0 {
			name = fmt.Sprintf("purchase %d (%s)", p.ID, p.PO)
		}
		return fmt.Errorf("%s bought %d but its links would take %d (%s): lower a link's quantity", name, p.Quantity, total, strings.Join(parts, ", "))
	}
	return nil
}

// covers reports whether today falls between the purchase's effective
// and expiry dates, both inclusive; a blank date is open.
func (p Purchase) covers(today Date) bool {
	return (p.Effective.IsZero() || p.Effective <= today) && (p.Expiry.IsZero() || today <= p.Expiry)
}

// Snapshot is everything the reports read, as the store holds it now.
type Snapshot struct {
	Licenses  []License
	Purchases []Purchase
	Links     []Link
}

// linked is a license's links with their purchases.
type linked struct {
	link     Link
	purchase *Purchase
}

func (s *Snapshot) byLicense() map[string][]linked {
	ps := make(map[int64]*Purchase, len(s.Purchases))
	for i := range s.Purchases {
		ps[s.Purchases[i].ID] = &s.Purchases[i]
	}
	out := make(map[string][]linked, len(s.Licenses))
	for _, l := range s.Links {
		if p := ps[l.Purchase]; p != nil {
			out[l.License] = append(out[l.License], linked{l, p})
		}
	}
	return out
}

// Entitlements is a license's position today from its purchases.
type Entitlements struct {
	// Purchased is the entitlements today: license purchases, current
	// subscriptions and extra entitlements (for a product license, what
	// its signed file grants plus extra).
	Purchased int `json:"purchased"`
	// Maintenance is the entitlements covered by maintenance today.
	Maintenance    int  `json:"maintenance"`
	HasMaintenance bool `json:"has_maintenance"`
	// HadMaintenance: some maintenance purchase is linked, current or not.
	HadMaintenance bool `json:"-"`
}

// entitlements sums a license's links as of today. Expired subscriptions
// give nothing: after their expiry date their entitlements fall to zero.
func entitlements(l License, links []linked, today Date) Entitlements {
	e := Entitlements{Purchased: l.Extra}
	if l.Kind == KindProduct {
		e.Purchased += l.Granted
	}
	for _, k := range links {
		p := k.purchase
		switch p.Type {
		case PurchaseLicense:
			if l.Kind == KindSoftware {
				e.Purchased += k.link.Quantity
			}
		case PurchaseSubscription:
			if l.Kind == KindSoftware && p.covers(today) {
				e.Purchased += k.link.Quantity
			}
		case PurchaseMaintenance:
			e.HadMaintenance = true
			if p.covers(today) {
				e.Maintenance += k.link.Quantity
				e.HasMaintenance = true
			}
		}
	}
	return e
}

// unitPrice is the license's own (override) price, or else that of its
// most recent license or subscription purchase.
func unitPrice(l License, links []linked) Money {
	if l.UnitPrice > 0 {
		return l.UnitPrice
	}
	var best *Purchase
	for _, k := range links {
		p := k.purchase
		if p.Type == PurchaseMaintenance {
			continue
		}
		if best == nil || p.Date > best.Date || (p.Date == best.Date && p.ID > best.ID) {
			best = p
		}
	}
	if best == nil {
		return 0
	}
	return best.UnitPrice
}

// NonConsuming are the computer statuses whose installations consume no
// software license (a deleted computer consumes nothing either): the
// machine is out of service for good. Missing or In Stock machines keep
// their software, and keep consuming.
var NonConsuming = []string{"Retired", "Disposed"}

// CheckName checks the name of an application or a license.
func CheckName(what, name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return fmt.Errorf("%s name is empty", what)
	case name != strings.TrimSpace(name):
		return fmt.Errorf("%s name %q has leading or trailing spaces", what, name)
	case len(name) > 128:
		return fmt.Errorf("%s name of %d bytes: at most 128", what, len(name))
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("%s name %q holds a control character", what, name)
	}
	return nil
}
