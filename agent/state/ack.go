package state

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tallyhq/tally/common/atomicfile"
	"github.com/tallyhq/tally/protocol"
)

// AckFile holds what the server last acknowledged of this node's
// inventory: the basis of delta posts.
const AckFile = "inventory-ack.cbor"

// Ack is the inventory the server acknowledged last: the basic inventory's
// hash (and when it was last sent whole), and the software set with the
// server's generation for it. It advances only on the server's answer to
// the post it describes, so a delta is always computed against a state the
// server holds (or the server answers SendFull / SendBasic).
type Ack struct {
	// BasicHash is protocol.BasicInventory.Hash of the last basic inventory
	// the server stored; BasicSentAt is when that post was made.
	BasicHash   string `cbor:"1,keyasint,omitempty"`
	BasicSentAt int64  `cbor:"2,keyasint,omitempty"` // unix milliseconds
	// NeedBasic: the next post carries the whole basic inventory (the
	// server asked for it, or a plug-in was removed).
	NeedBasic bool `cbor:"3,keyasint,omitempty"`

	// Generation is the server's generation of the software set; zero when
	// the server holds none from this agent.
	Generation uint64 `cbor:"4,keyasint,omitempty"`
	// Hash and Count describe Packages (protocol.SetHash).
	Hash     string             `cbor:"5,keyasint,omitempty"`
	Count    uint32             `cbor:"6,keyasint,omitempty"`
	Packages []protocol.Package `cbor:"7,keyasint,omitempty"`
	// NeedFull: the next software inventory is sent whole.
	NeedFull bool `cbor:"8,keyasint,omitempty"`
}

// BasicSent returns BasicSentAt as a time.
func (a *Ack) BasicSent() time.Time {
	if a.BasicSentAt == 0 {
		return time.Time{}
	}
	return time.UnixMilli(a.BasicSentAt)
}

// LoadAck reads the acknowledged state. A missing or damaged file is the
// empty state: the next post is then sent whole, which is always safe.
func (d Dir) LoadAck() (Ack, error) {
	var a Ack
	b, err := os.ReadFile(d.File(AckFile))
	if errors.Is(err, os.ErrNotExist) {
		return a, nil
	}
	if err != nil {
		return a, fmt.Errorf("read acknowledged inventory: %w", err)
	}
	if err := protocol.Unmarshal(b, &a); err != nil {
		return Ack{}, nil
	}
	return a, nil
}

// SaveAck writes the acknowledged state durably. Callers hold the send
// lock: the state belongs to the records sent under it.
func (d Dir) SaveAck(a Ack) error {
	b, err := protocol.Marshal(&a)
	if err != nil {
		return fmt.Errorf("encode acknowledged inventory: %w", err)
	}
	return atomicfile.Write(d.File(AckFile), b, 0o600)
}
