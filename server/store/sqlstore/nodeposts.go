package sqlstore

import (
	"context"
	"time"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/ledger"
	"github.com/tallyhq/tally/server/store"
)

// StatusMissing is set by the stale-node policy (see ledger.StatusMissing).
const StatusMissing = ledger.StatusMissing

// The node requests are the ledger's: it applies each once in this
// store's transactions (ledgertx.go).

// PostInventory implements store.Nodes.
func (db *DB) PostInventory(ctx context.Context, r store.Request, body *protocol.InventoryRequest) (store.Outcome, error) {
	return db.ledger.PostInventory(ctx, r, body)
}

// PostPluginData implements store.Nodes.
func (db *DB) PostPluginData(ctx context.Context, r store.Request, body *protocol.PluginDataRequest) (store.Outcome, error) {
	return db.ledger.PostPluginData(ctx, r, body)
}

// PluginRequest implements store.Nodes.
func (db *DB) PluginRequest(ctx context.Context, r store.Request, body any) (store.Outcome, error) {
	return db.ledger.PluginRequest(ctx, r, body)
}

// Goodbye implements store.Nodes.
func (db *DB) Goodbye(ctx context.Context, r store.Request, body *protocol.GoodbyeRequest) (store.Outcome, error) {
	return db.ledger.Goodbye(ctx, r, body)
}

// Activate implements store.Nodes.
func (db *DB) Activate(ctx context.Context, r store.Request, body *protocol.ActivateRequest) (store.Outcome, error) {
	return db.ledger.Activate(ctx, r, body)
}

// Deactivate implements store.Nodes.
func (db *DB) Deactivate(ctx context.Context, r store.Request, body *protocol.DeactivateRequest) (store.Outcome, error) {
	return db.ledger.Deactivate(ctx, r, body)
}

// ActivationStatus implements store.Nodes.
func (db *DB) ActivationStatus(ctx context.Context, r store.Request, body *protocol.ActivationStatusRequest) (store.Outcome, error) {
	return db.ledger.ActivationStatus(ctx, r, body)
}

// Lease implements store.Nodes.
func (db *DB) Lease(ctx context.Context, r store.Request, product string, ttl time.Duration) (store.Outcome, error) {
	return db.ledger.Lease(ctx, r, product, ttl)
}
