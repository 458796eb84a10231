package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tallyhq/tally/agent/collect"
	"github.com/tallyhq/tally/agent/spool"
	"github.com/tallyhq/tally/agent/state"
	"github.com/tallyhq/tally/agent/trusted"
	"github.com/tallyhq/tally/common/activation"
	"github.com/tallyhq/tally/common/machineid"
	"github.com/tallyhq/tally/protocol"
)

// MachineFingerprint is this machine's fingerprint, to which activation
// records are bound.
func (a *Agent) MachineFingerprint(ctx context.Context) string {
	return machineid.Fingerprint(collect.Hints(ctx, collect.Options{InstanceID: a.instanceID, MachineID: a.enr.MachineID}))
}

// call sends one interactive request (not spooled) with a fresh sequence
// number. A definitive refusal drops the agent's records and leases.
func (a *Agent) call(ctx context.Context, kind protocol.Kind, in, out any) (protocol.Response, error) {
	seq, err := a.dir.AllocateSeq()
	if err != nil {
		return protocol.Response{}, err
	}
	resp, err := a.client.Call(ctx, kind, seq, in, out)
	if err != nil {
		a.dropIfRefused(err)
	}
	return resp, a.refusal(err)
}

// refusedForGood reports whether err is the server's definitive refusal of
// this agent's key: revoked (the computer deleted, blocked or retired by an
// uninstall) or not enrolled. Only a decoded answer of the pinned server
// carries a status, so an unreachable or impostor server, or a busy one,
// never counts.
func refusedForGood(err error) bool {
	var pe *protocol.Error
	return errors.As(err, &pe) && (pe.Status == protocol.StatusRevoked || pe.Status == protocol.StatusNotEnrolled)
}

// dropIfRefused removes every activation record and lease of this agent
// when err is the server's definitive refusal of its key: the records are
// bound to that key, which can never be valid again, and a record left
// behind would let 'check' pass on a seat the server has given to another
// machine. It returns what it removed, each with the reason, logged.
func (a *Agent) dropIfRefused(err error) []protocol.ActivationState {
	if !refusedForGood(err) {
		return nil
	}
	return a.dropAll("the server refuses this agent: " + err.Error())
}

// dropAll removes every activation record and lease of this agent, logging
// reason for each, and returns the records removed.
func (a *Agent) dropAll(reason string) []protocol.ActivationState {
	var removed []protocol.ActivationState
	ts, terr := a.trustedStore()
	if terr == nil {
		ids, terr := ts.IDs()
		if terr != nil {
			a.log.Error("could not list activation records to remove them", "err", terr)
		}
		for _, id := range ids {
			if err := ts.Remove(id); err != nil {
				a.log.Error("could not remove an activation record", "activation_id", id, "err", err)
				continue
			}
			a.log.Warn("activation record removed", "activation_id", id, "reason", reason)
			removed = append(removed, protocol.ActivationState{ActivationID: id, Reason: reason})
		}
	} else {
		a.log.Error("could not open trusted storage to remove activation records", "err", terr)
	}
	lerr := a.dir.WithLock(func() error {
		ls, err := a.dir.Leases()
		if err != nil || len(ls) == 0 {
			return err
		}
		for p := range ls {
			a.log.Warn("lease dropped", "product", p, "reason", reason)
		}
		return a.dir.SaveLeases(map[string]state.Lease{})
	})
	if lerr != nil {
		a.log.Error("could not drop the leases", "err", lerr)
	}
	return removed
}

func (a *Agent) trustedStore() (*trusted.Store, error) { return trusted.Open(a.dir.Path) }

func (a *Agent) expect(ctx context.Context) activation.Expect {
	return activation.Expect{Fingerprint: a.enr.Fingerprint, Node: a.enr.NodeID, Machine: a.MachineFingerprint(ctx), Now: a.clock.Now()}
}

// Activate asks the server for a seat of a node-locked Activation ID and
// keeps the signed record in trusted storage. Activating an ID this machine
// holds already changes nothing and says so.
func (a *Agent) Activate(ctx context.Context, id string) (protocol.ActivateResponse, error) {
	var resp protocol.ActivateResponse
	exp := a.expect(ctx)
	if _, err := a.call(ctx, protocol.KindActivate, &protocol.ActivateRequest{ActivationID: id, Machine: exp.Machine}, &resp); err != nil {
		return resp, err
	}
	if len(resp.Record) > 0 {
		if _, err := activation.Verify(resp.Record, exp); err != nil {
			return resp, fmt.Errorf("the server's activation record does not verify on this machine: %w", err)
		}
		ts, err := a.trustedStore()
		if err != nil {
			return resp, err
		}
		if err := ts.Put(id, resp.Record); err != nil {
			return resp, err
		}
		a.log.Info("activation record stored", "activation_id", id, "result", resp.Result.String())
	}
	return resp, nil
}

