// Package slapdtest starts a real OpenLDAP slapd for tests: a temporary
// cn=config (mdb backend, the core, cosine, inetorgperson and nis schemas,
// and the ppolicy overlay for pwdAccountLockedTime) loaded with slapadd,
// a fixture of OUs, users and groups, on a loopback port, killed when the
// test ends. WithTLS also serves ldaps:// and StartTLS with a server
// certificate from a CA the test makes (tlsfixture.go).
package slapdtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Base, admin, the read-only account Tally binds as (held to 500
// entries per search, as AD holds everyone to MaxPageSize, so that only a
// paged search lists more) and the password of both.
const (
	Base     = "dc=example,dc=org"
	AdminDN  = "cn=admin,dc=example,dc=org"
	BindDN   = "cn=tally,dc=example,dc=org"
	Password = "secret"
)

// User is a fixture user under ou=OU.
type User struct {
	UID, OU string
	Groups  []string
	Locked  bool // pwdAccountLockedTime set
}

// DN is the user's DN.
func (u User) DN() string { return fmt.Sprintf("uid=%s,ou=%s,%s", u.UID, u.OU, Base) }

// Server is a running slapd.
type Server struct {
	URL          string
	PasswordFile string
	// With WithTLS: the ldaps:// URL, and the PEM file of the CA that
	// signed the server's certificate (for 127.0.0.1, not localhost).
	LDAPSURL string
	CAFile   string
	// PID is slapd's process ID, for a benchmark that reads its CPU time.
	PID int
}

// Option changes how Start runs slapd.
type Option func(*options)

type options struct{ tls bool }

// WithTLS serves StartTLS on the ldap:// URL and TLS on an ldaps:// URL,
// with a certificate signed by a CA made for the test.
func WithTLS() Option { return func(o *options) { o.tls = true } }

const configLDIF = `dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {{dir}}/slapd.pid
{{tls}}
dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: ppolicy

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif

include: file:///etc/ldap/schema/cosine.ldif

include: file:///etc/ldap/schema/inetorgperson.ldif

include: file:///etc/ldap/schema/nis.ldif

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: dc=example,dc=org
olcRootDN: cn=admin,dc=example,dc=org
olcRootPW: secret
olcDbDirectory: {{dir}}/db
olcDbMaxSize: 4294967296
olcDbNoSync: TRUE
olcSizeLimit: size.soft=500 size.hard=500 size.prtotal=unlimited
olcAccess: {0}to * by * read

dn: olcOverlay={0}ppolicy,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {0}ppolicy
`

// Fixture writes the LDIF of the base, the OUs of users, the users and
// their groups (groupOfNames).
func Fixture(us []User) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "dn: %s\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n", Base)
	fmt.Fprintf(&b, "dn: %s\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: tally\nuserPassword: %s\n\n", BindDN, Password)
	ous := map[string]bool{}
	groups := map[string][]string{}
	var gorder []string
	for _, u := range us {
		if !ous[u.OU] {
			ous[u.OU] = true
			fmt.Fprintf(&b, "dn: ou=%s,%s\nobjectClass: organizationalUnit\nou: %s\n\n", u.OU, Base, u.OU)
		}
		fmt.Fprintf(&b, "dn: %s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\ndisplayName: User %s\n", u.DN(), u.UID, u.UID, u.UID, u.UID)
		if u.Locked {
			b.WriteString("pwdAccountLockedTime: 000001010000Z\n")
		}
		b.WriteString("\n")
		for _, g := range u.Groups {
			if groups[g] == nil {
				gorder = append(gorder, g)
			}
			groups[g] = append(groups[g], u.DN())
		}
	}
	if len(gorder) > 0 {
		fmt.Fprintf(&b, "dn: ou=groups,%s\nobjectClass: organizationalUnit\nou: groups\n\n", Base)
	}
	for _, g := range gorder {
		fmt.Fprintf(&b, "dn: cn=%s,ou=groups,%s\nobjectClass: groupOfNames\ncn: %s\n", g, Base, g)
		for _, m := range groups[g] {
			fmt.Fprintf(&b, "member: %s\n", m)
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

// Start runs slapd with users loaded; it fails the test when slapd is not
// installed (.ci/run installs it).
func Start(t testing.TB, us []User, opts ...Option) *Server {
	t.Helper()
	var o options
	for _, f := range opts {
		f(&o)
	}
	slapd, err := exec.LookPath("slapd")
	if err != nil {
		if _, err = os.Stat("/usr/sbin/slapd"); err != nil {
			t.Fatal("slapd is not installed: apt-get install slapd ldap-utils (.ci/run does)")
		}
		slapd = "/usr/sbin/slapd"
	}
	slapadd := filepath.Join(filepath.Dir(slapd), "slapadd")
	dir := t.TempDir()
	for _, d := range []string{"cfg", "db"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tlsConfig := ""
	var caFile string
	if o.tls {
		var certFile, keyFile string
		caFile, certFile, keyFile = serverCertificate(t, dir)
		tlsConfig = fmt.Sprintf("olcTLSCACertificateFile: %s\nolcTLSCertificateFile: %s\nolcTLSCertificateKeyFile: %s\n", caFile, certFile, keyFile)
	}
	cfg := write("config.ldif", []byte(strings.NewReplacer("{{dir}}", dir, "{{tls}}", tlsConfig).Replace(configLDIF)))
	data := write("data.ldif", Fixture(us))
	pwFile := write("password", []byte(Password+"\n"))
	for _, args := range [][]string{{"-n0", "-F", filepath.Join(dir, "cfg"), "-l", cfg}, {"-q", "-n1", "-F", filepath.Join(dir, "cfg"), "-l", data}} {
		if out, err := exec.Command(slapadd, args...).CombinedOutput(); err != nil {
			t.Fatalf("slapadd %v: %v\n%s", args, err, out)
		}
	}
	// A port is chosen by the kernel then handed to slapd; should another
	// process take it in between, slapd fails to bind and we try again.
	for attempt := 0; ; attempt++ {
		url := "ldap://" + freeAddr(t) + "/"
		listen, ldapsURL := url, ""
		if o.tls {
			ldapsURL = "ldaps://" + freeAddr(t) + "/"
			listen += " " + ldapsURL
		}
		var logs bytes.Buffer
		cmd := exec.Command(slapd, "-d", "0", "-F", filepath.Join(dir, "cfg"), "-h", listen)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		if waitReady(url, exited) && (ldapsURL == "" || waitReadyTLS(ldapsURL, caFile, exited)) {
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
			})
			return &Server{URL: url, PasswordFile: pwFile, LDAPSURL: ldapsURL, CAFile: caFile, PID: cmd.Process.Pid}
		}
		cmd.Process.Kill()
		<-exited
		if attempt == 2 {
			t.Fatalf("slapd did not start on %s:\n%s", url, logs.String())
		}
	}
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitReady(url string, exited chan struct{}) bool {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := ldap.DialURL(url); err == nil {
			err = c.Bind(AdminDN, Password)
			c.Close()
			if err == nil {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// Admin connects as the directory's administrator, for a test's changes.
func (s *Server) Admin(t testing.TB) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Bind(AdminDN, Password); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Delete removes a user from the directory (and from its groups).
func (s *Server) Delete(t testing.TB, u User) {
	t.Helper()
	if err := s.Admin(t).Del(ldap.NewDelRequest(u.DN(), nil)); err != nil {
		t.Fatal(err)
	}
}

// Lock sets pwdAccountLockedTime on a user, as an OpenLDAP admin disables
// an account.
func (s *Server) Lock(t testing.TB, u User) {
	t.Helper()
	m := ldap.NewModifyRequest(u.DN(), nil)
	m.Add("pwdAccountLockedTime", []string{"000001010000Z"})
	if err := s.Admin(t).Modify(m); err != nil {
		t.Fatal(err)
	}
}
