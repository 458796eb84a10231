package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tallyhq/tally/common/activation"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/engine"
	"github.com/tallyhq/tally/server/store"
)

// Activate binds a seat of a node-locked Activation ID to the node's
// machine and answers with the signed record.
func (l *Ledger) Activate(ctx context.Context, r store.Request, body *protocol.ActivateRequest) (store.Outcome, error) {
	return l.apply(ctx, r, func(tx Tx, n *Node) (any, error) {
		if _, err := tx.ExpireActivations(store.ActorSystem); err != nil {
			return nil, err
		}
		if err := reactivate(tx, n); err != nil {
			return nil, err
		}
		a, err := tx.ActivationID(body.ActivationID)
		if err != nil {
			return nil, err
		}
		var held Binding
		holds := false
		if a != nil {
			if held, holds, err = tx.Binding(a.ID, n.ComputerID); err != nil {
				return nil, err
			}
		}
		result, msg := l.engine.Activate(a, holds, n.Status, tx.Now())
		resp := &protocol.ActivateResponse{Result: result, Message: msg}
		switch result {
		case protocol.ActivationAlready:
			if holds && body.Machine != "" {
				resp.Record = held.Record
			}
		case protocol.ActivationNoSeat:
			if err := tx.CountRefusal(catalog.KindNodeLocked, n.ComputerID, a.Product, protocol.VerdictDeniedNoSeat, n.ID, store.NodeActor(n.ID)); err != nil {
				return nil, err
			}
		case protocol.ActivationOK:
			rec := protocol.ActivationRecord{ActivationID: a.ID, Product: a.Product, Node: n.ID, Machine: body.Machine, IssuedAt: tx.Now().Unix()}
			if !a.Expires.IsZero() {
				rec.Expires = a.Expires.Unix()
			}
			if l.opts.RecordKey == nil {
				return nil, errors.New("the store has no key to sign activation records")
			}
			signed, err := activation.Sign(l.opts.RecordKey, rec)
			if err != nil {
				return nil, err
			}
			if err := tx.Bind(a, *n, body.Machine, signed); err != nil {
				return nil, fmt.Errorf("bind activation: %w", err)
			}
			resp.Record = signed
			if err := tx.AddEvent(store.Event{Actor: store.NodeActor(n.ID), Kind: store.EventActivated, ComputerID: n.ComputerID, NodeID: n.ID,
				Product: a.Product, Reason: a.ID + ": " + msg}); err != nil {
				return nil, err
			}
		}
		return resp, nil
	})
}

// Deactivate returns the node's seat of an Activation ID. A seat already
// returned (by the administrator, or by an earlier deactivation) is not
// freed again.
func (l *Ledger) Deactivate(ctx context.Context, r store.Request, body *protocol.DeactivateRequest) (store.Outcome, error) {
	return l.apply(ctx, r, func(tx Tx, n *Node) (any, error) {
		if _, err := tx.ExpireActivations(store.ActorSystem); err != nil {
			return nil, err
		}
		b, ok, err := tx.Binding(body.ActivationID, n.ComputerID)
		if err != nil {
			return nil, err
		}
		if !ok {
			return &protocol.DeactivateResponse{Result: protocol.ActivationNotHeld,
				Message: "this machine holds no seat of " + body.ActivationID + " on the server (already returned): nothing to free"}, nil
		}
		if err := tx.EndBinding(b, "deactivated on the machine"); err != nil {
			return nil, err
		}
		if err := tx.AddEvent(store.Event{Actor: store.NodeActor(n.ID), Kind: store.EventActReturned, ComputerID: n.ComputerID, NodeID: n.ID,
			Product: b.Product, Reason: body.ActivationID + ": deactivated on the machine; the seat is free"}); err != nil {
			return nil, err
		}
		return &protocol.DeactivateResponse{Result: protocol.ActivationReturned, Message: "seat of " + body.ActivationID + " returned"}, nil
	})
}

// ActivationStatus tells which of the node's records are still valid.
func (l *Ledger) ActivationStatus(ctx context.Context, r store.Request, body *protocol.ActivationStatusRequest) (store.Outcome, error) {
	return l.apply(ctx, r, func(tx Tx, n *Node) (any, error) {
		if _, err := tx.ExpireActivations(store.ActorSystem); err != nil {
			return nil, err
		}
		resp := &protocol.ActivationStatusResponse{}
		for _, id := range body.ActivationIDs {
			st := protocol.ActivationState{ActivationID: id}
			_, live, err := tx.Binding(id, n.ComputerID)
			if err != nil {
				return nil, err
			}
			if live {
				st.Valid = true
				// A live binding on an expired or deactivated ID is not valid.
				a, err := tx.ActivationID(id)
				if err != nil {
					return nil, err
				}
				if a == nil || !a.Active {
					st.Valid, st.Reason = false, "the Activation ID was deactivated by an administrator"
				} else if !a.Valid(tx.Now()) {
					st.Valid, st.Reason = false, "the Activation ID has expired"
				}
			} else {
				reason, ok, err := tx.LastEndReason(id, n.ComputerID)
				switch {
				case err != nil:
					return nil, err
				case ok:
					st.Reason = reason
				default:
					st.Reason = "the server knows no seat of this Activation ID for this machine"
				}
			}
			resp.States = append(resp.States, st)
		}
		return resp, nil
	})
}

