package activation

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/tallyhq/tally/protocol"
)

func setup(t *testing.T) (ed25519.PrivateKey, []byte, Expect) {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(key.Public())
	sum := sha256.Sum256(spki)
	machine := hex.EncodeToString(make([]byte, 32))
	rec := protocol.ActivationRecord{ActivationID: "ACT-TEST-0001", Product: "cad", Node: "node1", Machine: machine, IssuedAt: 1, Expires: time.Now().Add(time.Hour).Unix()}
	data, err := Sign(key, rec)
	if err != nil {
		t.Fatal(err)
	}
	return key, data, Expect{Fingerprint: hex.EncodeToString(sum[:]), Node: "node1", Machine: machine, Now: time.Now()}
}

func TestVerify(t *testing.T) {
	_, data, exp := setup(t)
	rec, err := Verify(data, exp)
	if err != nil || rec.Product != "cad" {
		t.Fatalf("%+v %v", rec, err)
	}
	other := exp
	other.Machine = hex.EncodeToString(make([]byte, 31)) + "01"
	if _, err := Verify(data, other); !errors.Is(err, ErrOtherMachine) {
		t.Fatalf("moved to another machine: %v", err)
	}
	other = exp
	other.Node = "node2"
	if _, err := Verify(data, other); !errors.Is(err, ErrOtherNode) {
		t.Fatalf("another node: %v", err)
	}
	other = exp
	other.Fingerprint = hex.EncodeToString(make([]byte, 32))
	if _, err := Verify(data, other); !errors.Is(err, ErrOtherServer) {
		t.Fatalf("another server: %v", err)
	}
	other = exp
	other.Now = time.Now().Add(2 * time.Hour)
	if _, err := Verify(data, other); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
}

// A record edited by one byte, anywhere, does not verify.
func TestEveryEditedByteFails(t *testing.T) {
	_, data, exp := setup(t)
	for i := range data {
		bad := append([]byte(nil), data...)
		bad[i] ^= 0x01
		if _, err := Verify(bad, exp); err == nil {
			t.Fatalf("byte %d edited: still verifies", i)
		}
	}
}

// Another server's key cannot sign records this agent accepts, even with
// the right fingerprint in the payload's place.
func TestForgedByAnotherKey(t *testing.T) {
	_, data, exp := setup(t)
	_, evil, _ := ed25519.GenerateKey(nil)
	var sr protocol.SignedRecord
	if err := protocol.Unmarshal(data, &sr); err != nil {
		t.Fatal(err)
	}
	sr.Signature = ed25519.Sign(evil, sr.Payload)
	forged, _ := protocol.MarshalCanonical(&sr)
	if _, err := Verify(forged, exp); !errors.Is(err, ErrDamaged) {
		t.Fatalf("forged signature: %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	_, key, _ := ed25519.GenerateKey(nil)
	data, _ := Sign(key, protocol.ActivationRecord{ActivationID: "ACT-X", Product: "p", Node: "n", Machine: "m"})
	f.Add(data)
	f.Add([]byte{0xa2, 0x01, 0x40, 0x02, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Verify(b, Expect{Fingerprint: "x", Node: "n", Machine: "m", Now: time.Now()})
	})
}
