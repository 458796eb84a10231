package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tallyhq/tally/common/atomicfile"
)

// LeasesFile holds the concurrent leases this agent has checked out.
const LeasesFile = "leases.json"

// Lease is a concurrent seat this agent holds.
type Lease struct {
	Product  string        `json:"product"`
	TTL      time.Duration `json:"ttl"`
	Expires  time.Time     `json:"expires"`
	LastBeat time.Time     `json:"last_beat"`
}

// Leases reads the leases file (empty when absent). The caller holds the
// folder's lock when it means to write them back.
func (d Dir) Leases() (map[string]Lease, error) {
	out := map[string]Lease{}
	b, err := os.ReadFile(d.File(LeasesFile))
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read leases: %w", err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return map[string]Lease{}, nil // only a cache of what the server holds: start over
	}
	return out, nil
}

// SaveLeases writes the leases file.
func (d Dir) SaveLeases(ls map[string]Lease) error {
	b, err := json.MarshalIndent(ls, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(d.File(LeasesFile), append(b, '\n'), 0o600)
}
