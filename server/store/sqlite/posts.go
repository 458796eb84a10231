package sqlite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

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

// decide runs the engine on a post of the node's computer, after sweeping
// expired licenses of the products concerned, and applies the decision.
// Most posts of a fleet that holds its seats need no seat counts: the
// engine says so, and the licenses' dates then come from a cache instead of
// a query.
func (db *DB) decide(tx *Tx, n nodeState, post engine.Post, extra []string) (engine.Decision, error) {
	actor := store.NodeActor(n.id)
	c, err := db.loadSeats(tx, n)
	if err != nil {
		return engine.Decision{}, err
	}
	products := productsOf(c, extra...)
	meta, err := db.licenses.pool(tx, products)
	if err != nil {
		return engine.Decision{}, err
	}
	if db.licenses.needsSweep(meta, tx.Now) {
		swept, err := db.sweepExpired(tx, products, actor)
		if err != nil {
			return engine.Decision{}, err
		}
		db.licenses.markSwept(tx, meta, tx.Now)
		if len(swept) > 0 {
			n.cached = false // the sweep changed seats: read them again
			if c, err = db.loadSeats(tx, n); err != nil {
				return engine.Decision{}, err
			}
		}
	}
	pool := meta
	if db.engine.NeedsCounts(c, meta, post, tx.Now) {
		if pool, err = loadPool(tx, products); err != nil {
			return engine.Decision{}, err
		}
	}
	d := db.engine.DecidePost(c, pool, post, tx.Now)
	if _, err := applyDecision(tx, d, actor, n.id); err != nil {
		return d, err
	}
	if f := db.opts.OnVerdicts; f != nil && len(d.Verdicts) > 0 {
		vs := d.Verdicts
		tx.OnCommit(func() { f(vs) })
	}
	return d, nil
}

