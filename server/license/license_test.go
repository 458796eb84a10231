package license

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"
)

func issuer(t testing.TB) (ed25519.PrivateKey, Trusted) {
	key, err := NewIssuerKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	return key, Trusted{IssuerID(pub): pub}
}

func sample() Payload {
	return Payload{ID: "L-1", Product: "monitor", Seats: 25, Kind: KindNode, Duration: TimeLimited,
		IssuedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), Expires: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).Unix(),
		UpgradeUntil: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC).Unix(), Customer: "ACME"}
}

func TestIssueAndParse(t *testing.T) {
	key, trusted := issuer(t)
	file, err := Issue(key, sample())
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(file, trusted)
	if err != nil {
		t.Fatal(err)
	}
	p := f.Payload
	if p.ID != "L-1" || p.Seats != 25 || p.Issuer != IssuerID(key.Public().(ed25519.PublicKey)) || p.ExpiresAt().Year() != 2027 {
		t.Fatalf("payload %+v", p)
	}
	if !strings.HasPrefix(string(file), "# Tally license L-1: 25 node seats of monitor") {
		t.Fatalf("file does not say what it is:\n%s", file)
	}
	// CRLF line ends (a file passed through Windows) still verify.
	if _, err := Parse([]byte(strings.ReplaceAll(string(file), "\n", "\r\n")), trusted); err != nil {
		t.Fatalf("CRLF: %v", err)
	}
	if err := f.CheckImport(time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired import: %v", err)
	}
	if err := f.CheckImport(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
}

// Every single-byte change anywhere in the file is caught.
func TestEveryChangedByteIsCaught(t *testing.T) {
	key, trusted := issuer(t)
	file, _ := Issue(key, sample())
	for i := range file {
		bad := append([]byte(nil), file...)
		bad[i] ^= 0x20
		if bad[i] == '\n' || file[i] == '\n' {
			bad[i] = 'x'
		}
		if _, err := Parse(bad, trusted); err == nil {
			t.Fatalf("changing byte %d (%q → %q) was not noticed", i, file[i], bad[i])
		}
	}
}

func TestRejections(t *testing.T) {
	key, trusted := issuer(t)
	file, _ := Issue(key, sample())
	other, _ := NewIssuerKey()
	foreign, _ := Issue(other, sample())
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"untrusted issuer", foreign, ErrUntrustedIssuer},
		{"garbage", []byte("hello"), ErrMalformed},
		{"no signature", []byte(strings.Split(string(file), "-----BEGIN TALLY LICENSE SIGNATURE")[0]), ErrMalformed},
	}
	for _, c := range cases {
		if _, err := Parse(c.data, trusted); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	for _, p := range []Payload{
		{Product: "m", Seats: 0, Kind: KindNode, Duration: Perpetual},
		{Product: "m", Seats: 1, Kind: "floating", Duration: Perpetual},
		{Product: "m", Seats: 1, Kind: KindNode, Duration: Subscription},
		{Product: "m", Seats: 1, Kind: KindNode, Duration: Perpetual, Expires: 5},
		{Product: "", Seats: 1, Kind: KindNode, Duration: Perpetual},
	} {
		if _, err := Issue(key, p); !errors.Is(err, ErrInvalid) {
			t.Errorf("issued an invalid license %+v: %v", p, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	key, trusted := issuer(f)
	file, _ := Issue(key, sample())
	f.Add(file)
	f.Add([]byte("-----BEGIN TALLY LICENSE-----\nIssuer: x\n\nAA==\n-----END TALLY LICENSE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lf, err := Parse(data, trusted)
		if err != nil {
			return
		}
		// Whatever verifies is exactly what the issuer wrote.
		if string(lf.Data) != strings.ReplaceAll(string(data), "\r\n", "\n") && strings.TrimRight(string(lf.Data), "\n ") != strings.TrimRight(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n ") {
			t.Fatalf("accepted a file that differs from the signed rendering")
		}
	})
}
