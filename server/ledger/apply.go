package ledger

import (
	"context"
	"fmt"

	"github.com/tallyhq/tally/server/store"
)

// seqLag is how far the sequence number recorded in a node may lag the
// newest applied: records below the window are pruned in one go when the
// lag reaches it rather than one by one, and the node row is written then
// only (the applied records hold the newest number meanwhile).
const seqLag = 32

// apply runs fn for request r once: a repeat of an applied (node, seq) is
// answered with the recorded answer; a sequence number too old to tell is
// refused; otherwise fn's answer is encoded and recorded with the request,
// in the same transaction as fn's effects.
func (l *Ledger) apply(ctx context.Context, r store.Request, fn func(tx Tx, n *Node) (any, error)) (store.Outcome, error) {
	var out store.Outcome
	err := l.backend.Write(ctx, func(tx Tx) error {
		out = store.Outcome{}
		rec, err := tx.NodeRequest(r)
		if err != nil {
			return err
		}
		if rec.Revoked {
			if rec.Repeat && rec.RevokedReason == store.RevokedUninstall {
				// A request applied before the agent's goodbye retired
				// its key (the goodbye itself, its answer lost): the
				// first outcome, so that an uninstall retried completes.
				out = store.Outcome{Body: rec.Answer, Repeat: true}
				return nil
			}
			return &store.RevokedError{Reason: rec.RevokedReason, ComputerID: rec.ComputerID}
		}
		if rec.Repeat {
			out = store.Outcome{Body: rec.Answer, Repeat: true}
			return nil
		}
		seq := int64(r.Seq)
		// Records are pruned only up to MaxSeq-SeqWindow, so every number
		// above that is either recorded or new: refusing below it keeps
		// each request applied once (and the store remembers at least the
		// window's SeqWindow newest numbers, up to seqLag-1 more).
		if seq <= rec.MaxSeq-store.SeqWindow {
			return fmt.Errorf("%w: %d is more than %d behind the newest recorded (%d)", store.ErrStaleSeq, seq, store.SeqWindow, rec.MaxSeq)
		}
		n := rec.Node
		resp, err := fn(tx, &n)
		if err != nil {
			return err
		}
		body, err := encodeAnswer(resp)
		if err != nil {
			return err
		}
		if err := tx.RecordRequest(r, body); err != nil {
			return err
		}
		if seq >= rec.MaxSeq+seqLag {
			if err := tx.AdvanceSeq(r.NodeID, seq, seq-store.SeqWindow); err != nil {
				return err
			}
		}
		out.Body = body
		return nil
	})
	return out, err
}
