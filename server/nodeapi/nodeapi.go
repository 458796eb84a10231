// Package nodeapi answers agents' requests, whatever transport carried them:
// it decodes the envelope strictly, authenticates the node by the key of its
// client certificate, dispatches on the message kind to the store, and turns
// every outcome, including every kind of bad input, into a response.
package nodeapi

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/store"
)

// Observer receives one call per answered request, for metrics: its kind
// (zero when the envelope did not decode), status, handling time and size.
type Observer func(kind protocol.Kind, status protocol.Status, d time.Duration, requestBytes int)

// Handler answers node requests.
type Handler struct {
	store    store.Nodes
	log      *slog.Logger
	observer Observer
	leaseTTL time.Duration
	clock    clock.Clock
	live     sync.Map // node ID → unix nanoseconds until which it is known live
	unknown  unknownKeys
}

// DefaultLeaseTTL is the time to live of a lease checked out without one.
const DefaultLeaseTTL = 5 * time.Minute

// An Option changes a Handler's defaults.
type Option func(*Handler)

// WithClock sets the clock that ages the handler's memory of live and
// unknown nodes (default: the system clock).
func WithClock(c clock.Clock) Option { return func(h *Handler) { h.clock = c } }

// New returns a handler over st.
func New(st store.Nodes, log *slog.Logger, obs Observer, opts ...Option) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{store: st, log: log, observer: obs, leaseTTL: DefaultLeaseTTL, clock: clock.System{}}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Handle answers one encoded request from the peer whose certificate holds
// key. It never panics on bad input and always returns a response.
func (h *Handler) Handle(ctx context.Context, key ed25519.PublicKey, raw []byte) protocol.Response {
	start := time.Now() // the handling time is a duration for metrics, on the real clock whatever the injected one says
	req, err := protocol.DecodeRequest(raw)
	var resp protocol.Response
	if err != nil {
		resp = protocol.ErrorResponse(req.Seq, err)
	} else {
		resp = h.dispatch(ctx, key, req)
	}
	if h.observer != nil {
		h.observer(req.Kind, resp.Status, time.Since(start), len(raw))
	}
	return resp
}

// Refuse builds the response for input that never became a request, such
// as a message over the size limit.
func Refuse(err error) protocol.Response {
	if errors.Is(err, protocol.ErrTooLarge) {
		return protocol.ErrorResponse(0, protocol.Errorf(protocol.StatusTooLarge,
			"request is larger than %d bytes", protocol.MaxRequestSize))
	}
	return protocol.ErrorResponse(0, protocol.Errorf(protocol.StatusBadRequest, "could not read request: %v", err))
}

func (h *Handler) dispatch(ctx context.Context, key ed25519.PublicKey, req protocol.Request) protocol.Response {
	nodeID := identity.NodeID(key)
	if req.Kind == protocol.KindEnroll {
		var body protocol.EnrollRequest
		if err := protocol.DecodeBody(req.Body, &body); err != nil {
			return protocol.ErrorResponse(req.Seq, err)
		}
		out, err := h.store.Enroll(ctx, store.EnrollParams{NodeID: nodeID, PublicKey: key, Request: body})
		if err != nil {
			if errors.Is(err, store.ErrBadSecret) || errors.Is(err, store.ErrBlocked) {
				h.log.Warn("enrollment refused", "node", nodeID, "hostname", body.Hostname, "err", err)
			}
			return h.fail(req, nodeID, err)
		}
		h.unknown.forget(nodeID)
		h.rememberLive(nodeID)
		h.log.Info("node enrolled", "node", nodeID, "computer", out.ComputerID, "hostname", body.Hostname,
			"reenrolled", out.Reenrolled, "existing", out.Existing)
		return h.respond(req, out)
	}

	cached := h.liveNode(nodeID)
	if !cached {
		node, err := h.store.Node(ctx, nodeID)
		if err != nil {
			return h.fail(req, nodeID, err)
		}
		if node.Superseded {
			if node, err = h.store.SplitClone(ctx, nodeID); err != nil {
				return h.fail(req, nodeID, err)
			}
		}
		if node.Revoked {
			if req.Kind == protocol.KindGoodbye && node.RevokedReason == store.RevokedUninstall {
				// The goodbye that retired the key, sent again because its
				// answer was lost: the store answers it with the first
				// outcome (and refuses any other request).
				return h.apply(ctx, req, nodeID)
			}
			return h.fail(req, nodeID, &store.RevokedError{Reason: node.RevokedReason, ComputerID: node.ComputerID})
		}
		h.rememberLive(nodeID)
	}
	resp := h.apply(ctx, req, nodeID)
	if cached && resp.Status == protocol.StatusRevoked {
		// The key was revoked (or superseded by a re-enrollment) since it
		// was last looked up: look again, which also separates clones.
		h.forget(nodeID)
		return h.dispatch(ctx, key, req)
	}
	if resp.Status == protocol.StatusRevoked || resp.Status == protocol.StatusNotEnrolled {
		h.forget(nodeID)
	}
	return resp
}