// Lease checks out, renews or checks in a concurrent seat: ttl > 0 checks
// out (or renews a lease already held), ttl == 0 renews (heartbeat), ttl <
// 0 checks in.
func (l *Ledger) Lease(ctx context.Context, r store.Request, product string, ttl time.Duration) (store.Outcome, error) {
	var secs uint32 // the TTL granted, as the answer carries it
	if ttl > 0 {
		var err error
		if secs, err = protocol.LeaseTTLSeconds(ttl); err != nil {
			return store.Outcome{}, fmt.Errorf("%w: %v", store.ErrInvalid, err)
		}
	}
	return l.apply(ctx, r, func(tx Tx, n *Node) (any, error) {
		if _, ok := l.engine.Catalog().Product(product); !ok {
			result, msg := engine.UnknownLeaseProduct(product)
			return &protocol.LeaseResponse{Result: result, Message: msg}, nil
		}
		actor := store.NodeActor(n.ID)
		now := tx.Now()
		cur, found, err := tx.Lease(product, n.ComputerID)
		if err != nil {
			return nil, err
		}
		held := found && cur.Expires.After(now)
		switch {
		case ttl < 0: // check in
			if found {
				if err := tx.DropLease(product, n.ComputerID); err != nil {
					return nil, err
				}
			}
			if held {
				if err := tx.AddEvent(store.Event{Actor: actor, Kind: store.EventLeaseIn, ComputerID: n.ComputerID, NodeID: n.ID, Product: product, Reason: "checked in"}); err != nil {
					return nil, err
				}
				return &protocol.LeaseResponse{Result: protocol.ActivationReturned, Message: "checked in: the seat is free"}, nil
			}
			return &protocol.LeaseResponse{Result: protocol.ActivationNotHeld, Message: "no lease of " + product + " was held (it may have expired)"}, nil
		case ttl == 0: // heartbeat
			if !held {
				return &protocol.LeaseResponse{Result: protocol.ActivationNotHeld, Message: "the lease of " + product + " has expired or was never held: check out again"}, nil
			}
			newExp := now.Add(cur.TTL)
			if err := tx.RenewLease(product, n.ComputerID, newExp, 0); err != nil {
				return nil, err
			}
			return &protocol.LeaseResponse{Granted: true, Result: protocol.ActivationOK, Expires: newExp.Unix(), TTL: uint32(min(cur.TTL, protocol.MaxLeaseTTL) / time.Second)}, nil
		}
		newExp := now.Add(ttl)
		if held && n.Status == catalog.StatusActive {
			if err := tx.RenewLease(product, n.ComputerID, newExp, ttl); err != nil {
				return nil, err
			}
			return &protocol.LeaseResponse{Granted: true, Result: protocol.ActivationAlready, Expires: newExp.Unix(), TTL: secs, Message: "lease already held: renewed"}, nil
		}
		lics, expiring, err := tx.LeasePool(product)
		if err != nil {
			return nil, err
		}
		d := l.engine.DecideCheckout(product, n.Status, lics, expiring, now)
		lic := d.License
		if lic == nil {
			resp := &protocol.LeaseResponse{Result: d.Result, Message: d.Message}
			if !d.ExpectedBack.IsZero() {
				resp.ExpectedBack = d.ExpectedBack.Unix()
			}
			if d.Result != protocol.ActivationRefused {
				if err := tx.CountRefusal(catalog.KindConcurrent, n.ComputerID, product, protocol.VerdictDeniedNoSeat, n.ID, actor); err != nil {
					return nil, err
				}
			}
			return resp, nil
		}
		if err := tx.GrantLease(product, *n, lic.ID, newExp, ttl); err != nil {
			return nil, fmt.Errorf("grant lease: %w", err)
		}
		if err := tx.AddEvent(store.Event{Actor: actor, Kind: store.EventLeaseOut, ComputerID: n.ComputerID, NodeID: n.ID, Product: product,
			Reason: fmt.Sprintf("license %s, %s to live", lic.ID, ttl)}); err != nil {
			return nil, err
		}
		return &protocol.LeaseResponse{Granted: true, Result: protocol.ActivationOK, Expires: newExp.Unix(), TTL: secs}, nil
	})
}

// endComputerSeats ends the activations and leases of a computer being
// deleted or uninstalled (all: status empty) or set to a status (those
// whose product the status frees), each audited.
func (l *Ledger) endComputerSeats(tx Tx, computer int64, status, why, actor string) ([]store.SeatChange, error) {
	frees := func(product string) bool {
		if status == "" {
			return true
		}
		p, ok := l.engine.Catalog().Product(product)
		return !ok || p.FreedByStatus(status)
	}
	bs, err := tx.ComputerBindings(computer)
	if err != nil {
		return nil, err
	}
	var out []store.SeatChange
	for _, b := range bs {
		if !frees(b.Product) {
			continue
		}
		if err := tx.EndBinding(b, why); err != nil {
			return nil, err
		}
		out = append(out, store.SeatChange{Change: "freed", Kind: store.SeatNodeLocked, ComputerID: computer, Product: b.Product, License: b.License, Reason: b.ActivationID + ": " + why})
		if err := tx.AddEvent(store.Event{Actor: actor, Kind: store.EventActReturned, ComputerID: computer, Product: b.Product, Reason: b.ActivationID + ": " + why}); err != nil {
			return nil, err
		}
	}
	ls, err := tx.ComputerLeases(computer)
	if err != nil {
		return nil, err
	}
	for _, le := range ls {
		if !frees(le.Product) {
			continue
		}
		if err := tx.DropLease(le.Product, computer); err != nil {
			return nil, err
		}
		out = append(out, store.SeatChange{Change: "freed", Kind: store.SeatConcurrent, ComputerID: computer, Product: le.Product, License: le.License, Reason: "lease: " + why})
		if err := tx.AddEvent(store.Event{Actor: actor, Kind: store.EventLeaseIn, ComputerID: computer, Product: le.Product, Reason: why}); err != nil {
			return nil, err
		}
	}
	return out, nil
}
