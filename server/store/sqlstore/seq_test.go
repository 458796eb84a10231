package sqlstore

import (
	"context"
	"errors"
	"testing"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/store"
)

// Each request is applied once, whatever the gaps between a node's
// sequence numbers: a number the store may have forgotten is refused, and
// every number it accepts and has applied is answered as a repeat.
func TestSequenceWindowWithGaps(t *testing.T) {
	db := swStore(t, nil)
	n := swEnroll(t, db)
	post := func(seq uint64) (store.Outcome, error) {
		req := protocol.InventoryRequest{BasicHash: n.basicHash}
		return db.PostInventory(context.Background(), store.Request{NodeID: n.id, Seq: seq, Kind: protocol.KindInventory}, &req)
	}
	applied := map[uint64]bool{n.seq: true}
	// Jumps of every size, some numbers out of order.
	for _, seq := range []uint64{2, 3, 40, 39, 41, 300, 45, 301, 333, 700, 690, 701, 1000, 1031, 1032, 5000, 4745, 5001} {
		out, err := post(seq)
		if errors.Is(err, store.ErrStaleSeq) {
			continue
		}
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		if out.Repeat != applied[seq] {
			t.Fatalf("seq %d: repeat %v, applied before %v", seq, out.Repeat, applied[seq])
		}
		applied[seq] = true
	}
	var newest uint64
	for s := range applied {
		newest = max(newest, s)
	}
	// Each applied number is a repeat or refused, never applied again;
	// the window's newest numbers are all remembered.
	for s := range applied {
		out, err := post(s)
		switch {
		case errors.Is(err, store.ErrStaleSeq) && s+store.SeqWindow <= newest:
		case err == nil && out.Repeat:
		default:
			t.Fatalf("seq %d again (newest %d): repeat %v, err %v", s, newest, out.Repeat, err)
		}
	}
	// Far below the newest: refused, not applied.
	if _, err := post(newest - store.SeqWindow - 40); !errors.Is(err, store.ErrStaleSeq) {
		t.Fatalf("seq far below the window: err %v, want ErrStaleSeq", err)
	}
	// Just inside the window and never used: applied.
	if out, err := post(newest - store.SeqWindow + 1); err != nil || out.Repeat {
		t.Fatalf("seq inside the window: repeat %v, err %v", out.Repeat, err)
	}
}