// Authenticate tells, before the listener spends anything on a request
// of key, whether key belongs to an enrolled node in good standing (nil),
// or else the answer to its requests: not enrolled, revoked (such a key
// may still enroll, or repeat the goodbye that retired it, which the
// listener lets through under its small budget for unknown keys), or busy
// when the store cannot tell. Live nodes are cached (liveFor) and so are,
// briefly, unknown keys, so that a flood of requests from a key that never
// enrolled costs one lookup every unknownFor. A superseded key is let
// through: its requests split the clone off (dispatch).
func (h *Handler) Authenticate(ctx context.Context, key ed25519.PublicKey) *protocol.Error {
	id := identity.NodeID(key)
	if h.liveNode(id) {
		return nil
	}
	if pe := h.unknown.lookup(id, h.clock.Now()); pe != nil {
		return pe
	}
	node, err := h.store.Node(ctx, id)
	switch {
	case err == nil && node.Superseded:
		return nil
	case err == nil && node.Revoked:
		err = &store.RevokedError{Reason: node.RevokedReason, ComputerID: node.ComputerID}
	case err == nil:
		h.rememberLive(id)
		return nil
	}
	resp := h.fail(protocol.Request{}, id, err)
	var pe *protocol.Error
	errors.As(resp.Err(), &pe)
	if !pe.Status.Retryable() {
		h.unknown.remember(id, pe, h.clock.Now())
	}
	return pe
}

// Live nodes are remembered for a while, so that a request does not read
// its node before the write transaction that checks it again anyway.
const liveFor = 30 * time.Second

func (h *Handler) liveNode(id string) bool {
	v, ok := h.live.Load(id)
	return ok && h.clock.Now().UnixNano() < v.(int64)
}

func (h *Handler) rememberLive(id string) { h.live.Store(id, h.clock.Now().Add(liveFor).UnixNano()) }

func (h *Handler) forget(id string) { h.live.Delete(id) }

// apply runs an authenticated node's request.
func (h *Handler) apply(ctx context.Context, req protocol.Request, nodeID string) protocol.Response {
	r := store.Request{NodeID: nodeID, Seq: req.Seq, Kind: req.Kind}

	switch req.Kind {
	case protocol.KindInventory:
		var body protocol.InventoryRequest
		if err := protocol.DecodeBody(req.Body, &body); err != nil {
			return protocol.ErrorResponse(req.Seq, err)
		}
		out, err := h.store.PostInventory(ctx, r, &body)
		if err != nil {
			return h.fail(req, nodeID, err)
		}
		return h.outcome(req, out)
	case protocol.KindPluginData:
		var body protocol.PluginDataRequest
		if err := protocol.DecodeBody(req.Body, &body); err != nil {
			return protocol.ErrorResponse(req.Seq, err)
		}
		out, err := h.store.PostPluginData(ctx, r, &body)
		if err != nil {
			return h.fail(req, nodeID, err)
		}
		return h.outcome(req, out)
	case protocol.KindTaskRequest, protocol.KindCheckIn, protocol.KindCatalogRequest:
		var body protocol.PluginRequest
		if err := protocol.DecodeBody(req.Body, &body); err != nil {
			return protocol.ErrorResponse(req.Seq, err)
		}
		out, err := h.store.PluginRequest(ctx, r, &body)
		if err != nil {
			return h.fail(req, nodeID, err)
		}
		return h.outcome(req, out)
	case protocol.KindPackageRequest:
		var body protocol.PackageRequest
		if err := protocol.DecodeBody(req.Body, &body); err != nil {
			return protocol.ErrorResponse(req.Seq, err)
		}
		out, err := h.store.PluginRequest(ctx, r, &body)
		if err != nil {
			return h.fail(req, nodeID, err)
		}
		return h.outcome(req, out)
	case protocol.KindGoodbye:
		var body protocol.GoodbyeRequest
		if err := protocol.DecodeBody(req.Body, &body); err != nil {
			return protocol.ErrorResponse(req.Seq, err)
		}
		out, err := h.store.Goodbye(ctx, r, &body)
		if err != nil {
			return h.fail(req, nodeID, err)
		}
		h.log.Info("goodbye", "node", nodeID, "plugin", body.Plugin, "reason", body.Reason)
		return h.outcome(req, out)
	case protocol.KindActivate:
		var body protocol.ActivateRequest
		if err := protocol.DecodeBody(req.Body, &body); err != nil {
			return protocol.ErrorResponse(req.Seq, err)
		}
		out, err := h.store.Activate(ctx, r, &body)
		if err != nil {
			return h.fail(req, nodeID, err)
		}
		return h.outcome(req, out)
	case protocol.KindDeactivate:
		var body protocol.DeactivateRequest
		if err := protocol.DecodeBody(req.Body, &body); err != nil {
			return protocol.ErrorResponse(req.Seq, err)
		}
		out, err := h.store.Deactivate(ctx, r, &body)
		if err != nil {
			return h.fail(req, nodeID, err)
		}
		return h.outcome(req, out)
	case protocol.KindActivationStatus:
		var body protocol.ActivationStatusRequest
		if err := protocol.DecodeBody(req.Body, &body); err != nil {
			return protocol.ErrorResponse(req.Seq, err)
		}
		out, err := h.store.ActivationStatus(ctx, r, &body)
		if err != nil {
			return h.fail(req, nodeID, err)
		}
		return h.outcome(req, out)
	case protocol.KindLeaseCheckout:
		var body protocol.LeaseCheckoutRequest
		if err := protocol.DecodeBody(req.Body, &body); err != nil {
			return protocol.ErrorResponse(req.Seq, err)
		}
		ttl := time.Duration(body.TTL) * time.Second
		if ttl <= 0 {
			ttl = h.leaseTTL
		}
		out, err := h.store.Lease(ctx, r, body.Product, ttl)
		if err != nil {
			return h.fail(req, nodeID, err)
		}
		return h.outcome(req, leaseInKind(req, out))
	case protocol.KindLeaseHeartbeat, protocol.KindLeaseCheckin:
		var body protocol.LeaseRequest
		if err := protocol.DecodeBody(req.Body, &body); err != nil {
			return protocol.ErrorResponse(req.Seq, err)
		}
		ttl := time.Duration(0)
		if req.Kind == protocol.KindLeaseCheckin {
			ttl = -1
		}
		out, err := h.store.Lease(ctx, r, body.Product, ttl)
		if err != nil {
			return h.fail(req, nodeID, err)
		}
		return h.outcome(req, leaseInKind(req, out))
	}
	return protocol.ErrorResponse(req.Seq, protocol.Errorf(protocol.StatusUnknownKind, "message kind %s is not handled by this server", req.Kind))
}

