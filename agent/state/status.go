package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tallyhq/tally/common/atomicfile"
	"github.com/tallyhq/tally/protocol"
)

// ProductStatus is the last verdict the server gave for one product.
type ProductStatus struct {
	Verdict protocol.Verdict `json:"verdict"`
	Reason  string           `json:"reason,omitempty"`
	At      time.Time        `json:"at"`
}

// Status is what the agent last learned from talking to the server, kept
// for 'tally-agent status'.
type Status struct {
	Transport string `json:"transport,omitempty"`
	// Server is the address that last answered, of the enrollment's
	// several; it is dialed first by the next run. ServerSince is when the
	// agent moved to it from the first address, zero while on the first.
	Server      string                   `json:"server,omitempty"`
	ServerSince time.Time                `json:"server_since,omitzero"`
	LastAttempt time.Time                `json:"last_attempt,omitempty"`
	LastSuccess time.Time                `json:"last_success,omitempty"`
	LastError   string                   `json:"last_error,omitempty"`
	Products    map[string]ProductStatus `json:"products,omitempty"`
	// Refused holds the message when the server refuses this node
	// (revoked, not enrolled): posts stay queued until it is resolved.
	Refused string `json:"refused,omitempty"`
	// Plugins is the last verdict that decides what each plug-in may do:
	// the last licensed or refused verdict of one of its products
	// (not-applicable answers say nothing about the plug-in and are not
	// kept here).
	Plugins map[string]PluginStatus `json:"plugins,omitempty"`
	// ProductPlugins maps a product to the plug-in it belongs to, learned
	// from the answers to the plug-ins' own requests.
	ProductPlugins map[string]string `json:"product_plugins,omitempty"`
	// LastPostBytes is the size on the wire of the last inventory request
	// sent (its whole envelope).
	LastPostBytes int `json:"last_post_bytes,omitempty"`
}

// PluginStatus is the verdict that decides what a plug-in may do.
type PluginStatus struct {
	Product string           `json:"product"`
	Verdict protocol.Verdict `json:"verdict"`
	Reason  string           `json:"reason,omitempty"`
	At      time.Time        `json:"at"`
}

// LoadStatus reads the status file; a missing file is an empty status.
func (d Dir) LoadStatus() (Status, error) {
	var s Status
	b, err := os.ReadFile(d.File(StatusFile))
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read status: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return Status{}, nil // a damaged status file is only history: start over
	}
	return s, nil
}

// SaveStatus writes the status file.
func (d Dir) SaveStatus(s Status) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(d.File(StatusFile), append(b, '\n'), 0o600)
}
