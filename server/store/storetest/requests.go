package storetest

import (
	"crypto/ed25519"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/store"
)

// This file is the only one that hands node requests to the store and
// reads their answers: should the way a request is submitted or answered
// change, only this file changes.

// node is an enrolled agent key and the computer it posts for.
type node struct {
	id       string
	key      ed25519.PrivateKey
	computer int64
	hostname string
	hints    protocol.Hints
	seq      atomic.Uint64 // the last sequence number used
}

// reply is a decoded answer and whether it was a repeat answered from the
// record of the first one.
type reply[T any] struct {
	Body   T
	Repeat bool
}

// answer decodes what the store answered to a node request.
func answer[T any](out store.Outcome, err error) (reply[T], error) {
	var r reply[T]
	if err != nil {
		return r, err
	}
	if err := protocol.Unmarshal(out.Body, &r.Body); err != nil {
		return r, fmt.Errorf("decode the store's answer: %w", err)
	}
	r.Repeat = out.Repeat
	return r, nil
}

// enrollParams is an enrollment of a new key for the machine hostname
// with hints.
func (e *env) enrollParams(t tb, hostname string, hints protocol.Hints) (store.EnrollParams, ed25519.PrivateKey) {
	t.Helper()
	key, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	return store.EnrollParams{NodeID: identity.NodeID(pub), PublicKey: pub,
		Request: protocol.EnrollRequest{Secret: e.secret, Hostname: hostname, Hints: hints, OS: "linux"}}, key
}

// enrollAs enrolls p.
func (e *env) enrollAs(p store.EnrollParams) (protocol.EnrollResponse, error) {
	return e.s.Enroll(e.ctx, p)
}

// enroll enrolls a new machine with a new key.
func (e *env) enroll(t tb) *node {
	t.Helper()
	host, inst := e.machine()
	return e.enrollMachine(t, host, protocol.Hints{InstanceID: inst})
}

// enrollMachine enrolls a new key for the machine hostname with hints.
func (e *env) enrollMachine(t tb, hostname string, hints protocol.Hints) *node {
	t.Helper()
	p, key := e.enrollParams(t, hostname, hints)
	resp, err := e.enrollAs(p)
	if err != nil {
		t.Fatalf("enroll %s: %v", hostname, err)
	}
	return &node{id: p.NodeID, key: key, computer: resp.ComputerID, hostname: hostname, hints: hints}
}

// request is the next request of n.
func (n *node) request(kind protocol.Kind) store.Request {
	return n.requestAt(n.seq.Add(1), kind)
}

// requestAt is n's request with sequence number seq (a repeat, or one out
// of order); later requests take numbers above it.
func (n *node) requestAt(seq uint64, kind protocol.Kind) store.Request {
	for {
		cur := n.seq.Load()
		if cur >= seq || n.seq.CompareAndSwap(cur, seq) {
			break
		}
	}
	return store.Request{NodeID: n.id, Seq: seq, Kind: kind}
}

// basic is a basic inventory of n listing plugins.
func (n *node) basic(plugins ...protocol.Plugin) protocol.BasicInventory {
	return protocol.BasicInventory{CollectedAt: start.Unix(), Hostname: n.hostname, OS: "linux", Platform: "debian",
		Hints: n.hints, Plugins: plugins}
}

// postInventoryAt posts an inventory with sequence number seq.
func (e *env) postInventoryAt(n *node, seq uint64, req protocol.InventoryRequest) (reply[protocol.InventoryResponse], error) {
	return answer[protocol.InventoryResponse](e.s.PostInventory(e.ctx, n.requestAt(seq, protocol.KindInventory), &req))
}

// postInventory posts an inventory with n's next sequence number.
func (e *env) postInventory(n *node, req protocol.InventoryRequest) (protocol.InventoryResponse, error) {
	r, err := answer[protocol.InventoryResponse](e.s.PostInventory(e.ctx, n.request(protocol.KindInventory), &req))
	return r.Body, err
}

// inventory posts a basic inventory listing plugins and fails t on error.
func (e *env) inventory(t tb, n *node, plugins ...protocol.Plugin) protocol.InventoryResponse {
	t.Helper()
	resp, err := e.postInventory(n, protocol.InventoryRequest{Basic: n.basic(plugins...)})
	if err != nil {
		t.Fatalf("%s posts: %v", n.hostname, err)
	}
	return resp
}

// pluginData posts a plug-in's patch scan.
func (e *env) pluginData(n *node, pl protocol.Plugin) (protocol.VerdictResponse, error) {
	req := protocol.PluginDataRequest{Plugin: pl, PatchScan: &protocol.PatchScan{Scanned: 3}}
	r, err := answer[protocol.VerdictResponse](e.s.PostPluginData(e.ctx, n.request(protocol.KindPluginData), &req))
	return r.Body, err
}

// taskRequest asks for n's tasks on behalf of plug-in pl.
func (e *env) taskRequest(n *node, pl protocol.Plugin) (protocol.TaskResponse, error) {
	r, err := answer[protocol.TaskResponse](e.s.PluginRequest(e.ctx, n.request(protocol.KindTaskRequest), &protocol.PluginRequest{Plugin: pl}))
	return r.Body, err
}

