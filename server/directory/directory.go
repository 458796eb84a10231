// Package directory reads users from an LDAP directory (Microsoft AD,
// OpenLDAP, 389/Red Hat DS) and turns each into the entry the store merges:
// a stable key from entryUUID or objectGUID, the account's OU and groups,
// and its external status (active, or disabled by userAccountControl,
// pwdAccountLockedTime or nsAccountLock). A sync always lists the whole
// base with a paged search, because only a complete listing shows who is
// gone.
package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/users"
)

// Defaults.
const (
	// DefaultFilter finds person accounts in OpenLDAP and AD.
	DefaultFilter = "(|(objectClass=inetOrgPerson)(&(objectCategory=person)(objectClass=user)))"
	// DefaultGroupFilter finds groups whose members are listed by DN.
	DefaultGroupFilter = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=group))"
	// DefaultPageSize is below AD's default MaxPageSize of 1,000.
	DefaultPageSize = 500
	// DefaultInterval is how often a directory is synced by itself.
	DefaultInterval = time.Hour
	// MaxEntries bounds one listing, so a wrong base cannot exhaust memory.
	MaxEntries = 1_000_000
)

// ErrConfig reports a directory setting that cannot work.
var ErrConfig = errors.New("invalid directory setting")

// Source lists every user of a directory.
type Source interface {
	List(ctx context.Context) ([]store.DirectoryEntry, error)
}