// loadSeats builds the engine's view of the node's computer: what nodeOp
// read with the node, and its seats and allocations in one query, or
// from the post cache when nodeOp found them there. The maps may be the
// cache's: the engine only reads them.
func (db *DB) loadSeats(tx *Tx, n nodeState) (engine.Computer, error) {
	c := engine.Computer{ID: n.computerID, Status: n.status, Plugins: db.pluginsOf(n.plugins).plugins}
	if n.cached {
		c.Seats, c.Allocations = n.seats, n.allocs
		return c, nil
	}
	c.Seats, c.Allocations = map[string]string{}, map[string]string{}
	if sc := tx.hot; sc != nil && sc.read != nil && !sc.seats {
		// What is read first is what the post cache keeps, if the job
		// changes none of it (hot.go).
		defer func() {
			sc.seats = true
			if len(c.Seats) > 0 {
				sc.read.seats = c.Seats
			}
			if len(c.Allocations) > 0 {
				sc.read.allocs = c.Allocations
			}
		}()
	}
	rows, err := tx.Query(`SELECT 1, product, license_id FROM seats WHERE computer_id = ?
		UNION ALL SELECT 2, product, license_id FROM allocations WHERE computer_id = ?`, n.computerID, n.computerID)
	if err != nil {
		return c, fmt.Errorf("read seats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var which int
		var p, l string
		if err := rows.Scan(&which, &p, &l); err != nil {
			return c, err
		}
		if which == 1 {
			c.Seats[p] = l
		} else {
			c.Allocations[p] = l
		}
	}
	return c, rows.Err()
}

func (db *DB) productsForPlugins(pls ...protocol.Plugin) []string {
	var out []string
	for _, pl := range pls {
		for _, p := range db.engine.Catalog().ForPlugin(pl.Name, pl.Version) {
			out = append(out, p.Name)
		}
	}
	return out
}

// reactivate puts a Missing computer back to Active when it is heard from.
func reactivate(tx *Tx, n *nodeState) error {
	if n.status != StatusMissing {
		return nil
	}
	if _, err := tx.ExecComputer(n.computerID, `UPDATE computers SET status = 'Active' WHERE id = ?`, n.computerID); err != nil {
		return fmt.Errorf("reactivate: %w", err)
	}
	n.status = "Active"
	return addEvent(tx, store.Event{Actor: store.NodeActor(n.id), Kind: store.EventStatus, ComputerID: n.computerID,
		Reason: "Missing → Active: the computer posted again"})
}

// PostInventory implements store.Nodes.
func (db *DB) PostInventory(ctx context.Context, r store.Request, body *protocol.InventoryRequest) (store.Outcome, error) {
	hasBasic := body.HasBasic()
	var blob, pj []byte
	var hs []hint
	var hh, basicHash string
	// The basic inventory is copied (to clean its hints) only when the
	// post carries one: most do not, and the copy escapes to the heap.
	b := &body.Basic
	if hasBasic {
		cleaned := body.Basic
		cleaned.Hints = machineid.Clean(cleaned.Hints)
		b = &cleaned
		var err error
		if blob, err = protocol.Marshal(b); err != nil {
			return store.Outcome{}, fmt.Errorf("encode basic inventory: %w", err)
		}
		plugins := b.Plugins
		if plugins == nil {
			plugins = []protocol.Plugin{}
		}
		if pj, err = json.Marshal(plugins); err != nil {
			return store.Outcome{}, err
		}
		hs = hintList(b.Hints)
		hh = hintsHash(hs)
		basicHash = body.Basic.Hash() // of what the agent sent, as the agent computes it
	}
	return db.nodeOp(ctx, r, func(tx *Tx, n nodeState) (any, error) {
		if err := reactivate(tx, &n); err != nil {
			return nil, err
		}
		resp := &protocol.InventoryResponse{}
		plugins, products := b.Plugins, []string(nil)
		if hasBasic {
			products = db.productsForPlugins(plugins...)
			var oldHash string
			if err := tx.QueryRow(`SELECT hints_hash FROM computers WHERE id = ?`, n.computerID).Scan(&oldHash); err != nil {
				return nil, fmt.Errorf("read computer: %w", err)
			}
			if _, err := tx.ExecComputer(n.computerID, `UPDATE computers SET hostname = ?, os = ?, platform = ?, platform_version = ?, arch = ?, last_seen = ?, plugins = ?, basic_hash = ?, backlog = ?
				WHERE id = ?`, b.Hostname, b.OS, b.Platform, b.PlatformVersion, b.Arch, ms(tx.Now), string(pj), basicHash, body.Backlog, n.computerID); err != nil {
				return nil, fmt.Errorf("store basic inventory: %w", err)
			}
			if _, err := tx.ExecUncached(`INSERT INTO basic_inventory (computer_id, blob) VALUES (?, ?)
				ON CONFLICT (computer_id) DO UPDATE SET blob = excluded.blob`, n.computerID, blob); err != nil {
				return nil, fmt.Errorf("store basic inventory: %w", err)
			}
			if oldHash != hh {
				if err := replaceHints(tx, n.computerID, hs); err != nil {
					return nil, err
				}
			}
		} else {
			// Unchanged basic inventory: the stored one stands, if it is the
			// one the agent means; its plug-ins are the computer's.
			resp.SendBasic = n.basicHash == "" || n.basicHash != body.BasicHash
			ps := db.pluginsOf(n.plugins)
			plugins, products = ps.plugins, ps.products
			if _, err := tx.ExecUncached(`UPDATE computers SET last_seen = ?, backlog = ? WHERE id = ?`, ms(tx.Now), body.Backlog, n.computerID); err != nil {
				return nil, fmt.Errorf("touch computer: %w", err)
			}
		}
		post := engine.Post{Kind: engine.PostInventory, Plugins: plugins, HasSoftware: body.Software != nil}
		d, err := db.decide(tx, n, post, products)
		if err != nil {
			return nil, err
		}
		resp.Verdicts = d.Verdicts
		if body.Software != nil {
			licensed := false
			for _, v := range d.Verdicts {
				if p, ok := db.engine.Catalog().Product(v.Product); ok && p.Plugin == catalog.SoftwarePlugin && v.Verdict == protocol.VerdictLicensed {
					licensed = true
				}
			}
			if licensed {
				ack, refused, err := db.storeSoftware(tx, n, body.Software)
				if err != nil {
					return nil, err
				}
				resp.Software = ack
				if refused != "" {
					// The seat stands; the software part alone is refused,
					// said in the software products' verdict reasons.
					for i, v := range resp.Verdicts {
						if p, ok := db.engine.Catalog().Product(v.Product); ok && p.Plugin == catalog.SoftwarePlugin && v.Verdict == protocol.VerdictLicensed {
							resp.Verdicts[i].Reason = refused
						}
					}
					if err := addEvent(tx, store.Event{Actor: store.NodeActor(n.id), Kind: store.EventSoftwareRefused, ComputerID: n.computerID, NodeID: n.id, Reason: refused}); err != nil {
						return nil, err
					}
					db.log.Warn("software inventory refused: over the stored set's cap", "computer", n.computerID, "node", n.id, "reason", refused)
				}
			} else {
				resp.Software = &protocol.SoftwareAck{}
			}
		}
		return resp, nil
	})
}

// PostPluginData implements store.Nodes.
func (db *DB) PostPluginData(ctx context.Context, r store.Request, body *protocol.PluginDataRequest) (store.Outcome, error) {
	kind, payload := "metrics", any(body.Metrics)
	if body.PatchScan != nil {
		kind, payload = "patch-scan", body.PatchScan
	}
	blob, err := protocol.Marshal(payload)
	if err != nil {
		return store.Outcome{}, err
	}
	touched := db.productsForPlugins(body.Plugin)
	return db.nodeOp(ctx, r, func(tx *Tx, n nodeState) (any, error) {
		if err := reactivate(tx, &n); err != nil {
			return nil, err
		}
		d, err := db.decide(tx, n, engine.Post{Kind: engine.PostPluginData, Plugin: body.Plugin}, touched)
		if err != nil {
			return nil, err
		}
		for _, v := range d.Verdicts {
			if v.Verdict != protocol.VerdictLicensed {
				continue
			}
			if _, err := tx.ExecUncached(`INSERT INTO product_data (computer_id, product, kind, at, payload) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (computer_id, product, kind) DO UPDATE SET at = excluded.at, payload = excluded.payload, posts = posts + 1`,
				n.computerID, v.Product, kind, ms(tx.Now), blob); err != nil {
				return nil, fmt.Errorf("store %s data: %w", v.Product, err)
			}
		}
		return &protocol.VerdictResponse{Verdicts: d.Verdicts}, nil
	})
}

// PluginRequest implements store.Nodes for TaskRequest, CheckIn,
// PackageRequest and CatalogRequest bodies.
func (db *DB) PluginRequest(ctx context.Context, r store.Request, body any) (store.Outcome, error) {
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
	touched := db.productsForPlugins(plugin)
	return db.nodeOp(ctx, r, func(tx *Tx, n nodeState) (any, error) {
		if err := reactivate(tx, &n); err != nil {
			return nil, err
		}
		d, err := db.decide(tx, n, engine.Post{Kind: kind, Plugin: plugin}, touched)
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
				if resp.Tasks, err = takeTasks(tx, n.computerID); err != nil {
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
				if resp.Packages, err = patchCatalog(tx, names); err != nil {
					return nil, err
				}
			}
			return resp, nil
		default:
			resp := &protocol.CatalogResponse{Verdicts: d.Verdicts}
			if licensed {
				if resp.Minimums, err = patchCatalog(tx, nil); err != nil {
					return nil, err
				}
				resp.Version = fmt.Sprintf("%d", len(resp.Minimums))
			}
			return resp, nil
		}
	})
}

