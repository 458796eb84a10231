package loadgen

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
)

// Target is the server under load: the only addresses a run talks to.
type Target struct {
	QUIC string // host:port agents dial
	// Servers, when set, are the addresses of several replicas of one
	// server (one database, one identity): agent i starts on Servers[i mod
	// len] and fails over to the next address when its server fails, as an
	// agent given a list of addresses does. QUIC is then Servers[0].
	Servers     []string
	Fingerprint string // the server's pinned fingerprint
	Secret      string // enrollment secret; read through the admin API when empty
	AdminURL    string
	Token       string
	// DataDir is the data folder of a server on this host, if known: with
	// it, licenses can be minted (a fresh issuer is trusted for the run).
	DataDir string
	// ServerPID is sampled for CPU and memory when the server is local.
	ServerPID int
	// Store is the replicas' postgres:// URL: the issuer of a license
	// minted for the run is shared through it with every replica (each
	// verifies the licenses it counts seats of with its own trusted
	// issuers). Empty: the issuer is trusted in DataDir alone.
	Store string
}

// Discover reads the target from the data folder of a running local
// server, as the admin commands do: addresses.json and admin-token.
func Discover(dir string) (Target, error) {
	d := datadir.Dir{Path: dir}
	a, err := d.ReadAddresses()
	if err != nil {
		return Target{}, err
	}
	tok, err := d.ReadToken()
	if err != nil {
		return Target{}, err
	}
	addr := a.QUIC
	// A server bound to the wildcard address is dialed on loopback: the
	// generator runs on the server's host.
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
	}
	return Target{QUIC: addr, Fingerprint: a.Fingerprint, AdminURL: a.AdminURL, Token: tok, DataDir: dir, ServerPID: a.PID}, nil
}

// complete checks the target and fills in the enrollment secret.
func (t *Target) complete(ctx context.Context, admin *adminapi.Client) error {
	pin, err := identity.ParseFingerprint(t.Fingerprint)
	if err != nil {
		return err
	}
	t.Fingerprint = pin
	for _, a := range t.addrs() {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("server address %q: want HOST:PORT", a)
		}
	}
	if t.Secret == "" {
		info, err := admin.EnrollInfo(ctx)
		if err != nil {
			return fmt.Errorf("read the enrollment secret through the admin API: %w", err)
		}
		t.Secret = info.Secret
		if info.Fingerprint != "" && info.Fingerprint != pin {
			return fmt.Errorf("the admin API at %s belongs to the server with fingerprint %s, not %s", t.AdminURL, info.Fingerprint, pin)
		}
	}
	if t.ServerPID > 0 {
		if _, err := os.Stat("/proc/" + strconv.Itoa(t.ServerPID)); err != nil {
			t.ServerPID = 0 // not on this host: no CPU and memory figures
		}
	}
	return nil
}

// addrs are the addresses agents dial: Servers, or QUIC alone.
func (t *Target) addrs() []string {
	if len(t.Servers) > 0 {
		return t.Servers
	}
	return []string{t.QUIC}
}

// loopback reports whether the servers share this host's clock.
func (t *Target) loopback() bool {
	for _, a := range t.addrs() {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return false
		}
		if ip := net.ParseIP(host); !(ip != nil && ip.IsLoopback()) && host != "localhost" && t.ServerPID <= 0 {
			return false
		}
	}
	return true
}

// provideSeats makes sure product has at least want free seats, minting
// a license for the shortfall when the data folder is known, or importing
// file. It returns a sentence for the report.
func provideSeats(ctx context.Context, t *Target, admin *adminapi.Client, product string, want int, file string) (string, error) {
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		res, err := admin.ImportLicenses(ctx, []adminapi.LicenseFile{{Name: file, Data: string(data)}})
		if err != nil {
			return "", fmt.Errorf("import %s: %w", file, err)
		}
		if len(res.Imported) == 0 {
			return fmt.Sprintf("license file %s was already imported", file), nil
		}
		return fmt.Sprintf("imported %s (%d seats of %s)", res.Imported[0].ID, res.Imported[0].Seats, res.Imported[0].Product), nil
	}
	u, err := usage(ctx, admin, product)
	if err != nil {
		return "", err
	}
	free := u.Granted - u.Consumed - u.Reserved
	if free >= want {
		return fmt.Sprintf("%s has %d free seats already", product, free), nil
	}
	if t.DataDir == "" {
		return fmt.Sprintf("%s has %d free seats and no license can be minted without --data", product, free), nil
	}
	if len(t.Servers) > 1 && t.Store == "" {
		return "", fmt.Errorf("%s has %d free seats; a license minted for replicas needs --store (their postgres:// URL), so that every replica trusts its issuer", product, free)
	}
	seats := want - max(free, 0)
	key, err := license.NewIssuerKey()
	if err != nil {
		return "", err
	}
	pub, err := license.EncodePublicKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		return "", err
	}
	issuer, err := daemon.TrustIssuer(datadir.Dir{Path: t.DataDir}, pub)
	if err != nil {
		return "", fmt.Errorf("trust a load-test issuer in %s: %w", t.DataDir, err)
	}
	where := t.DataDir
	if t.Store != "" {
		if err := daemon.ShareIssuer(ctx, t.Store, datadir.Dir{Path: t.DataDir}, issuer); err != nil {
			return "", fmt.Errorf("share the load-test issuer with the replicas: %w", err)
		}
		where += " and shared with every replica"
	}
	f, err := license.Issue(key, license.Payload{Product: product, Seats: uint32(seats), Kind: license.KindNode,
		Duration: license.Perpetual, IssuedAt: time.Now().Unix(), Customer: "tally-load"})
	if err != nil {
		return "", err
	}
	res, err := admin.ImportLicenses(ctx, []adminapi.LicenseFile{{Name: "tally-load.lic", Data: string(f)}})
	if err != nil {
		return "", fmt.Errorf("import the minted license: %w", err)
	}
	if len(res.Imported) != 1 {
		return "", fmt.Errorf("the minted license was not imported")
	}
	return fmt.Sprintf("minted %s: %d seats of %s (issuer %s, trusted in %s)", res.Imported[0].ID, seats, product, issuer, where), nil
}

func usage(ctx context.Context, admin *adminapi.Client, product string) (store.Usage, error) {
	us, err := admin.Usage(ctx, product)
	if err != nil {
		return store.Usage{}, fmt.Errorf("usage of %s: %w", product, err)
	}
	for _, u := range us {
		if u.Product == product {
			return u, nil
		}
	}
	return store.Usage{}, fmt.Errorf("the server reports no usage for product %q", product)
}
