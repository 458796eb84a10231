package runner

import (
	"context"
	"errors"
	"fmt"

	"github.com/tallyhq/tally/agent/spool"
	"github.com/tallyhq/tally/agent/state"
	"github.com/tallyhq/tally/protocol"
)

// goodbyeKey is the spool key of the goodbye for the whole agent.
const goodbyeKey = "goodbye:agent"

// GoodbyeResult tells what the goodbye for the whole agent did.
type GoodbyeResult struct {
	// Answer is the server's answer: every seat it freed. A goodbye sent
	// again after its answer was lost gets the first answer (the server
	// applies it once).
	Answer protocol.GoodbyeResponse
	// Elsewhere is true when another tally-agent process (a running 'run')
	// sent the goodbye and got its answer first.
	Elsewhere bool
	// Gone is true when the server refused the key for good (computer
	// deleted or blocked, key retired or unknown): it holds nothing for
	// this agent, whose seats were freed then, so there is nothing left to
	// say goodbye for.
	Gone bool
}

// Goodbye tells the server this agent is being uninstalled: the server
// frees every seat the machine holds and retires the agent's key. A goodbye
// already queued (an earlier uninstall that could not reach the server) is
// sent instead of a new one: with its own sequence number, the server
// answers it once, or with its first outcome if it was applied already,
// whereas a second goodbye would be refused by the key the first retired.
// It fails, leaving the goodbye queued, when the server cannot be reached
// (or is not the pinned one); a server that refuses the key for good has
// nothing left to free (Gone).
func (a *Agent) Goodbye(ctx context.Context) (GoodbyeResult, error) {
	var res GoodbyeResult
	body, err := protocol.Marshal(&protocol.GoodbyeRequest{Reason: "tally-agent uninstall"})
	if err != nil {
		return res, fmt.Errorf("encode the goodbye: %w", err)
	}
	var seqs []uint64
	err = a.dir.WithLock(func() error {
		if seqs, err = a.queuedGoodbyes(); err != nil || len(seqs) > 0 {
			return err
		}
		seq, err := a.dir.NextSeq()
		if err != nil {
			return err
		}
		seqs = []uint64{seq}
		return a.spool.Put(spool.Record{Seq: seq, Kind: protocol.KindGoodbye, Class: spool.Event, Key: goodbyeKey, Created: a.clock.Now(), Body: body})
	})
	if err != nil {
		return res, fmt.Errorf("queue the goodbye: %w", err)
	}
	fr, ferr := a.Flush(ctx)
	for _, seq := range seqs {
		if resp, ok := fr.Answers[seq]; ok {
			if err := protocol.Unmarshal(resp.Body, &res.Answer); err != nil {
				return res, fmt.Errorf("malformed answer to the goodbye: %w", err)
			}
			a.dropAll("the agent said goodbye: the server freed every seat")
			return res, nil
		}
	}
	if errors.Is(ferr, ErrRefused) {
		// The queued goodbye would only be refused again, or retire the
		// key of a later enrollment: it goes.
		if err := a.dir.WithNamedLock(state.SendLockFile, func() error {
			still, err := a.queuedGoodbyes()
			for _, seq := range still {
				if err == nil {
					err = a.spool.Remove(seq)
				}
			}
			return err
		}); err != nil {
			return res, err
		}
		res.Gone = true
		return res, nil
	}
	if ferr != nil {
		return res, ferr
	}
	// Not answered to this process, yet no longer queued: another process
	// sent it, and a record leaves the spool only once answered.
	still, err := a.queuedGoodbyes()
	if err != nil {
		return res, err
	}
	if len(still) == 0 {
		res.Elsewhere = true
		a.dropAll("the agent said goodbye: the server freed every seat")
		return res, nil
	}
	return res, fmt.Errorf("the goodbye was not answered")
}

// queuedGoodbyes returns the sequence numbers of the goodbyes for the whole
// agent waiting in the spool (more than one only if an older build queued
// one per attempt).
func (a *Agent) queuedGoodbyes() ([]uint64, error) {
	recs, _, err := a.spool.Pending()
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, r := range recs {
		if r.Kind == protocol.KindGoodbye && r.Key == goodbyeKey {
			out = append(out, r.Seq)
		}
	}
	return out, nil
}

// CancelGoodbye removes a goodbye for the whole agent still waiting in the
// spool of dir (an uninstall that could not reach the server), so that an
// agent installed again does not retire its own key at its next post. It
// reports whether there was one.
func CancelGoodbye(dir state.Dir) (bool, error) {
	sp, err := spool.Open(dir.File(state.SpoolDir), spool.Options{})
	if err != nil {
		return false, err
	}
	found := false
	err = dir.WithNamedLock(state.SendLockFile, func() error {
		recs, _, err := sp.Pending()
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Kind == protocol.KindGoodbye && r.Key == goodbyeKey {
				if err := sp.Remove(r.Seq); err != nil {
					return err
				}
				found = true
			}
		}
		return nil
	})
	return found, err
}
