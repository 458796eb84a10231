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
	Transport   string                   `json:"transport,omitempty"`
	LastAttempt time.Time                `json:"last_attempt,omitempty"`
	LastSuccess time.Time                `json:"last_success,omitempty"`
	LastError   string                   `json:"last_error,omitempty"`
	Products    map[string]ProductStatus `json:"products,omitempty"`
	// Refused holds the message when the server refuses this node
	// (revoked, not enrolled): posts stay queued until it is resolved.
	Refused string `json:"refused,omitempty"`
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
