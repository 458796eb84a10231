// Package trusted is the agent's trusted storage of node-locked activation
// records: one file per Activation ID in the data folder, readable only by
// the agent's user, each a server-signed record bound to this node and this
// machine's fingerprint (common/activation verifies it). Files are written
// atomically, so a crash never leaves half a record.
package trusted

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tallyhq/tally/common/atomicfile"
	"github.com/tallyhq/tally/protocol"
)

// Dir is the folder of records inside the agent's data folder.
const Dir = "activations"

const suffix = ".rec"

// Store holds activation records.
type Store struct {
	dir string
}

// Open opens (creating, 0700) the trusted storage under the data folder.
func Open(dataDir string) (*Store, error) {
	d := filepath.Join(dataDir, Dir)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return nil, fmt.Errorf("open trusted storage: %w", err)
	}
	return &Store{dir: d}, nil
}

func (s *Store) path(id string) (string, error) {
	if !protocol.ValidActivationID(id) {
		return "", fmt.Errorf("%q is not an Activation ID", id)
	}
	return filepath.Join(s.dir, id+suffix), nil
}

// Put stores the record of an Activation ID, replacing any earlier one.
func (s *Store) Put(id string, record []byte) error {
	p, err := s.path(id)
	if err != nil {
		return err
	}
	return atomicfile.Write(p, record, 0o600)
}

// Get returns the record of an Activation ID; os.ErrNotExist if none.
func (s *Store) Get(id string) ([]byte, error) {
	p, err := s.path(id)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// Remove deletes a record; removing one that is not there is not an error.
func (s *Store) Remove(id string) error {
	p, err := s.path(id)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove activation record: %w", err)
	}
	return atomicfile.SyncDir(s.dir)
}

// IDs lists the Activation IDs with a record, sorted.
func (s *Store) IDs() ([]string, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("read trusted storage: %w", err)
	}
	var out []string
	for _, de := range des {
		name := de.Name()
		if de.IsDir() || !strings.HasSuffix(name, suffix) || strings.HasPrefix(name, ".") {
			continue
		}
		if id := strings.TrimSuffix(name, suffix); protocol.ValidActivationID(id) {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out, nil
}
