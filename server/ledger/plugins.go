package ledger

import (
	"encoding/json"

	"github.com/tallyhq/tally/protocol"
)

// PluginSet is a stored plug-in list decoded, with the products its
// plug-ins bring. It is shared through Ledger.Plugins: read it only.
type PluginSet struct {
	Plugins  []protocol.Plugin
	Products []string
}

// EncodePlugins is how a computer's plug-in list is stored: JSON, never
// null.
func EncodePlugins(ps []protocol.Plugin) (string, error) {
	if ps == nil {
		ps = []protocol.Plugin{}
	}
	b, err := json.Marshal(ps)
	return string(b), err
}

// DecodePlugins reads a stored plug-in list; a damaged one reads as none.
func DecodePlugins(s string) []protocol.Plugin {
	var out []protocol.Plugin
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil
	}
	return out
}

// Plugins decodes a computer's stored plug-in list. A fleet has few
// distinct lists and each post needs its computer's, so decoded lists are
// kept by their text, a few thousand at most (docs/PERFORMANCE.md has the
// cost this saves).
func (l *Ledger) Plugins(js string) PluginSet {
	l.pluginMu.RLock()
	ps, ok := l.pluginSets[js]
	l.pluginMu.RUnlock()
	if ok {
		return ps
	}
	ps.Plugins = DecodePlugins(js)
	ps.Products = l.ProductsFor(ps.Plugins...)
	l.pluginMu.Lock()
	if len(l.pluginSets) >= 4096 {
		clear(l.pluginSets)
	}
	l.pluginSets[js] = ps
	l.pluginMu.Unlock()
	return ps
}

// ProductsFor lists the products the plug-ins bring.
func (l *Ledger) ProductsFor(pls ...protocol.Plugin) []string {
	var out []string
	for _, pl := range pls {
		for _, p := range l.engine.Catalog().ForPlugin(pl.Name, pl.Version) {
			out = append(out, p.Name)
		}
	}
	return out
}
