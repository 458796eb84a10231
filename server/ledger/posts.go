package ledger

import (
	"context"
	"fmt"

	"github.com/tallyhq/tally/common/machineid"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/catalog"
	"github.com/tallyhq/tally/server/engine"
	"github.com/tallyhq/tally/server/store"
)

// StatusMissing is set by the stale-node policy; a computer that posts
// again is evidently not missing and goes back to Active by itself, unlike
// the statuses an administrator sets.
const StatusMissing = "Missing"

// reactivate puts a Missing computer back to Active when it is heard from.
func reactivate(tx Tx, n *Node) error {
	if n.Status != StatusMissing {
		return nil
	}
	if err := tx.SetStatus(n.ComputerID, catalog.StatusActive); err != nil {
		return fmt.Errorf("reactivate: %w", err)
	}
	if err := tx.SyncDevices(n.ComputerID, store.NodeActor(n.ID), "Missing → Active"); err != nil {
		return err
	}
	n.Status = catalog.StatusActive
	return tx.AddEvent(store.Event{Actor: store.NodeActor(n.ID), Kind: store.EventStatus, ComputerID: n.ComputerID,
		Reason: "Missing → Active: the computer posted again"})
}

// PostInventory stores a node's basic inventory, decides its licenses and
// stores (or discards) its software inventory.
func (l *Ledger) PostInventory(ctx context.Context, r store.Request, body *protocol.InventoryRequest) (store.Outcome, error) {
	hasBasic := body.HasBasic()
	var basic *Basic
	// The basic inventory is copied (to clean its hints) only when the
	// post carries one: most do not, and the copy escapes to the heap.
	b := &body.Basic
	if hasBasic {
		cleaned := body.Basic
		cleaned.Hints = machineid.Clean(cleaned.Hints)
		b = &cleaned
		blob, err := protocol.Marshal(b)
		if err != nil {
			return store.Outcome{}, fmt.Errorf("encode basic inventory: %w", err)
		}
		pj, err := EncodePlugins(b.Plugins)
		if err != nil {
			return store.Outcome{}, err
		}
		basic = &Basic{Inventory: b, Blob: blob, Plugins: pj, Backlog: body.Backlog,
			Hash: body.Basic.Hash()} // of what the agent sent, as the agent computes it
	}
	return l.apply(ctx, r, func(tx Tx, n *Node) (any, error) {
		if err := reactivate(tx, n); err != nil {
			return nil, err
		}
		resp := &protocol.InventoryResponse{}
		plugins, products := b.Plugins, []string(nil)
		if hasBasic {
			products = l.ProductsFor(plugins...)
			if err := tx.StoreBasic(n.ComputerID, basic); err != nil {
				return nil, err
			}
			actor := store.NodeActor(n.ID)
			if err := tx.ReportUsers(n.ComputerID, b.PrimaryUser, b.Users, actor); err != nil {
				return nil, err
			}
			if err := tx.SyncDevices(n.ComputerID, actor, "basic inventory posted"); err != nil {
				return nil, err
			}
		} else {
			// Unchanged basic inventory: the stored one stands, if it is the
			// one the agent means; its plug-ins are the computer's.
			resp.SendBasic = n.BasicHash == "" || n.BasicHash != body.BasicHash
			ps := l.Plugins(n.Plugins)
			plugins, products = ps.Plugins, ps.Products
			if err := tx.Touch(n.ComputerID, body.Backlog); err != nil {
				return nil, fmt.Errorf("touch computer: %w", err)
			}
		}
		post := engine.Post{Kind: engine.PostInventory, Plugins: plugins, HasSoftware: body.Software != nil}
		d, err := l.decide(tx, n, post, products)
		if err != nil {
			return nil, err
		}
		resp.Verdicts = d.Verdicts
		if body.Software == nil {
			return resp, nil
		}
		if !l.softwareLicensed(d.Verdicts) {
			resp.Software = &protocol.SoftwareAck{}
			return resp, nil
		}
		ack, refused, err := tx.StoreSoftware(*n, body.Software)
		if err != nil {
			return nil, err
		}
		resp.Software = ack
		if refused != "" {
			// The seat stands; the software part alone is refused, said in
			// the software products' verdict reasons.
			for i, v := range resp.Verdicts {
				if l.softwareVerdict(v) {
					resp.Verdicts[i].Reason = refused
				}
			}
			if err := tx.AddEvent(store.Event{Actor: store.NodeActor(n.ID), Kind: store.EventSoftwareRefused, ComputerID: n.ComputerID, NodeID: n.ID, Reason: refused}); err != nil {
				return nil, err
			}
			l.log.Warn("software inventory refused: over the stored set's cap", "computer", n.ComputerID, "node", n.ID, "reason", refused)
		}
		return resp, nil
	})
}

