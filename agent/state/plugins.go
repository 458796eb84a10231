package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/tallyhq/tally/common/atomicfile"
)

// PluginsFile lists the installed plug-ins.
const PluginsFile = "plugins.json"

// InstalledPlugin is one plug-in installed on this machine. Version and
// BuildDate are what the agent reports for it: the build's own unless
// 'tally-agent plugin install --version' chose others (a test and
// compatibility knob: the server picks the product generation by version).
type InstalledPlugin struct {
	Name        string    `json:"name"`
	Version     string    `json:"version"`
	BuildDate   string    `json:"build_date,omitempty"`
	InstalledAt time.Time `json:"installed_at"`
}

// Plugins returns the installed plug-ins sorted by name; none when the file
// does not exist. Callers re-read it on every cycle, so installing or
// removing takes effect in a running agent without a restart.
func (d Dir) Plugins() ([]InstalledPlugin, error) {
	b, err := os.ReadFile(d.File(PluginsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read installed plug-ins: %w", err)
	}
	var ps []InstalledPlugin
	if err := json.Unmarshal(b, &ps); err != nil {
		return nil, fmt.Errorf("%s is damaged (%v): reinstall the plug-ins", d.File(PluginsFile), err)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	return ps, nil
}

// SavePlugins replaces the list of installed plug-ins. Callers hold the
// folder lock (WithLock) around the read-modify-write.
func (d Dir) SavePlugins(ps []InstalledPlugin) error {
	if ps == nil {
		ps = []InstalledPlugin{}
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	b, err := json.MarshalIndent(ps, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(d.File(PluginsFile), append(b, '\n'), 0o600)
}
