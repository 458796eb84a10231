package directory_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/server/directory"
	"github.com/tallyhq/tally/server/directory/slapdtest"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/license/licensetest"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

// benchUsers sizes BenchmarkSync50k (a smaller run checks it quickly).
var benchUsers = flag.Int("bench-users", 50_000, "users in the directory of BenchmarkSync50k")

// step is what one step of the benchmark cost: wall time, the client's
// CPU (Tally's process: the LDAP client and the store; or ldapsearch) and
// slapd's.
type step struct {
	name              string
	wall, client, ldp time.Duration
}

func (s step) String() string {
	r := func(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }
	return fmt.Sprintf("| %s | %s | %s | %s |", s.name, r(s.wall), r(s.client), r(s.ldp))
}

// BenchmarkSync50k syncs 50,000 users from a real slapd and splits the
// cost between slapd and Tally: wall time and the CPU time of each
// process, against a bare ldapsearch of the same users and groups, pages
// and attributes in the same run (the baseline: what listing them costs
// any client). Then the users-use-license report over them, 10,000 holding
// a token. See docs/PERFORMANCE.md.
func BenchmarkSync50k(b *testing.B) {
	n := *benchUsers
	var us []slapdtest.User
	for i := range n {
		us = append(us, slapdtest.User{UID: fmt.Sprintf("u%05d", i), OU: fmt.Sprintf("ou%d", i%20), Groups: []string{fmt.Sprintf("g%d", i%50)}})
	}
	start := time.Now()
	srv := slapdtest.Start(b, us)
	b.Logf("slapadd and start of %d users: %s", n, time.Since(start).Round(time.Millisecond))
	ctx := context.Background()
	iss := licensetest.NewIssuer(b)
	db, err := sqlstore.Open(filepath.Join(b.TempDir(), "b.db"), sqlstore.Options{Clock: clock.System{}, VerifyLicense: iss.Verify, SkipQuickCheck: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	li := iss.Import(b, license.Payload{ID: "U-1", Product: "inventory", Seats: uint32(n), Kind: license.KindUser})
	if _, err := db.ImportLicenses(ctx, []store.LicenseImport{li}, "b"); err != nil {
		b.Fatal(err)
	}
	d := store.Directory{Name: "corp", URL: srv.URL, BaseDN: slapdtest.Base, BindDN: slapdtest.BindDN, PasswordFile: srv.PasswordFile, Domain: "EX"}
	if err := directory.Check(&d); err != nil {
		b.Fatal(err)
	}
	if _, err := db.AddDirectory(ctx, d, "b"); err != nil {
		b.Fatal(err)
	}
	src := &directory.LDAP{Dir: d, Timeout: time.Minute}
	// ldapsearch -y sends the whole file, newline included.
	pw := filepath.Join(b.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(slapdtest.Password), 0o600); err != nil {
		b.Fatal(err)
	}
	// measure runs f, whose client CPU is this process's unless f returns
	// another's (ldapsearch's).
	measure := func(name string, f func() time.Duration) step {
		b.Helper()
		w0, c0 := time.Now(), processCPU()
		s0, err := pidCPU(srv.PID)
		if err != nil {
			b.Fatal(err)
		}
		other := f()
		s1, err := pidCPU(srv.PID)
		if err != nil {
			b.Fatal(err)
		}
		st := step{name: name, wall: time.Since(w0), client: processCPU() - c0, ldp: s1 - s0}
		if other > 0 {
			st.client = other
		}
		return st
	}
	b.ResetTimer()
	for range b.N {
		var steps []step
		steps = append(steps, measure("ldapsearch of the same users and groups (the baseline)", func() time.Duration {
			users, cpu1 := ldapsearch(b, srv.URL, pw, directory.DefaultFilter, "entryUUID", "objectGUID", "uid", "sAMAccountName", "cn", "displayName",
				"userAccountControl", "pwdAccountLockedTime", "nsAccountLock", "memberOf")
			groups, cpu2 := ldapsearch(b, srv.URL, pw, directory.DefaultGroupFilter, "cn", "member", "uniqueMember")
			if users != n || groups != 50 {
				b.Fatalf("ldapsearch found %d users and %d groups", users, groups)
			}
			return cpu1 + cpu2
		}))
		var es []store.DirectoryEntry
		steps = append(steps, measure("Tally's listing (LDAP client, paged)", func() time.Duration {
			if es, err = src.List(ctx); err != nil || len(es) != n {
				b.Fatal(len(es), err)
			}
			return 0
		}))
		steps = append(steps, measure(fmt.Sprintf("first merge into the store (%d users added, one transaction)", n), func() time.Duration {
			if _, err := db.SyncDirectory(ctx, "corp", es, "b"); err != nil {
				b.Fatal(err)
			}
			return 0
		}))
		steps = append(steps, measure("re-sync, nothing changed (listing and merge)", func() time.Duration {
			if _, err := directory.Sync(ctx, db, "corp", src, "b"); err != nil {
				b.Fatal(err)
			}
			return 0
		}))
		var out strings.Builder
		out.WriteString("\n| step | wall | client CPU | slapd CPU |\n| --- | --- | --- | --- |\n")
		for _, s := range steps {
			out.WriteString(s.String() + "\n")
		}
		b.Log(out.String())
		b.ReportMetric(float64(steps[1].wall)/float64(steps[0].wall), "list/ldapsearch")
		b.ReportMetric(float64(steps[1].client)/float64(max(steps[1].ldp, time.Millisecond)), "tallyCPU/slapdCPU")
	}
	b.StopTimer()
	tokens := n / 5
	for i := range tokens {
		if _, err := db.AddCredential(ctx, store.NewCredential{User: fmt.Sprintf(`EX\u%05d`, i*5), Product: "inventory", Kind: "token"}, "b"); err != nil {
			b.Fatal(err)
		}
	}
	for range 3 {
		t0, c0 := time.Now(), processCPU()
		rows, err := db.UsersUseLicense(ctx, "inventory")
		if err != nil || len(rows) != n {
			b.Fatal(len(rows), err)
		}
		read, readCPU := time.Since(t0), processCPU()-c0
		body, err := json.Marshal(rows)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("users-use-license report, %d users, %d holding a token: %s (CPU %s); with its JSON (%d KiB, what the API sends) %s (CPU %s)",
			len(rows), tokens, read.Round(time.Millisecond), readCPU.Round(10*time.Millisecond), len(body)>>10,
			time.Since(t0).Round(time.Millisecond), (processCPU() - c0).Round(10*time.Millisecond))
	}
}

// ldapsearch lists what filter finds under the base as Tally does (bound
// as Tally's account, 500 entries a page, the same attributes) and returns
// how many entries it printed, and its CPU time.
func ldapsearch(b *testing.B, url, pwFile, filter string, attrs ...string) (int, time.Duration) {
	b.Helper()
	args := append([]string{"-LLL", "-x", "-H", url, "-D", slapdtest.BindDN, "-y", pwFile, "-b", slapdtest.Base, "-E", "pr=500/noprompt", filter}, attrs...)
	cmd := exec.Command("ldapsearch", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("ldapsearch (Debian package ldap-utils): %v", err)
	}
	count := 0
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if bytes.HasPrefix(sc.Bytes(), []byte("dn: ")) {
			count++
		}
	}
	if err := cmd.Wait(); err != nil || sc.Err() != nil {
		b.Fatalf("ldapsearch %v: %v %v\n%s", args, err, sc.Err(), stderr.String())
	}
	return count, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}