// DeactivateResult tells what a deactivation did.
type DeactivateResult struct {
	HadRecord bool
	// Queued is true when the server could not be reached: the record is
	// gone from this machine and the return waits in the spool.
	Queued bool
	Answer protocol.DeactivateResponse
}

// Deactivate removes the record from trusted storage at once and returns
// the seat to the server. When the server cannot be reached, the return is
// spooled (never dropped) and sent when it can; the server frees the seat
// once, whatever happens to the retries.
func (a *Agent) Deactivate(ctx context.Context, id string) (DeactivateResult, error) {
	var res DeactivateResult
	ts, err := a.trustedStore()
	if err != nil {
		return res, err
	}
	if _, err := ts.Get(id); err == nil {
		res.HadRecord = true
	} else if !errors.Is(err, os.ErrNotExist) {
		return res, err
	}
	if err := ts.Remove(id); err != nil {
		return res, err
	}
	seq, err := a.Enqueue(protocol.KindDeactivate, spool.Event, "deactivate:"+id, &protocol.DeactivateRequest{ActivationID: id})
	if err != nil {
		return res, err
	}
	fr, ferr := a.Flush(ctx)
	if resp, ok := fr.Answers[seq]; ok {
		if err := protocol.Unmarshal(resp.Body, &res.Answer); err != nil {
			return res, fmt.Errorf("malformed deactivation answer: %w", err)
		}
		return res, nil
	}
	if ferr != nil {
		res.Queued = true
		a.log.Warn("server unreachable: the return of the seat is queued", "activation_id", id, "err", ferr)
		return res, nil
	}
	res.Queued = true
	return res, nil
}

// LocalActivation is one record in trusted storage and whether it verifies
// on this machine.
type LocalActivation struct {
	ID       string                    `json:"activation_id"`
	Product  string                    `json:"product,omitempty"`
	Verified bool                      `json:"verified"`
	Problem  string                    `json:"problem,omitempty"`
	Record   protocol.ActivationRecord `json:"record"`
}

// Activations lists the records in trusted storage, each verified here.
func (a *Agent) Activations(ctx context.Context) ([]LocalActivation, error) {
	ts, err := a.trustedStore()
	if err != nil {
		return nil, err
	}
	ids, err := ts.IDs()
	if err != nil {
		return nil, err
	}
	exp := a.expect(ctx)
	out := []LocalActivation{}
	for _, id := range ids {
		la := LocalActivation{ID: id}
		data, err := ts.Get(id)
		if err != nil {
			la.Problem = err.Error()
		} else if rec, err := activation.Verify(data, exp); err != nil {
			la.Problem = err.Error()
			la.Record = rec
			la.Product = rec.Product
		} else {
			la.Verified, la.Record, la.Product = true, rec, rec.Product
		}
		if la.Record.ActivationID != "" && la.Record.ActivationID != id {
			la.Verified, la.Problem = false, "the record is for "+la.Record.ActivationID+", not "+id
		}
		out = append(out, la)
	}
	return out, nil
}

// ErrNotLicensed is returned by Check when no record proves the product.
var ErrNotLicensed = errors.New("not licensed on this machine")

// Check proves offline that this machine holds a node-locked seat of the
// product: a record in trusted storage that verifies here.
func (a *Agent) Check(ctx context.Context, product string) (LocalActivation, error) {
	las, err := a.Activations(ctx)
	if err != nil {
		return LocalActivation{}, err
	}
	var problems []string
	for _, la := range las {
		if la.Verified && la.Product == product {
			return la, nil
		}
		// A record that does not verify cannot be trusted to say which
		// product it is for: report it whatever it claims.
		if !la.Verified && (la.Product == product || la.Product == "") {
			problems = append(problems, la.ID+": "+la.Problem)
		}
	}
	if len(problems) > 0 {
		return LocalActivation{}, fmt.Errorf("%w: %s", ErrNotLicensed, problems)
	}
	return LocalActivation{}, fmt.Errorf("%w: no activation record of %s (activate one with 'tally-agent activate ID')", ErrNotLicensed, product)
}

// SyncActivations asks the server which records are still valid and removes
// the orphaned ones (returned by an administrator, ID deactivated or
// expired, computer retired or deleted), logging why. A server that refuses
// this agent's key (deleted, blocked, uninstalled) has no valid record for
// it: every record goes, and the refusal is returned too. It returns what
// it removed.
func (a *Agent) SyncActivations(ctx context.Context) ([]protocol.ActivationState, error) {
	ts, err := a.trustedStore()
	if err != nil {
		return nil, err
	}
	ids, err := ts.IDs()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	var resp protocol.ActivationStatusResponse
	seq, err := a.dir.AllocateSeq()
	if err != nil {
		return nil, err
	}
	if _, err := a.client.Call(ctx, protocol.KindActivationStatus, seq, &protocol.ActivationStatusRequest{ActivationIDs: ids}, &resp); err != nil {
		return a.dropIfRefused(err), a.refusal(err)
	}
	var removed []protocol.ActivationState
	for _, st := range resp.States {
		if st.Valid {
			continue
		}
		if err := ts.Remove(st.ActivationID); err != nil {
			return removed, err
		}
		a.log.Warn("activation record revoked by the server and removed", "activation_id", st.ActivationID, "reason", st.Reason)
		removed = append(removed, st)
	}
	return removed, nil
}