func takeTasks(tx *Tx, computer int64) ([]protocol.Task, error) {
	rows, err := tx.Query(`SELECT id, action FROM tasks WHERE computer_id = ? AND delivered_at IS NULL ORDER BY created_at, id`, computer)
	if err != nil {
		return nil, fmt.Errorf("read tasks: %w", err)
	}
	var out []protocol.Task
	for rows.Next() {
		var t protocol.Task
		if err := rows.Scan(&t.ID, &t.Action); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, t)
	}
	rows.Close()
	if _, err := tx.ExecUncached(`UPDATE tasks SET delivered_at = ? WHERE computer_id = ? AND delivered_at IS NULL`, ms(tx.Now), computer); err != nil {
		return nil, fmt.Errorf("deliver tasks: %w", err)
	}
	return out, nil
}

func patchCatalog(tx *Tx, names []string) ([]protocol.MinimumVersion, error) {
	rows, err := tx.Query(`SELECT name, version, source FROM patch_catalog ORDER BY name, source`)
	if err != nil {
		return nil, fmt.Errorf("read patch catalog: %w", err)
	}
	defer rows.Close()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []protocol.MinimumVersion
	for rows.Next() {
		var m protocol.MinimumVersion
		if err := rows.Scan(&m.Name, &m.Version, &m.Source); err != nil {
			return nil, err
		}
		if names == nil || want[m.Name] {
			out = append(out, m)
		}
	}
	return out, rows.Err()
}