// softwareVerdict reports whether v licenses a product of the software
// inventory plug-in.
func (l *Ledger) softwareVerdict(v protocol.ProductVerdict) bool {
	p, ok := l.engine.Catalog().Product(v.Product)
	return ok && p.Plugin == catalog.SoftwarePlugin && v.Verdict == protocol.VerdictLicensed
}

func (l *Ledger) softwareLicensed(vs []protocol.ProductVerdict) bool {
	for _, v := range vs {
		if l.softwareVerdict(v) {
			return true
		}
	}
	return false
}

// PostPluginData stores (or discards) a plug-in's payload.
func (l *Ledger) PostPluginData(ctx context.Context, r store.Request, body *protocol.PluginDataRequest) (store.Outcome, error) {
	kind, payload := "metrics", any(body.Metrics)
	if body.PatchScan != nil {
		kind, payload = "patch-scan", body.PatchScan
	}
	blob, err := protocol.Marshal(payload)
	if err != nil {
		return store.Outcome{}, err
	}
	touched := l.ProductsFor(body.Plugin)
	return l.apply(ctx, r, func(tx Tx, n *Node) (any, error) {
		if err := reactivate(tx, n); err != nil {
			return nil, err
		}
		d, err := l.decide(tx, n, engine.Post{Kind: engine.PostPluginData, Plugin: body.Plugin}, touched)
		if err != nil {
			return nil, err
		}
		for _, v := range d.Verdicts {
			if v.Verdict != protocol.VerdictLicensed {
				continue
			}
			if err := tx.StoreProductData(n.ComputerID, v.Product, kind, blob); err != nil {
				return nil, fmt.Errorf("store %s data: %w", v.Product, err)
			}
		}
		return &protocol.VerdictResponse{Verdicts: d.Verdicts}, nil
	})
}

// PluginRequest answers a task request, check-in, package or catalog
// request of a plug-in.
func (l *Ledger) PluginRequest(ctx context.Context, r store.Request, body any) (store.Outcome, error) {
	var plugin protocol.Plugin
	var kind engine.PostKind
	var names []string
	switch b := body.(type) {
	case *protocol.PackageRequest:
		plugin, kind, names = b.Plugin, engine.PostPackageRequest, b.Names
	case *protocol.PluginRequest:
		plugin = b.Plugin
		switch r.Kind {
		case protocol.KindTaskRequest:
			kind = engine.PostTaskRequest
		case protocol.KindCheckIn:
			kind = engine.PostCheckIn
		case protocol.KindCatalogRequest:
			kind = engine.PostCatalogRequest
		default:
			return store.Outcome{}, fmt.Errorf("%w: %s is not a plug-in request", store.ErrInvalid, r.Kind)
		}
	default:
		return store.Outcome{}, fmt.Errorf("%w: unexpected body %T", store.ErrInvalid, body)
	}
	touched := l.ProductsFor(plugin)
	return l.apply(ctx, r, func(tx Tx, n *Node) (any, error) {
		if err := reactivate(tx, n); err != nil {
			return nil, err
		}
		d, err := l.decide(tx, n, engine.Post{Kind: kind, Plugin: plugin}, touched)
		if err != nil {
			return nil, err
		}
		// Answered in full for a seat holder, and for a node under the
		// count whose first qualifying post is yet to come.
		licensed := d.Serves()
		switch kind {
		case engine.PostTaskRequest:
			resp := &protocol.TaskResponse{Verdicts: d.Verdicts}
			if licensed {
				if resp.Tasks, err = tx.TakeTasks(n.ComputerID); err != nil {
					return nil, err
				}
			}
			return resp, nil
		case engine.PostCheckIn:
			resp := &protocol.CheckInResponse{Verdicts: d.Verdicts}
			for _, v := range d.Verdicts {
				if v.Verdict == protocol.VerdictDeniedNoSeat {
					resp.Message = "license count exceeded"
				}
			}
			return resp, nil
		case engine.PostPackageRequest:
			resp := &protocol.PackageResponse{Verdicts: d.Verdicts}
			if licensed {
				if resp.Packages, err = tx.PatchCatalog(names); err != nil {
					return nil, err
				}
			}
			return resp, nil
		default:
			resp := &protocol.CatalogResponse{Verdicts: d.Verdicts}
			if licensed {
				if resp.Minimums, err = tx.PatchCatalog(nil); err != nil {
					return nil, err
				}
				resp.Version = fmt.Sprintf("%d", len(resp.Minimums))
			}
			return resp, nil
		}
	})
}

