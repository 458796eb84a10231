package runner

import (
	"fmt"

	"github.com/tallyhq/tally/agent/plugins"
	"github.com/tallyhq/tally/agent/runner/delta"
	"github.com/tallyhq/tally/agent/spool"
	"github.com/tallyhq/tally/agent/state"
	"github.com/tallyhq/tally/protocol"
)

// applyResponse records what the server answered to record r: verdicts,
// and for an inventory post planned as plan, the acknowledged state. It
// reports whether ack changed (the caller saves it before the record
// leaves the spool).
func (a *Agent) applyResponse(st *state.Status, res *FlushResult, r spool.Record, resp protocol.Response, ack *state.Ack, plan *delta.Pending) bool {
	decode := func(v any) bool {
		if len(resp.Body) == 0 {
			return true
		}
		if err := protocol.Unmarshal(resp.Body, v); err != nil {
			a.log.Warn("malformed answer", "kind", r.Kind, "seq", r.Seq, "err", err)
			return false
		}
		return true
	}
	switch r.Kind {
	case protocol.KindInventory:
		var body protocol.InventoryResponse
		if !decode(&body) {
			return false
		}
		a.recordVerdicts(st, res, body.Verdicts, "")
		if plan == nil {
			return false
		}
		changed, repost := delta.Apply(ack, *plan, &body)
		res.Repost = res.Repost || repost
		return changed
	case protocol.KindPluginData:
		var body protocol.VerdictResponse
		if decode(&body) {
			a.recordVerdicts(st, res, body.Verdicts, recordPlugin(r))
		}
	case protocol.KindCheckIn:
		var body protocol.CheckInResponse
		if decode(&body) {
			a.recordVerdicts(st, res, body.Verdicts, recordPlugin(r))
			if body.Message != "" {
				a.log.Info("check-in answered", "message", body.Message)
			}
		}
	case protocol.KindGoodbye:
		var body protocol.GoodbyeResponse
		if !decode(&body) {
			return false
		}
		plugin := recordPlugin(r)
		for _, p := range body.Freed {
			delete(st.Products, p)
		}
		res.Freed = append(res.Freed, body.Freed...)
		if plugin != "" {
			delete(st.Plugins, plugin)
		}
		a.log.Info("goodbye acknowledged", "plugin", plugin, "freed", body.Freed)
		// The server's copy of the basic inventory still lists the plug-in
		// under the same hash: the next post must send it whole, or a
		// plug-in installed again would not be seen.
		if plugin != "" && !ack.NeedBasic {
			ack.NeedBasic = true
			return true
		}
	}
	return false
}

// recordPlugin returns the plug-in a queued plug-in request belongs to.
func recordPlugin(r spool.Record) string {
	switch r.Kind {
	case protocol.KindPluginData:
		var b protocol.PluginDataRequest
		if protocol.Unmarshal(r.Body, &b) == nil {
			return b.Plugin.Name
		}
	case protocol.KindCheckIn, protocol.KindTaskRequest, protocol.KindCatalogRequest:
		var b protocol.PluginRequest
		if protocol.Unmarshal(r.Body, &b) == nil {
			return b.Plugin.Name
		}
	case protocol.KindPackageRequest:
		var b protocol.PackageRequest
		if protocol.Unmarshal(r.Body, &b) == nil {
			return b.Plugin.Name
		}
	case protocol.KindGoodbye:
		var b protocol.GoodbyeRequest
		if protocol.Unmarshal(r.Body, &b) == nil {
			return b.Plugin
		}
	}
	return ""
}

// planInventory turns a spooled inventory snapshot into the post to send
// against the acknowledged state. A record it cannot read is sent as it
// is (the server judges it).
func (a *Agent) planInventory(r spool.Record, ack *state.Ack) ([]byte, *delta.Pending, string) {
	var snap protocol.InventoryRequest
	if err := protocol.Unmarshal(r.Body, &snap); err != nil {
		return r.Body, nil, ""
	}
	wire, plan := delta.Plan(snap, r.Created, ack)
	enc, err := protocol.Marshal(&wire)
	if err != nil {
		return r.Body, nil, ""
	}
	return enc, &plan, describe(&wire, plan)
}

func describe(w *protocol.InventoryRequest, p delta.Pending) string {
	f := "basic"
	if !p.BasicSent {
		f = "basic-hash"
	}
	switch p.Software {
	case delta.Full:
		f += fmt.Sprintf(" software-full %d", len(w.Software.Packages))
	case delta.Delta:
		f += fmt.Sprintf(" software-delta +%d -%d", len(w.Software.Added), len(w.Software.Removed))
	case delta.Probe:
		f += " software-probe"
	}
	return f
}

// envelopeSize is the size of the request envelope the client sends for
// body: what "bytes on the wire" means in the figures (QUIC and TLS
// framing aside).
func envelopeSize(kind protocol.Kind, seq uint64, body []byte) int {
	b, err := protocol.Marshal(protocol.Request{Major: protocol.Major, Rev: protocol.Revision, Kind: kind, Seq: seq, Body: body})
	if err != nil {
		return 0
	}
	return len(b)
}

// recordVerdicts keeps the last verdict per product and, for the verdicts
// that decide something (licensed, or refused), per plug-in. plugin names
// the plug-in whose own request was answered: every verdict of such an
// answer is about one of its products, which is how the agent learns which
// products belong to which plug-in. The verdicts of an inventory post
// (plugin empty) are attributed through what was learned, or by name
// (plugins.Registry.Owner). res may be nil.
func (a *Agent) recordVerdicts(st *state.Status, res *FlushResult, vs []protocol.ProductVerdict, plugin string) {
	if len(vs) == 0 {
		return
	}
	if st.Products == nil {
		st.Products = map[string]state.ProductStatus{}
	}
	if res != nil && res.Verdicts == nil {
		res.Verdicts = map[string]string{}
	}
	var installed []string
	if plugin == "" {
		ps, _ := a.Installed()
		for _, p := range ps {
			installed = append(installed, p.Name)
		}
	}
	now := a.clock.Now()
	for _, v := range vs {
		st.Products[v.Product] = state.ProductStatus{Verdict: v.Verdict, Reason: v.Reason, At: now}
		if res != nil {
			res.Verdicts[v.Product] = v.Verdict.String()
		}
		if v.Verdict.Discarded() {
			a.log.Info("server discarded product data", "product", v.Product, "verdict", v.Verdict.String(), "reason", v.Reason)
		}
		owner := plugin
		if owner != "" {
			if st.ProductPlugins == nil {
				st.ProductPlugins = map[string]string{}
			}
			st.ProductPlugins[v.Product] = owner
		} else {
			owner = plugins.Default.Owner(v.Product, installed, st.ProductPlugins)
		}
		if owner == "" || v.Verdict == protocol.VerdictNotApplicable || !v.Verdict.Known() {
			continue
		}
		if st.Plugins == nil {
			st.Plugins = map[string]state.PluginStatus{}
		}
		st.Plugins[owner] = state.PluginStatus{Product: v.Product, Verdict: v.Verdict, Reason: v.Reason, At: now}
	}
}