// LeaseCheckout checks out a concurrent seat of a product for ttl (0: the
// server's default) and records it, so a running agent keeps it alive with
// heartbeats. A ttl the protocol cannot carry is refused before sending.
func (a *Agent) LeaseCheckout(ctx context.Context, product string, ttl time.Duration) (protocol.LeaseResponse, error) {
	var resp protocol.LeaseResponse
	secs, err := protocol.LeaseTTLSeconds(ttl)
	if err != nil {
		return resp, err
	}
	if _, err := a.call(ctx, protocol.KindLeaseCheckout, &protocol.LeaseCheckoutRequest{Product: product, TTL: secs}, &resp); err != nil {
		return resp, err
	}
	if resp.Granted {
		err := a.dir.WithLock(func() error {
			ls, err := a.dir.Leases()
			if err != nil {
				return err
			}
			ls[product] = state.Lease{Product: product, TTL: time.Duration(resp.TTL) * time.Second, Expires: time.Unix(resp.Expires, 0), LastBeat: a.clock.Now()}
			return a.dir.SaveLeases(ls)
		})
		if err != nil {
			return resp, err
		}
	}
	return resp, nil
}

// LeaseCheckin returns a concurrent seat. When the server cannot be
// reached the check-in is spooled; the lease runs out by itself meanwhile.
func (a *Agent) LeaseCheckin(ctx context.Context, product string) (protocol.LeaseResponse, bool, error) {
	if err := a.dir.WithLock(func() error {
		ls, err := a.dir.Leases()
		if err != nil {
			return err
		}
		delete(ls, product)
		return a.dir.SaveLeases(ls)
	}); err != nil {
		return protocol.LeaseResponse{}, false, err
	}
	seq, err := a.Enqueue(protocol.KindLeaseCheckin, spool.Event, "lease-checkin:"+product, &protocol.LeaseRequest{Product: product})
	if err != nil {
		return protocol.LeaseResponse{}, false, err
	}
	fr, _ := a.Flush(ctx)
	if resp, ok := fr.Answers[seq]; ok {
		var lr protocol.LeaseResponse
		err := protocol.Unmarshal(resp.Body, &lr)
		return lr, false, err
	}
	return protocol.LeaseResponse{}, true, nil
}

// Heartbeat renews the leases that are a third of their TTL old; a lease
// the server no longer holds is dropped (and logged).
func (a *Agent) Heartbeat(ctx context.Context) error {
	ls, err := a.dir.Leases()
	if err != nil || len(ls) == 0 {
		return err
	}
	now := a.clock.Now()
	changed := map[string]*state.Lease{}
	for p, l := range ls {
		if now.Sub(l.LastBeat) < l.TTL/3 {
			continue
		}
		var resp protocol.LeaseResponse
		if _, err := a.call(ctx, protocol.KindLeaseHeartbeat, &protocol.LeaseRequest{Product: p}, &resp); err != nil {
			return err
		}
		l := l
		if !resp.Granted {
			a.log.Warn("lease lost", "product", p, "result", resp.Result.String(), "reason", resp.Message)
			changed[p] = nil
			continue
		}
		l.Expires, l.LastBeat = time.Unix(resp.Expires, 0), now
		changed[p] = &l
	}
	if len(changed) == 0 {
		return nil
	}
	return a.dir.WithLock(func() error {
		cur, err := a.dir.Leases()
		if err != nil {
			return err
		}
		for p, l := range changed {
			if _, still := cur[p]; !still {
				continue // checked in meanwhile
			}
			if l == nil {
				delete(cur, p)
			} else {
				cur[p] = *l
			}
		}
		return a.dir.SaveLeases(cur)
	})
}

// NextHeartbeat says when a lease next needs a heartbeat (a third of its
// TTL after the last one); zero without leases.
func (a *Agent) NextHeartbeat() time.Time {
	ls, err := a.dir.Leases()
	if err != nil || len(ls) == 0 {
		return time.Time{}
	}
	var soonest time.Time
	for _, l := range ls {
		at := l.LastBeat.Add(l.TTL / 3)
		if soonest.IsZero() || at.Before(soonest) {
			soonest = at
		}
	}
	return soonest
}