// Goodbye frees what an uninstalled agent or plug-in held: an agent
// uninstalled frees every seat and retires its key; a plug-in uninstalled
// frees its products' seats where their rule says so and leaves the
// computer's plug-in list.
func (l *Ledger) Goodbye(ctx context.Context, r store.Request, body *protocol.GoodbyeRequest) (store.Outcome, error) {
	return l.apply(ctx, r, func(tx Tx, n *Node) (any, error) {
		c, _, err := tx.Computer(n.ComputerID)
		if err != nil {
			return nil, err
		}
		actor := store.NodeActor(n.ID)
		d := l.engine.Goodbye(c, body.Plugin)
		changes, err := ApplyDecision(tx, d, actor, n.ID)
		if err != nil {
			return nil, err
		}
		resp := &protocol.GoodbyeResponse{}
		for _, ch := range changes {
			resp.Freed = append(resp.Freed, ch.Product)
		}
		if body.Plugin == "" {
			more, err := l.endComputerSeats(tx, n.ComputerID, "", "agent uninstalled", actor)
			if err != nil {
				return nil, err
			}
			for _, ch := range more {
				resp.Freed = append(resp.Freed, ch.Product)
			}
			if err := tx.RevokeNode(n.ID, store.RevokedUninstall); err != nil {
				return nil, err
			}
			if err := tx.SetFlag(n.ComputerID, store.FlagAgentUninstalled, true, actor, "its agent said goodbye"); err != nil {
				return nil, err
			}
			if err := tx.SyncDevices(n.ComputerID, actor, "agent uninstalled"); err != nil {
				return nil, err
			}
			reason := "agent uninstalled"
			if body.Reason != "" {
				reason += ": " + body.Reason
			}
			return resp, tx.AddEvent(store.Event{Actor: actor, Kind: store.EventUninstalled, ComputerID: n.ComputerID, NodeID: n.ID, Reason: reason})
		}
		var keep []protocol.Plugin
		for _, p := range c.Plugins {
			if p.Name != body.Plugin {
				keep = append(keep, p)
			}
		}
		pj, err := EncodePlugins(keep)
		if err != nil {
			return nil, err
		}
		if err := tx.SetPlugins(n.ComputerID, pj); err != nil {
			return nil, err
		}
		if err := tx.SyncDevices(n.ComputerID, actor, "plug-in "+body.Plugin+" uninstalled"); err != nil {
			return nil, err
		}
		return resp, tx.AddEvent(store.Event{Actor: actor, Kind: store.EventPluginRemoved, ComputerID: n.ComputerID, NodeID: n.ID,
			Reason: "plug-in " + body.Plugin + " uninstalled"})
	})
}
