package engine

import (
	"fmt"
	"sort"
	"time"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/dates"
)

// ActivationID is what the engine knows of a node-locked Activation ID.
type ActivationID struct {
	ID       string
	Product  string
	License  *License // the node-locked license it draws from; nil if removed
	Quantity int
	Expires  time.Time // zero: as long as its license
	Active   bool      // false once an administrator deactivated it
	Live     int       // machines holding a seat of it now
}

// Valid reports whether the ID can grant seats at now.
func (a *ActivationID) Valid(now time.Time) bool {
	return (a.Expires.IsZero() || now.Before(a.Expires)) && a.License != nil && a.License.Valid(now)
}

// Activate decides a machine's request for a seat of an Activation ID:
// idempotent for a machine that holds one already, refused for a computer
// whose status is not Active (whatever the ID's state: it consumes no
// license), then for an inactive, expired or unknown ID, then first come
// first served up to the ID's quantity.
func (e *Engine) Activate(a *ActivationID, holdsOne bool, status string, now time.Time) (protocol.ActivationResult, string) {
	switch {
	case a == nil:
		return protocol.ActivationUnknown, "no such Activation ID on this server: check the ID, or ask the administrator for the output of 'tally-server activation list'"
	case holdsOne:
		return protocol.ActivationAlready, fmt.Sprintf("this machine already holds a seat of %s (%s); nothing changed", a.ID, a.Product)
	case status != catalog.StatusActive:
		return protocol.ActivationRefused, notActive(status)
	case !a.Active:
		return protocol.ActivationInactive, fmt.Sprintf("Activation ID %s was deactivated by an administrator; ask for a new one", a.ID)
	case !a.Valid(now):
		return protocol.ActivationExpired, fmt.Sprintf("Activation ID %s has expired", a.ID)
	case a.Live >= a.Quantity:
		return protocol.ActivationNoSeat, fmt.Sprintf("no free seat: all %d seats of %s are activated on other machines; deactivate one there, or ask the administrator to return a seat", a.Quantity, a.ID)
	}
	return protocol.ActivationOK, fmt.Sprintf("seat %d of %d of %s (%s)", a.Live+1, a.Quantity, a.ID, a.Product)
}

// notActive says why a computer in status gets no node-locked or concurrent
// seat.
func notActive(status string) string {
	return fmt.Sprintf("this computer's status is %s: it consumes no license until an administrator sets it Active", status)
}

// UnknownLeaseProduct is the answer to a lease request for a product the
// catalog does not know.
func UnknownLeaseProduct(product string) (protocol.ActivationResult, string) {
	return protocol.ActivationUnknown, fmt.Sprintf("the server knows no product %q: check the name, or ask the administrator for the list of products ('tally-server products list')", product)
}

// LeaseCheckout is the decision on a checkout: the license the lease is
// drawn from, or why none (Result and Message) and when a seat is expected
// back.
type LeaseCheckout struct {
	License      *License
	Result       protocol.ActivationResult
	Message      string
	ExpectedBack time.Time
}

// DecideCheckout decides a checkout of a concurrent seat of product by a
// computer in status: refused for a computer that is not Active; otherwise
// drawn from the valid license with a free seat that expires soonest (see
// CheckoutLease); refused as expired when every license of the product has
// expired, and as no free seat otherwise.
func (e *Engine) DecideCheckout(product, status string, licenses []*License, expiring []time.Time, now time.Time) LeaseCheckout {
	if status != catalog.StatusActive {
		return LeaseCheckout{Result: protocol.ActivationRefused, Message: notActive(status)}
	}
	l, back := e.CheckoutLease(licenses, expiring, now)
	if l != nil {
		return LeaseCheckout{License: l, Result: protocol.ActivationOK}
	}
	d := LeaseCheckout{Result: protocol.ActivationNoSeat, Message: "no free seat of " + product, ExpectedBack: back}
	valid := 0
	for _, l := range licenses {
		if l.Valid(now) {
			valid++
		}
	}
	switch {
	case !back.IsZero():
		d.Message += fmt.Sprintf("; one is expected back by %s unless its holder renews it", dates.Instant(back, e.zone))
	case len(licenses) == 0:
		d.Message = "no concurrent license of " + product + " is imported: ask the administrator to import one"
	case valid == 0:
		d.Result, d.Message = protocol.ActivationExpired, "every concurrent license of "+product+" has expired: ask the administrator to renew one"
	}
	return d
}

// CheckoutLease picks the concurrent license a lease is drawn from: the
// valid license with a free seat that expires soonest. When none has room,
// it says when the soonest lease runs out (expiring holds the expiry of
// every live lease of the product).
func (e *Engine) CheckoutLease(licenses []*License, expiring []time.Time, now time.Time) (*License, time.Time) {
	var cands []*License
	for _, l := range licenses {
		if l.Valid(now) && l.Held < l.Seats {
			cands = append(cands, l)
		}
	}
	if len(cands) > 0 {
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
		return cands[0], time.Time{}
	}
	var soonest time.Time
	for _, t := range expiring {
		if t.After(now) && (soonest.IsZero() || t.Before(soonest)) {
			soonest = t
		}
	}
	return nil, soonest
}
