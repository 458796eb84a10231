package ledger

import (
	"fmt"
	"time"

	"github.com/tallyhq/tally/server/engine"
	"github.com/tallyhq/tally/server/store"
)

// MarkMissing applies the stale-node policy to a computer not seen for
// after: it becomes Missing, and the seats whose product that status frees
// are freed in the same transaction.
func (l *Ledger) MarkMissing(tx Tx, id int64, after time.Duration, actor string) ([]store.SeatChange, error) {
	c, _, err := tx.Computer(id)
	if err != nil {
		return nil, err
	}
	d := l.engine.StatusChange(c, StatusMissing)
	freed, err := ApplyDecision(tx, d, actor, "")
	if err != nil {
		return nil, err
	}
	if err := tx.SetStatus(id, StatusMissing); err != nil {
		return nil, err
	}
	if err := tx.SyncDevices(id, actor, "not seen for "+after.String()+": Missing"); err != nil {
		return nil, err
	}
	return freed, tx.AddEvent(store.Event{Actor: actor, Kind: store.EventStatus, ComputerID: id,
		Reason: fmt.Sprintf("Active → Missing: not seen for %s (stale-node policy); %s", after, d.Summary())})
}

// SeatRef names a seat: a computer's seat of a product.
type SeatRef struct {
	ComputerID int64
	Product    string
}

// FreeExcess frees the given seats of a license that holds more than its
// verified file grants (the newest seats, so that a first come keeps its
// seat), each audited.
func FreeExcess(tx Tx, license string, seats []SeatRef, granted int, actor string) ([]store.SeatChange, error) {
	var d engine.Decision
	for _, s := range seats {
		d.Effects = append(d.Effects, engine.Effect{Kind: engine.Free, From: license, ComputerID: s.ComputerID, Product: s.Product,
			Reason: fmt.Sprintf("above the %d seats the signed file of license %s grants (the database said more): freed by maintenance", granted, license)})
	}
	return ApplyDecision(tx, d, actor, "")
}