// Goodbye implements store.Nodes: an agent uninstalled frees every seat
// and retires its key; a plug-in uninstalled frees its products' seats
// where their rule says so and leaves the computer's plug-in list.
func (db *DB) Goodbye(ctx context.Context, r store.Request, body *protocol.GoodbyeRequest) (store.Outcome, error) {
	return db.nodeOp(ctx, r, func(tx *Tx, n nodeState) (any, error) {
		c, _, err := loadComputer(tx, n.computerID)
		if err != nil {
			return nil, err
		}
		actor := store.NodeActor(n.id)
		d := db.engine.Goodbye(c, body.Plugin)
		changes, err := applyDecision(tx, d, actor, n.id)
		if err != nil {
			return nil, err
		}
		resp := &protocol.GoodbyeResponse{}
		for _, ch := range changes {
			resp.Freed = append(resp.Freed, ch.Product)
		}
		if body.Plugin == "" {
			more, err := db.endComputerSeats(tx, n.computerID, "", "agent uninstalled", actor)
			if err != nil {
				return nil, err
			}
			for _, ch := range more {
				resp.Freed = append(resp.Freed, ch.Product)
			}
			if _, err := tx.Exec(`UPDATE nodes SET revoked_at = ?, revoked_reason = ? WHERE id = ?`, ms(tx.Now), store.RevokedUninstall, n.id); err != nil {
				return nil, err
			}
			if err := setFlag(tx, n.computerID, store.FlagAgentUninstalled, true, actor, "its agent said goodbye"); err != nil {
				return nil, err
			}
			reason := "agent uninstalled"
			if body.Reason != "" {
				reason += ": " + body.Reason
			}
			return resp, addEvent(tx, store.Event{Actor: actor, Kind: store.EventUninstalled, ComputerID: n.computerID, NodeID: n.id, Reason: reason})
		}
		var keep []protocol.Plugin
		for _, p := range c.Plugins {
			if p.Name != body.Plugin {
				keep = append(keep, p)
			}
		}
		if keep == nil {
			keep = []protocol.Plugin{}
		}
		pj, _ := json.Marshal(keep)
		// The stored basic inventory listed the plug-in: its hash no longer
		// describes what the computer's row holds, so the next post that
		// sends only a hash (an agent that put the plug-in back, say) is
		// asked for the whole basic inventory.
		if _, err := tx.ExecComputer(n.computerID, `UPDATE computers SET plugins = ?, basic_hash = '' WHERE id = ?`, string(pj), n.computerID); err != nil {
			return nil, err
		}
		return resp, addEvent(tx, store.Event{Actor: actor, Kind: store.EventPluginRemoved, ComputerID: n.computerID, NodeID: n.id,
			Reason: "plug-in " + body.Plugin + " uninstalled"})
	})
}

// taskPlugin is the agent plug-in that asks for and runs tasks.
const taskPlugin = "software-management"

// AddTask implements store.Computers.
func (db *DB) AddTask(ctx context.Context, id int64, action string, force bool) (string, error) {
	if action != protocol.TaskCollectNow && action != protocol.TaskRefreshPlugins {
		return "", fmt.Errorf("%w: task %q: the agent only takes %s and %s", store.ErrInvalid, action, protocol.TaskCollectNow, protocol.TaskRefreshPlugins)
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tid := "t-" + hex.EncodeToString(b)
	err := db.write(ctx, func(tx *Tx) error {
		c, hostname, err := loadComputer(tx, id)
		if err != nil {
			return err
		}
		if !force && !slices.ContainsFunc(c.Plugins, func(p protocol.Plugin) bool { return p.Name == taskPlugin }) {
			return fmt.Errorf("%w: computer %d (%s) has no %s plug-in, which is what runs tasks, so the task would wait unread: install the plug-in there ('tally-agent plugin install %s'), or pass --force to queue it anyway",
				store.ErrConflict, id, hostname, taskPlugin, taskPlugin)
		}
		if _, err := tx.ExecUncached(`INSERT INTO tasks (id, computer_id, action, created_at) VALUES (?, ?, ?, ?)`, tid, id, action, ms(tx.Now)); err != nil {
			return fmt.Errorf("queue task: %w", err)
		}
		return addEvent(tx, store.Event{Actor: store.ActorAdmin, Kind: store.EventTaskQueued, ComputerID: id, Reason: action + " (" + tid + ")"})
	})
	return tid, err
}
