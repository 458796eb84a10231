// Package identity provides the cryptographic identities of Tally's two
// sides: Ed25519 keys kept in PEM files, self-signed certificates, the
// fingerprint agents pin (SHA-256 of the server's SubjectPublicKeyInfo), the
// node ID derived from an agent's public key, and the mutual-TLS 1.3
// configurations that enforce them.
package identity

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"

	"github.com/tallyhq/tally/common/atomicfile"
)

// NewKey returns a fresh Ed25519 private key.
func NewKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	return priv, nil
}

// SaveKey writes key to path as a PKCS#8 PEM file readable only by its owner.
func SaveKey(path string, key ed25519.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	return atomicfile.Write(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// LoadKey reads an Ed25519 private key written by SaveKey.
func LoadKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", path)
	}
	return ek, nil
}

// LoadOrCreateKey loads the key at path, or creates and saves one if the
// file does not exist. created tells which.
func LoadOrCreateKey(path string) (key ed25519.PrivateKey, created bool, err error) {
	key, err = LoadKey(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	if key, err = NewKey(); err != nil {
		return nil, false, err
	}
	if err = SaveKey(path, key); err != nil {
		return nil, false, err
	}
	return key, true, nil
}

// SelfSigned returns a long-lived self-signed certificate for key. Validity
// dates do not matter to Tally: peers are pinned by key, not by chain.
func SelfSigned(key ed25519.PrivateKey, commonName string) (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2120, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"tally"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("parse certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: crypto.Signer(key), Leaf: leaf}, nil
}

// Fingerprint is the lower-case hex SHA-256 of a certificate's
// SubjectPublicKeyInfo: it survives certificate renewal with the same key.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// ParseFingerprint normalises a fingerprint typed by a person: an optional
// "sha256:" prefix, colons or spaces between bytes, either case.
func ParseFingerprint(s string) (string, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimPrefix(t, "sha256:")
	t = strings.Map(func(r rune) rune {
		if r == ':' || r == ' ' || r == '-' {
			return -1
		}
		return r
	}, t)
	if len(t) != 64 {
		return "", fmt.Errorf("fingerprint %q: want 64 hex digits (the SHA-256 that tally-server prints at start)", s)
	}
	if _, err := hex.DecodeString(t); err != nil {
		return "", fmt.Errorf("fingerprint %q: not hexadecimal", s)
	}
	return t, nil
}

var nodeIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NodeID derives a node's stable, printable ID from its public key: 26
// base32 characters of the key's SHA-256.
func NodeID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return nodeIDEncoding.EncodeToString(sum[:16])
}

// PeerKey returns the Ed25519 public key of the peer's certificate.
func PeerKey(cs tls.ConnectionState) (ed25519.PublicKey, error) {
	if len(cs.PeerCertificates) == 0 {
		return nil, errors.New("peer presented no certificate")
	}
	pub, ok := cs.PeerCertificates[0].PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("peer certificate key is not Ed25519")
	}
	return pub, nil
}

// ServerTLS returns the server side of mutual TLS 1.3: every client must
// present a certificate with an Ed25519 key; who may do what is decided
// later, from the key. Session tickets stay enabled for cheap reconnects;
// the checks run in VerifyConnection, which also runs on resumption.
func ServerTLS(cert tls.Certificate, alpn string) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAnyClientCert,
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{alpn},
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := PeerKey(cs)
			return err
		},
	}
}

// ErrFingerprintMismatch is returned when the server's key is not the pinned one.
var ErrFingerprintMismatch = errors.New("server fingerprint does not match the pinned fingerprint")

// ClientTLS returns the agent side of mutual TLS 1.3: present cert, accept
// only a server whose key has the pinned fingerprint. The chain is not
// verified (the server's certificate is self-signed); the pin is the trust.
func ClientTLS(cert tls.Certificate, pin, alpn string) *tls.Config {
	want := []byte(pin)
	return &tls.Config{
		Certificates:       []tls.Certificate{cert},
		MinVersion:         tls.VersionTLS13,
		NextProtos:         []string{alpn},
		ServerName:         "tally",
		InsecureSkipVerify: true, // replaced by the pin check below, which also runs on resumed sessions
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server presented no certificate")
			}
			got := []byte(Fingerprint(cs.PeerCertificates[0]))
			if subtle.ConstantTimeCompare(got, want) != 1 {
				return fmt.Errorf("%w: got %s, pinned %s", ErrFingerprintMismatch, got, pin)
			}
			return nil
		},
		ClientSessionCache: newSessionKeeper(4), // see RestoreSessions
	}
}
