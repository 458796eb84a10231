// Package datadir owns the layout of the server's data folder: the TLS
// identity, the admin token, the first enrollment secret, the QUIC keys,
// the database, and the addresses file through which admin commands on the
// same host find the running server. Secrets are files readable only by
// their owner, in a folder only its owner can enter.
package datadir

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tallyhq/tally/common/atomicfile"
	"github.com/tallyhq/tally/common/identity"
)

// File names inside the data folder.
const (
	KeyFile          = "server.key"
	TokenFile        = "admin-token"
	SecretFile       = "enroll-secret"
	QUICKeysFile     = "quic-keys"
	DatabaseFile     = "tally.db"
	AddressesFile    = "addresses.json"
	IssuersFile      = "trusted-issuers"
	ProductsFileName = "products.toml"
)

// Dir is a server data folder.
type Dir struct {
	Path string
}

// File returns the path of name inside the folder.
func (d Dir) File(name string) string { return filepath.Join(d.Path, name) }

// Identity is what Open loads or creates.
type Identity struct {
	Key         ed25519.PrivateKey
	Cert        tls.Certificate
	Fingerprint string
	Token       string
	// ResetKey and TokenKey are the QUIC stateless-reset and address-token keys.
	ResetKey [32]byte
	TokenKey [32]byte
	// Created is true when this call made the folder's identity.
	Created bool
}

// Open loads the folder's identity, creating the folder (0700) and every
// missing file (0600) on first start.
func Open(path string) (Dir, Identity, error) {
	var id Identity
	if path == "" {
		return Dir{}, id, errors.New("no data folder given: pass --data DIR")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return Dir{}, id, fmt.Errorf("data folder %s: %w", path, err)
	}
	d := Dir{Path: abs}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return d, id, fmt.Errorf("create data folder: %w", err)
	}
	key, created, err := identity.LoadOrCreateKey(d.File(KeyFile))
	if err != nil {
		return d, id, fmt.Errorf("server key: %w", err)
	}
	id.Key, id.Created = key, created
	if id.Cert, err = identity.SelfSigned(key, "tally-server"); err != nil {
		return d, id, err
	}
	id.Fingerprint = identity.Fingerprint(id.Cert.Leaf)
	if id.Token, err = loadOrCreateRandom(d.File(TokenFile), 32); err != nil {
		return d, id, fmt.Errorf("admin token: %w", err)
	}
	keys, err := loadOrCreateBytes(d.File(QUICKeysFile), 64)
	if err != nil {
		return d, id, fmt.Errorf("QUIC keys: %w", err)
	}
	copy(id.ResetKey[:], keys[:32])
	copy(id.TokenKey[:], keys[32:])
	return d, id, nil
}

func loadOrCreateRandom(path string, n int) (string, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		v := strings.TrimSpace(string(data))
		if v == "" {
			return "", fmt.Errorf("%s is empty: delete it to have a new one made", path)
		}
		return v, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	v := base64.RawURLEncoding.EncodeToString(b)
	return v, atomicfile.Write(path, []byte(v+"\n"), 0o600)
}

func loadOrCreateBytes(path string, n int) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
		if err != nil || len(b) != n {
			return nil, fmt.Errorf("%s is damaged: delete it to have a new one made", path)
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, atomicfile.Write(path, []byte(base64.StdEncoding.EncodeToString(b)+"\n"), 0o600)
}

// WriteSecret records the first enrollment secret for people on the host.
func (d Dir) WriteSecret(secret string) error {
	return atomicfile.Write(d.File(SecretFile), []byte(secret+"\n"), 0o600)
}

// Addresses is what a running server writes into its folder.
type Addresses struct {
	QUIC        string    `json:"quic"`      // bound UDP address
	Advertise   string    `json:"advertise"` // what agents should dial
	AdminURL    string    `json:"admin_url"`
	Fingerprint string    `json:"fingerprint"`
	PID         int       `json:"pid"`
	StartedAt   time.Time `json:"started_at"`
	// TCP is the bound TCP address (the QUIC port number), empty when off.
	TCP string `json:"tcp,omitempty"`
}

// WriteAddresses records where the running server listens.
func (d Dir) WriteAddresses(a Addresses) error {
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(d.File(AddressesFile), append(b, '\n'), 0o600)
}

// RemoveAddresses is called at clean shutdown.
func (d Dir) RemoveAddresses() error {
	err := os.Remove(d.File(AddressesFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// ReadAddresses reads the running server's addresses.
func (d Dir) ReadAddresses() (Addresses, error) {
	var a Addresses
	b, err := os.ReadFile(d.File(AddressesFile))
	if errors.Is(err, os.ErrNotExist) {
		return a, &NotRunningError{Path: d.Path}
	}
	if err != nil {
		return a, err
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("%s: %w", d.File(AddressesFile), err)
	}
	return a, nil
}

// NotRunningError says that no server has started in a data folder (it has
// no addresses file): to an admin command, a server it cannot reach.
type NotRunningError struct{ Path string }

func (e *NotRunningError) Error() string {
	return fmt.Sprintf("no running server found in %s (no %s): start it with 'tally-server serve --data %s'", e.Path, AddressesFile, e.Path)
}

// ReadToken reads the admin token without creating one.
func (d Dir) ReadToken() (string, error) {
	b, err := os.ReadFile(d.File(TokenFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s has no admin token: is it a tally-server data folder?", d.Path)
		}
		return "", fmt.Errorf("read admin token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
