package ledger

import (
	"fmt"
	"strings"

	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/dates"
	"github.com/tallyhq/tally/server/store"
)

// AdminTx is what an administrator's actions on a computer write beyond
// seats and audit.
type AdminTx interface {
	// RemoveComputer marks a computer deleted, revokes its keys (for
	// reason), drops its allocations and duplicate marks, and with block
	// refuses its hints and keys at any later enrollment.
	RemoveComputer(id int64, reason string, block bool) error
	// Hostnames fills in the hostnames of seat changes.
	Hostnames(changes []store.SeatChange)
}

// SetStatus changes a computer's status to status (a name the backend
// knows, as spelled there) and frees, in the same transaction, exactly the
// seats whose product rule names it.
func (l *Ledger) SetStatus(tx Tx, id int64, status, actor string) (store.Change, error) {
	var ch store.Change
	c, hostname, err := tx.Computer(id)
	if err != nil {
		return ch, err
	}
	if c.Status == status {
		ch.Message = fmt.Sprintf("computer %d (%s) is already %s; nothing changed", id, hostname, status)
		return ch, nil
	}
	d := l.engine.StatusChange(c, status)
	if ch.Seats, err = ApplyDecision(tx, d, actor, ""); err != nil {
		return ch, err
	}
	if status != catalog.StatusActive {
		more, err := l.endComputerSeats(tx, id, status, "status set to "+status, actor)
		if err != nil {
			return ch, err
		}
		ch.Seats = append(ch.Seats, more...)
	}
	if err := tx.SetStatus(id, status); err != nil {
		return ch, fmt.Errorf("set status: %w", err)
	}
	if err := tx.SyncDevices(id, actor, "status set to "+status); err != nil {
		return ch, err
	}
	tx.Hostnames(ch.Seats)
	reason := fmt.Sprintf("%s → %s; %s", c.Status, status, store.SeatSummary(ch.Seats))
	ch.Message = fmt.Sprintf("computer %d (%s): %s", id, hostname, reason)
	return ch, tx.AddEvent(store.Event{Actor: actor, Kind: store.EventStatus, ComputerID: id, Reason: reason})
}

// DeleteComputer frees every seat of a computer, revokes its keys, and
// with block refuses its hints and keys at any later enrollment.
func (l *Ledger) DeleteComputer(tx Tx, id int64, block bool, actor string) (store.Change, error) {
	var ch store.Change
	c, hostname, err := tx.Computer(id)
	if err != nil {
		return ch, err
	}
	d := l.engine.Delete(c)
	if ch.Seats, err = ApplyDecision(tx, d, actor, ""); err != nil {
		return ch, err
	}
	more, err := l.endComputerSeats(tx, id, "", "computer deleted", actor)
	if err != nil {
		return ch, err
	}
	ch.Seats = append(ch.Seats, more...)
	reason := store.RevokedDeleted
	if block {
		reason = store.RevokedBlocked
	}
	if err := tx.RemoveComputer(id, reason, block); err != nil {
		return ch, err
	}
	if err := tx.SyncDevices(id, actor, "computer deleted"); err != nil {
		return ch, err
	}
	tx.Hostnames(ch.Seats)
	what := "deleted"
	if block {
		what = "deleted and blocked from enrolling again (until 'tally-server computers unblock')"
	}
	ch.Message = fmt.Sprintf("computer %d (%s) %s; %s", id, hostname, what, store.SeatSummary(ch.Seats))
	return ch, tx.AddEvent(store.Event{Actor: actor, Kind: store.EventDeleted, ComputerID: id, Reason: what + "; " + store.SeatSummary(ch.Seats)})
}

// WhyFacts are what a backend reads to explain a computer's seat of a
// product.
type WhyFacts struct {
	Deleted bool
	Plugins string // the computer's stored plug-in list
	// Refusal is the computer's latest refused post of the product, if any.
	Refusal *Refusal
}

// Refusal counts a computer's refused posts of a product.
type Refusal struct {
	Reason string
	Count  int64
}

// Explain fills in w's plug-in and answer, the sentence an administrator
// reads, from what w already says (seat, status) and f.
func (l *Ledger) Explain(w *store.Why, p *catalog.Product, f WhyFacts) {
	for _, pl := range DecodePlugins(f.Plugins) {
		if p.Matches(pl.Name, pl.Version) {
			w.Plugin = pl.Name + " " + pl.Version
		}
	}
	product := w.Product
	switch {
	case f.Deleted:
		w.Answer = "The computer was deleted: it holds nothing."
	case w.Holds:
		h := w.Seat
		w.Answer = fmt.Sprintf("It holds a seat of %s on license %s since %s: %s.", product, h.License, dates.Instant(h.Since, l.engine.Zone()), h.Reason)
		if h.Allocated {
			w.Answer += " The seat is allocated to it."
		}
		if w.Status != catalog.StatusActive {
			w.Answer += fmt.Sprintf(" Its status %s does not free %s (freed by: %s).", w.Status, product, p.FreedByText())
		}
	case w.Status != catalog.StatusActive:
		w.Answer = fmt.Sprintf("It holds no seat of %s: its status is %s, and computers that are not Active consume nothing until set Active.", product, w.Status)
	case w.Plugin == "" && (p.RequiresPlugin || p.Qualifies(catalog.TriggerPluginPresence)):
		w.Answer = fmt.Sprintf("It holds no seat of %s: plug-in %s (%s) is not in its basic inventory.", product, p.Plugin, p.PluginVersions)
	default:
		w.Answer = fmt.Sprintf("It holds no seat of %s.", product)
		if f.Refusal != nil {
			w.Answer += fmt.Sprintf(" Its %s data was refused %d times, last as %s.", product, f.Refusal.Count, f.Refusal.Reason)
		} else {
			w.Answer += fmt.Sprintf(" It has made no qualifying post yet (%s consumes on: %s).", product, triggersText(p))
		}
	}
}

func triggersText(p *catalog.Product) string {
	s := make([]string, len(p.Qualifying))
	for i, t := range p.Qualifying {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}