// checkIn checks n in on behalf of plug-in pl.
func (e *env) checkIn(n *node, pl protocol.Plugin) (protocol.CheckInResponse, error) {
	r, err := answer[protocol.CheckInResponse](e.s.PluginRequest(e.ctx, n.request(protocol.KindCheckIn), &protocol.PluginRequest{Plugin: pl}))
	return r.Body, err
}

// checkInAt checks n in with sequence number seq.
func (e *env) checkInAt(n *node, seq uint64, pl protocol.Plugin) (reply[protocol.CheckInResponse], error) {
	return answer[protocol.CheckInResponse](e.s.PluginRequest(e.ctx, n.requestAt(seq, protocol.KindCheckIn), &protocol.PluginRequest{Plugin: pl}))
}

// packageRequest asks for the update packages of names.
func (e *env) packageRequest(n *node, pl protocol.Plugin, names ...string) (protocol.PackageResponse, error) {
	r, err := answer[protocol.PackageResponse](e.s.PluginRequest(e.ctx, n.request(protocol.KindPackageRequest), &protocol.PackageRequest{Plugin: pl, Names: names}))
	return r.Body, err
}

// catalogRequest asks for the patch catalog.
func (e *env) catalogRequest(n *node, pl protocol.Plugin) (protocol.CatalogResponse, error) {
	r, err := answer[protocol.CatalogResponse](e.s.PluginRequest(e.ctx, n.request(protocol.KindCatalogRequest), &protocol.PluginRequest{Plugin: pl}))
	return r.Body, err
}

// goodbyeAt says goodbye for plugin (the whole agent when empty) with
// sequence number seq.
func (e *env) goodbyeAt(n *node, seq uint64, plugin string) (reply[protocol.GoodbyeResponse], error) {
	return answer[protocol.GoodbyeResponse](e.s.Goodbye(e.ctx, n.requestAt(seq, protocol.KindGoodbye), &protocol.GoodbyeRequest{Plugin: plugin, Reason: "uninstalled"}))
}

// goodbye says goodbye for plugin (the whole agent when empty).
func (e *env) goodbye(n *node, plugin string) (protocol.GoodbyeResponse, error) {
	r, err := e.goodbyeAt(n, n.seq.Load()+1, plugin)
	return r.Body, err
}

// machineOf is the machine fingerprint n's agent binds records to.
func machineOf(n *node) string { return fmt.Sprintf("%064x", n.computer) }

// activateAt asks for a seat of Activation ID id with sequence number seq.
func (e *env) activateAt(n *node, seq uint64, id string) (reply[protocol.ActivateResponse], error) {
	return answer[protocol.ActivateResponse](e.s.Activate(e.ctx, n.requestAt(seq, protocol.KindActivate),
		&protocol.ActivateRequest{ActivationID: id, Machine: machineOf(n)}))
}

// activate asks for a seat of Activation ID id.
func (e *env) activate(n *node, id string) (protocol.ActivateResponse, error) {
	r, err := e.activateAt(n, n.seq.Load()+1, id)
	return r.Body, err
}

// deactivate returns n's seat of Activation ID id.
func (e *env) deactivate(n *node, id string) (protocol.DeactivateResponse, error) {
	r, err := answer[protocol.DeactivateResponse](e.s.Deactivate(e.ctx, n.request(protocol.KindDeactivate), &protocol.DeactivateRequest{ActivationID: id}))
	return r.Body, err
}

// activationStatus asks which of ids' records n holds are still valid.
func (e *env) activationStatus(n *node, ids ...string) (protocol.ActivationStatusResponse, error) {
	r, err := answer[protocol.ActivationStatusResponse](e.s.ActivationStatus(e.ctx, n.request(protocol.KindActivationStatus),
		&protocol.ActivationStatusRequest{ActivationIDs: ids}))
	return r.Body, err
}

// Lease operations, as the node API maps them onto the store.
const (
	heartbeat time.Duration = 0
	checkin   time.Duration = -1
)

// leaseAt checks out a lease of product for ttl (heartbeat: 0, checkin:
// negative) with sequence number seq.
func (e *env) leaseAt(n *node, seq uint64, product string, ttl time.Duration) (reply[protocol.LeaseResponse], error) {
	kind := protocol.KindLeaseCheckout
	switch {
	case ttl == heartbeat:
		kind = protocol.KindLeaseHeartbeat
	case ttl < 0:
		kind = protocol.KindLeaseCheckin
	}
	return answer[protocol.LeaseResponse](e.s.Lease(e.ctx, n.requestAt(seq, kind), product, ttl))
}

// lease checks out (ttl > 0), renews (heartbeat) or checks in (checkin) a
// lease of product.
func (e *env) lease(n *node, product string, ttl time.Duration) (protocol.LeaseResponse, error) {
	r, err := e.leaseAt(n, n.seq.Load()+1, product, ttl)
	return r.Body, err
}