// leaseInKind leaves the lease answer's Result out for an agent older than
// the revision that added it: its strict decoding would refuse the field.
func leaseInKind(req protocol.Request, out store.Outcome) store.Outcome {
	if req.Rev >= protocol.LeaseResultRevision {
		return out
	}
	var lr protocol.LeaseResponse
	if protocol.UnmarshalLenient(out.Body, &lr) != nil || lr.Result == 0 {
		return out
	}
	lr.Result = 0
	if b, err := protocol.Marshal(&lr); err == nil {
		out.Body = b
	}
	return out
}

func (h *Handler) respond(req protocol.Request, body any) protocol.Response {
	resp, err := protocol.NewResponse(req.Seq, body)
	if err != nil {
		h.log.Error("encode response", "kind", req.Kind, "err", err)
		return protocol.ErrorResponse(req.Seq, err)
	}
	return resp
}

func (h *Handler) outcome(req protocol.Request, out store.Outcome) protocol.Response {
	resp := protocol.Response{Major: protocol.Major, Rev: protocol.Revision, Status: protocol.StatusOK, Seq: req.Seq,
		Body: out.Body, Repeat: out.Repeat}
	return resp
}

// fail maps store errors to statuses with sentences that say what to do.
func (h *Handler) fail(req protocol.Request, nodeID string, err error) protocol.Response {
	var pe *protocol.Error
	switch {
	case errors.As(err, &pe):
	case errors.Is(err, store.ErrNotFound):
		pe = protocol.Errorf(protocol.StatusNotEnrolled, "%s", unknownKey)
	case errors.Is(err, store.ErrBadSecret):
		pe = protocol.Errorf(protocol.StatusBadSecret,
			"the enrollment secret is wrong, revoked or expired: ask the administrator for the output of 'tally-server enroll-info'")
	case errors.Is(err, store.ErrRevoked):
		pe = protocol.Errorf(protocol.StatusRevoked, "%s", revoked(err))
	case errors.Is(err, store.ErrStaleSeq):
		pe = protocol.Errorf(protocol.StatusStaleSeq, "%v", err)
	case errors.Is(err, store.ErrInvalid):
		pe = protocol.Errorf(protocol.StatusBadRequest, "%v", err)
	case errors.Is(err, store.ErrClosed), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		pe = &protocol.Error{Status: protocol.StatusBusy, Message: "server is shutting down or overloaded; retry later", RetryAfter: 5}
	default:
		h.log.Error("request failed", "node", nodeID, "kind", req.Kind, "seq", req.Seq, "err", err)
		pe = &protocol.Error{Status: protocol.StatusInternal, Message: "internal server error; the request can be retried", RetryAfter: 5}
	}
	return protocol.ErrorResponse(req.Seq, pe)
}