// Check validates a directory's settings and fills defaults.
func Check(d *store.Directory) error {
	if err := users.CheckName("directory name", d.Name); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	u, err := url.Parse(d.URL)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
		return fmt.Errorf("%w: --url %q: give ldap://host[:port] or ldaps://host[:port]", ErrConfig, d.URL)
	}
	if d.StartTLS && u.Scheme == "ldaps" {
		return fmt.Errorf("%w: --start-tls is for ldap:// URLs; an ldaps:// URL is already TLS", ErrConfig)
	}
	if _, err := ldap.ParseDN(d.BaseDN); err != nil || d.BaseDN == "" {
		return fmt.Errorf("%w: --base-dn %q is not a DN (e.g. dc=example,dc=org)", ErrConfig, d.BaseDN)
	}
	if d.BindDN != "" {
		if _, err := ldap.ParseDN(d.BindDN); err != nil && !strings.Contains(d.BindDN, "@") && !strings.Contains(d.BindDN, `\`) {
			return fmt.Errorf("%w: --bind-dn %q is not a DN or user principal name", ErrConfig, d.BindDN)
		}
		if d.PasswordFile == "" {
			return fmt.Errorf("%w: --bind-dn needs --password-file", ErrConfig)
		}
	}
	if d.Filter == "" {
		d.Filter = DefaultFilter
	}
	if d.GroupFilter == "" {
		d.GroupFilter = DefaultGroupFilter
	}
	for flag, f := range map[string]string{"--filter": d.Filter, "--group-filter": d.GroupFilter} {
		if _, err := ldap.CompileFilter(f); err != nil {
			return fmt.Errorf("%w: %s %q: %w", ErrConfig, flag, f, err)
		}
	}
	if d.Domain != "" {
		if err := users.CheckName("domain", d.Domain); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	if d.Interval == 0 {
		d.Interval = DefaultInterval
	}
	if d.Interval < time.Minute || d.Interval > 7*24*time.Hour {
		return fmt.Errorf("%w: --interval %s: give between 1m and 168h", ErrConfig, d.Interval)
	}
	return nil
}

// LDAP is a directory reached over LDAP.
type LDAP struct {
	Dir      store.Directory
	Password string // read from Dir.PasswordFile when empty
	// CAFile is a PEM file of the CA certificates that sign the directory's
	// certificate, trusted instead of the system's for ldaps:// and
	// StartTLS (as ldap.conf's TLS_CACERT); empty: the system's CAs.
	CAFile   string
	TLS      *tls.Config // overrides CAFile; nil: the URL's host, verified
	PageSize uint32      // 0: DefaultPageSize
	Timeout  time.Duration
}

// ErrUntrusted reports a directory whose TLS certificate is not signed by
// a CA the server trusts.
var ErrUntrusted = errors.New("the directory's TLS certificate is not signed by a trusted CA")

// TLSConfig is the TLS of a connection to rawURL's host that trusts the
// CAs of caFile, or the system's when caFile is empty.
func TLSConfig(rawURL, caFile string) (*tls.Config, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: --url %q: %w", ErrConfig, rawURL, err)
	}
	tc := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return tc, nil
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read the directory's CA file: %w", err)
	}
	tc.RootCAs = x509.NewCertPool()
	if !tc.RootCAs.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%w: CA file %s holds no PEM certificate (BEGIN CERTIFICATE)", ErrConfig, caFile)
	}
	return tc, nil
}

// verifying returns tc verifying the peer itself, as crypto/tls would, and
// keeping the verification's error in *failed: the LDAP client flattens
// a StartTLS handshake's error to text, and the cause decides the advice.
func verifying(tc *tls.Config, failed *error) *tls.Config {
	tc = tc.Clone()
	roots := tc.RootCAs
	tc.InsecureSkipVerify = true // replaced by VerifyConnection below, never skipped
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			*failed = errors.New("the directory sent no certificate")
			return *failed
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: tc.ServerName, Roots: roots, Intermediates: inter})
		*failed = err
		return err
	}
	return tc
}

// untrusted turns a certificate verification failure into a sentence that
// says what to do.
func untrusted(err, verr error, caFile string) error {
	if verr == nil {
		return err
	}
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	switch {
	case errors.As(verr, &hn):
		return fmt.Errorf("%w (%w): give in --url the host name the certificate names", ErrUntrusted, verr)
	case errors.As(verr, &ua) && caFile != "":
		return fmt.Errorf("%w (%w): the CA file %s does not hold the CA that signs it", ErrUntrusted, verr, caFile)
	case errors.As(verr, &ua):
		return fmt.Errorf("%w (%w): give the CA that signs it with --ca-file, or add it to this host's trusted CAs", ErrUntrusted, verr)
	}
	return fmt.Errorf("%w (%w)", ErrUntrusted, verr)
}

func (l *LDAP) dial(ctx context.Context) (*ldap.Conn, error) {
	timeout := l.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	tc := l.TLS
	var verr error
	if tc == nil {
		var err error
		if tc, err = TLSConfig(l.Dir.URL, l.CAFile); err != nil {
			return nil, err
		}
		tc = verifying(tc, &verr)
	}
	conn, err := ldap.DialURL(l.Dir.URL, ldap.DialWithDialer(&net.Dialer{Timeout: timeout}), ldap.DialWithTLSConfig(tc))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", l.Dir.URL, untrusted(err, verr, l.CAFile))
	}
	conn.SetTimeout(timeout)
	if l.Dir.StartTLS {
		if err := conn.StartTLS(tc); err != nil {
			conn.Close()
			return nil, fmt.Errorf("StartTLS with %s: %w", l.Dir.URL, untrusted(err, verr, l.CAFile))
		}
	}
	if l.Dir.BindDN != "" {
		pw := l.Password
		if pw == "" {
			b, err := os.ReadFile(l.Dir.PasswordFile)
			if err != nil {
				conn.Close()
				return nil, fmt.Errorf("read the bind password: %w", err)
			}
			pw = strings.TrimRight(string(b), "\r\n")
		}
		if err := conn.Bind(l.Dir.BindDN, pw); err != nil {
			conn.Close()
			return nil, fmt.Errorf("bind to %s as %s: %w", l.Dir.URL, l.Dir.BindDN, err)
		}
	}
	return conn, nil
}

var userAttrs = []string{"entryUUID", "objectGUID", "uid", "sAMAccountName", "cn", "displayName",
	"userAccountControl", "pwdAccountLockedTime", "nsAccountLock", "memberOf"}

// List implements Source with a paged search of users, then of groups.
func (l *LDAP) List(ctx context.Context) ([]store.DirectoryEntry, error) {
	conn, err := l.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	page := l.PageSize
	if page == 0 {
		page = DefaultPageSize
	}
	res, err := conn.SearchWithPaging(ldap.NewSearchRequest(l.Dir.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		MaxEntries+1, 0, false, l.Dir.Filter, userAttrs, nil), page)
	if err != nil {
		return nil, fmt.Errorf("search users under %s: %w", l.Dir.BaseDN, err)
	}
	if len(res.Entries) > MaxEntries {
		return nil, fmt.Errorf("search users under %s: more than %d entries: narrow --base-dn or --filter", l.Dir.BaseDN, MaxEntries)
	}
	gres, err := conn.SearchWithPaging(ldap.NewSearchRequest(l.Dir.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		0, 0, false, l.Dir.GroupFilter, []string{"cn", "member", "uniqueMember"}, nil), page)
	if err != nil {
		return nil, fmt.Errorf("search groups under %s: %w", l.Dir.BaseDN, err)
	}
	groupsOf := map[string][]string{} // normalised member DN → group names
	for _, g := range gres.Entries {
		name := g.GetAttributeValue("cn")
		for _, m := range append(g.GetAttributeValues("member"), g.GetAttributeValues("uniqueMember")...) {
			k := normDN(m)
			groupsOf[k] = append(groupsOf[k], name)
		}
	}
	out := make([]store.DirectoryEntry, 0, len(res.Entries))
	for _, e := range res.Entries {
		de, ok := Entry(e, l.Dir.Domain)
		if !ok {
			continue // no usable name: nothing to key or show
		}
		seen := map[string]bool{}
		for _, g := range de.Groups {
			seen[strings.ToLower(g)] = true
		}
		for _, g := range groupsOf[normDN(e.DN)] {
			if !seen[strings.ToLower(g)] {
				de.Groups = append(de.Groups, g)
				seen[strings.ToLower(g)] = true
			}
		}
		out = append(out, de)
	}
	return out, nil
}

func normDN(dn string) string {
	if p, err := ldap.ParseDN(dn); err == nil {
		return strings.ToLower(p.String())
	}
	return strings.ToLower(dn)
}

// Entry maps one LDAP user entry; false when it has no name.
func Entry(e *ldap.Entry, domain string) (store.DirectoryEntry, bool) {
	de := store.DirectoryEntry{Domain: domain, DN: e.DN, External: users.ExtActive}
	for _, a := range []string{"sAMAccountName", "uid", "cn"} {
		if v := e.GetAttributeValue(a); v != "" {
			de.Name = v
			break
		}
	}
	if users.CheckName("name", de.Name) != nil {
		return de, false
	}
	de.Display = e.GetAttributeValue("displayName")
	if de.Display == "" {
		de.Display = e.GetAttributeValue("cn")
	}
	if users.CheckName("display", de.Display) != nil {
		de.Display = ""
	}
	if g := e.GetRawAttributeValue("objectGUID"); len(g) == 16 {
		de.GUID = formatGUID(g)
	} else if u := e.GetAttributeValue("entryUUID"); u != "" {
		de.GUID = u
	}
	if p, err := ldap.ParseDN(e.DN); err == nil && len(p.RDNs) > 1 {
		parent := &ldap.DN{RDNs: p.RDNs[1:]}
		de.OU = parent.String()
	}
	for _, m := range e.GetAttributeValues("memberOf") {
		if p, err := ldap.ParseDN(m); err == nil && len(p.RDNs) > 0 && len(p.RDNs[0].Attributes) > 0 {
			de.Groups = append(de.Groups, p.RDNs[0].Attributes[0].Value)
		}
	}
	de.External, de.ExternalWhy = ExternalStatus(e)
	return de, true
}

// ExternalStatus reads whether the directory has disabled the account.
func ExternalStatus(e *ldap.Entry) (status, why string) {
	if v := e.GetAttributeValue("userAccountControl"); v != "" {
		if n, err := strconv.ParseUint(v, 10, 32); err == nil && n&0x2 != 0 {
			return users.ExtDisabled, "disabled (userAccountControl ACCOUNTDISABLE)"
		}
	}
	if v := e.GetAttributeValue("pwdAccountLockedTime"); v != "" {
		return users.ExtDisabled, "locked (pwdAccountLockedTime " + v + ")"
	}
	if strings.EqualFold(e.GetAttributeValue("nsAccountLock"), "true") {
		return users.ExtDisabled, "locked (nsAccountLock)"
	}
	return users.ExtActive, "active"
}

// formatGUID writes AD's objectGUID, whose first three fields are
// little-endian, as AD tools show it.
func formatGUID(b []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[4:6]),
		binary.LittleEndian.Uint16(b[6:8]), b[8:10], b[10:16])
}

// Sync lists src and merges it into the store as directory dir; a listing
// that fails changes no user and is recorded on the directory.
func Sync(ctx context.Context, st store.Users, dir string, src Source, actor string) (store.SyncResult, error) {
	entries, err := src.List(ctx)
	if err != nil {
		if rerr := st.RecordSyncFailure(ctx, dir, err.Error()); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return store.SyncResult{}, fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return st.SyncDirectory(ctx, dir, entries, actor)
}
