package console_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/console"
	"github.com/tallyhq/tally/server/directory"
	"github.com/tallyhq/tally/server/directory/slapdtest"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/license/licensetest"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

// usersSession is a signed-in console over a store with a user license of
// inventory (2 seats) and the clock in the test's hands.
type usersSession struct {
	*session
	clock *clock.Manual
	ctx   context.Context
}

func newUsersSession(t *testing.T) *usersSession {
	t.Helper()
	iss := licensetest.NewIssuer(t)
	clk := clock.NewManual(time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC))
	db, err := sqlstore.Open(filepath.Join(t.TempDir(), "u.db"), sqlstore.Options{Clock: clk, VerifyLicense: iss.Verify, NoSync: true, SkipQuickCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	if _, err := db.ImportLicenses(ctx, []store.LicenseImport{iss.Import(t, license.Payload{ID: "U-1", Product: "inventory", Seats: 2, Kind: license.KindUser})}, "t"); err != nil {
		t.Fatal(err)
	}
	c, err := console.New(console.Config{Store: db, Token: "secret-token", Info: adminapi.ServerInfo{Version: "test"}, Dates: adminapi.Dates{Clock: clk}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	s := &usersSession{session: &session{t: t, srv: srv, db: db}, clock: clk, ctx: ctx}
	s.signIn()
	return s
}

// signIn signs in with the admin token (again, when the clock has moved
// past the session's end) and reads the form token.
func (s *usersSession) signIn() {
	s.t.Helper()
	jar, _ := cookiejar.New(nil)
	s.cl = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := s.cl.PostForm(s.srv.URL+"/login", url.Values{"token": {"secret-token"}})
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	_, body := s.get("/users")
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]{64})"`).FindStringSubmatch(body)
	if m == nil {
		s.t.Fatalf("no form token on /users:\n%s", body)
	}
	s.csrf = m[1]
}

// addDirectory adds a directory with the URL and merges the entries as its
// first sync.
func (s *usersSession) addDirectory(url string, entries ...store.DirectoryEntry) {
	s.t.Helper()
	d := store.Directory{Name: "corp", URL: url, BaseDN: slapdtest.Base, BindDN: slapdtest.BindDN, PasswordFile: filepath.Join(s.t.TempDir(), "pw"), Domain: "EXAMPLE"}
	if err := directory.Check(&d); err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.db.AddDirectory(s.ctx, d, "t"); err != nil {
		s.t.Fatal(err)
	}
	if len(entries) > 0 {
		if _, err := s.db.SyncDirectory(s.ctx, "corp", entries, "t"); err != nil {
			s.t.Fatal(err)
		}
	}
}

func (s *usersSession) token(user string) store.UserCredential {
	s.t.Helper()
	c, err := s.db.AddCredential(s.ctx, store.NewCredential{User: user, Product: "inventory", Kind: "token"}, "t")
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

func (s *usersSession) held() int {
	s.t.Helper()
	u, err := s.db.UserSeatUsage(s.ctx)
	if err != nil || len(u) != 1 {
		s.t.Fatal(u, err)
	}
	return u[0].Held
}

// rowOf finds the users page's row of a user key and product.
func rowOf(body, key, product string) string {
	i := strings.Index(body, `<tr data-key="`+key+`" data-product="`+product+`">`)
	if i < 0 {
		return ""
	}
	row, _, _ := strings.Cut(body[i:], "</tr>")
	return row
}

func cell(row, class string) string {
	m := regexp.MustCompile(`<td class="` + class + `">([^<]*)`).FindStringSubmatch(row)
	if m == nil {
		return "<none>"
	}
	return strings.TrimSpace(m[1])
}

// Must hold: the users page lists each user with its internal and external
// status side by side, its token, Q&A, certificate and device counts, and
// whether it consumes and why; a user deleted from the directory keeps its
// last known name (never a blank line); the search and filters narrow the
// list, and a bad filter is refused with the reason.
func TestConsoleUsersPage(t *testing.T) {
	s := newUsersSession(t)
	alice := store.DirectoryEntry{GUID: "0001", Domain: "EXAMPLE", Name: "alice", Display: "Alice Archer", External: "active", ExternalWhy: "active"}
	bob := store.DirectoryEntry{GUID: "0002", Domain: "EXAMPLE", Name: "bob", Display: "Bob <b>Builder</b>", External: "active", ExternalWhy: "active"}
	dave := store.DirectoryEntry{GUID: "0004", Domain: "EXAMPLE", Name: "dave", External: "disabled", ExternalWhy: "locked (pwdAccountLockedTime 000001010000Z)"}
	s.addDirectory("ldap://127.0.0.1:1/", alice, bob, dave)
	if _, err := s.db.AddUser(s.ctx, store.NewUser{Name: "carol"}, "t"); err != nil {
		t.Fatal(err)
	}
	s.token("EXAMPLE\\alice")
	s.token("EXAMPLE\\alice")
	if _, err := s.db.AddCredential(s.ctx, store.NewCredential{User: "EXAMPLE\\alice", Product: "inventory", Kind: "qa"}, "t"); err != nil {
		t.Fatal(err)
	}
	s.token("EXAMPLE\\bob")
	// bob is deleted from the directory: the sync frees his seat.
	if _, err := s.db.SyncDirectory(s.ctx, "corp", []store.DirectoryEntry{alice, dave}, "t"); err != nil {
		t.Fatal(err)
	}
	code, body := s.get("/users?product=inventory")
	if code != 200 {
		t.Fatalf("/users: %d\n%s", code, body)
	}
	a := rowOf(body, "guid:0001", "inventory")
	if cell(a, "status") != "Active" || !strings.Contains(a, `<td class="external">active`) || cell(a, "tokens") != "2" || cell(a, "qa") != "1" ||
		cell(a, "certs") != "0" || cell(a, "devices") != "0" || cell(a, "consumes") != "yes" || !strings.Contains(cell(a, "why"), "2 tokens") {
		t.Errorf("alice's row:\n%s", a)
	}
	if !strings.Contains(a, "Alice Archer") || !strings.Contains(a, `href="/users/guid:0001"`) {
		t.Errorf("alice's row has no display name or link:\n%s", a)
	}
	b := rowOf(body, "guid:0002", "inventory")
	if !strings.Contains(b, `EXAMPLE\bob</a>`) || !strings.Contains(b, "deleted from directory") || cell(b, "consumes") != "no" || cell(b, "status") != "Deleted" {
		t.Errorf("bob, deleted from the directory, must show his last known name and free his seat:\n%s", b)
	}
	if strings.Contains(body, "Bob <b>") || !strings.Contains(body, "Bob &lt;b&gt;Builder") {
		t.Error("a display name from the directory is not escaped")
	}
	d := rowOf(body, "guid:0004", "inventory")
	if !strings.Contains(d, `<td class="external">disabled`) || !strings.Contains(d, "pwdAccountLockedTime") || cell(d, "status") != "Active" {
		t.Errorf("dave, disabled in the directory, shows both statuses:\n%s", d)
	}
	if c := rowOf(body, "carol", "inventory"); !strings.Contains(c, "not in a directory") || cell(c, "consumes") != "no" {
		t.Errorf("carol, added by hand:\n%s", c)
	}
	if !strings.Contains(body, `<strong class="held">1 / 2</strong>`) {
		t.Error("the page does not show 1 of 2 user seats held")
	}
	for query, want := range map[string][]string{
		"q=alice":                 {"guid:0001"},
		"q=ARCHER":                {"guid:0001"},
		"status=Deleted":          {"guid:0002"},
		"external=disabled":       {"guid:0004"},
		"external=deleted":        {"guid:0002"},
		"external=none":           {"carol"},
		"status=Active&q=example": {"guid:0001", "guid:0004"},
	} {
		code, body := s.get("/users?" + query)
		got := regexp.MustCompile(`<tr data-key="([^"]+)"`).FindAllStringSubmatch(body, -1)
		var keys []string
		for _, m := range got {
			keys = append(keys, m[1])
		}
		slices.Sort(keys)
		if code != 200 || !slices.Equal(keys, want) {
			t.Errorf("/users?%s: %d %v, want %v", query, code, keys, want)
		}
	}
	for query, want := range map[string]string{
		"status=Gone":                   "give Active, Disabled or Deleted",
		"external=maybe":                "give active, disabled, deleted, none",
		"evil=1":                        "unknown parameter",
		"q=" + strings.Repeat("x", 300): "longer than",
		"product=%01":                   "control",
	} {
		if code, body := s.get("/users?" + query); code != 400 || !strings.Contains(body, want) {
			t.Errorf("/users?%.40s: %d, want 400 with %q", query, code, want)
		}
	}
	if code, body := s.get("/users/nobody"); code != 404 || !strings.Contains(body, "nobody") {
		t.Errorf("/users/nobody: %d", code)
	}
	code, body = s.get("/users/guid:0002")
	if code != 200 || !strings.Contains(body, `EXAMPLE\bob`) || !strings.Contains(body, "deleted from directory") || !strings.Contains(body, "user deleted from directory") {
		t.Errorf("bob's page: %d\n%s", code, body)
	}
}

// Must hold: an operator issues a token on a user's page (its secret shown
// once) and the user takes a seat; revoking it frees the seat; a token
// with no seat free is refused and changes nothing, as is bad input.
func TestConsoleUserTokenIssueAndRevoke(t *testing.T) {
	s := newUsersSession(t)
	for _, n := range []string{"alice", "bob", "carol"} {
		if _, err := s.db.AddUser(s.ctx, store.NewUser{Domain: "EX", Name: n}, "t"); err != nil {
			t.Fatal(err)
		}
	}
	form := func(v url.Values) url.Values { v.Set("csrf", s.csrf); return v }
	code, body := s.post(`/users/EX%5Calice/tokens`, form(url.Values{"product": {"inventory"}, "expires": {"30d"}, "label": {"laptop"}}), nil)
	if code != http.StatusCreated || !regexp.MustCompile(`<code id="issued-token">[^<]{16,}</code>`).MatchString(body) {
		t.Fatalf("issue: %d\n%s", code, body)
	}
	if s.held() != 1 {
		t.Fatalf("held %d after issuing, want 1", s.held())
	}
	if _, body := s.get(`/users/EX%5Calice`); strings.Contains(body, "issued-token") {
		t.Error("the token's secret is shown again")
	}
	s.token(`EX\bob`)
	for _, tc := range []struct {
		path string
		form url.Values
		code int
		want string
	}{
		{`/users/EX%5Ccarol/tokens`, url.Values{"product": {"inventory"}}, 409, "seats"},
		{`/users/EX%5Ccarol/tokens`, url.Values{"product": {"monitor"}}, 409, "monitor"},
		{`/users/EX%5Ccarol/tokens`, url.Values{}, 400, "choose a product"},
		{`/users/EX%5Ccarol/tokens`, url.Values{"product": {"inventory"}, "expires": {"yesterday-ish"}}, 400, "yesterday-ish"},
		{`/users/EX%5Ccarol/tokens`, url.Values{"product": {"inventory"}, "label": {strings.Repeat("l", 300)}}, 400, "at most"},
		{`/users/EX%5Cnobody/tokens`, url.Values{"product": {"inventory"}}, 404, "nobody"},
		{`/credentials/x/revoke`, url.Values{}, 404, "not a credential ID"},
		{`/credentials/999/revoke`, url.Values{}, 404, "999"},
		{`/housekeeping`, url.Values{"task": {"clean-everything"}, "mode": {"run"}}, 400, "unknown housekeeping task"},
		{`/housekeeping`, url.Values{"task": {"disable-unused-tokens"}, "mode": {"run"}, "days": {"-1"}}, 400, "give a number of days"},
		{`/housekeeping`, url.Values{"task": {"disable-unused-tokens"}, "mode": {"maybe"}}, 400, "preview or run"},
		{`/housekeeping`, url.Values{"task": {"release-disabled-accounts"}, "mode": {"run"}, "group": {"a\x00b"}}, 400, "control"},
		{`/directories/nope/sync`, url.Values{}, 404, "nope"},
	} {
		before, held := s.eventCount(), s.held()
		code, body := s.post(tc.path, form(tc.form), nil)
		if code != tc.code || !strings.Contains(body, tc.want) || !strings.Contains(body, "Nothing was changed") {
			t.Errorf("POST %s %v: %d, want %d with %q and 'Nothing was changed'\n%.800s", tc.path, tc.form, code, tc.code, tc.want, body)
		}
		if s.eventCount() != before || s.held() != held {
			t.Errorf("POST %s: a refused post changed something", tc.path)
		}
	}
	cs, err := s.db.Credentials(s.ctx, `EX\alice`, "")
	if err != nil || len(cs) != 1 || cs[0].Label != "laptop" || cs[0].ExpiresAt == nil {
		t.Fatalf("alice's credentials %+v %v", cs, err)
	}
	code, body = s.post("/credentials/"+strconv.FormatInt(cs[0].ID, 10)+"/revoke", form(url.Values{"user": {`ex\alice`}}), nil)
	if code != 200 || !strings.Contains(body, "1 seat freed") || !strings.Contains(body, `href="/users/ex%5Calice"`) {
		t.Fatalf("revoke: %d\n%s", code, body)
	}
	if s.held() != 1 {
		t.Fatalf("held %d after revoking alice's token, want bob's 1", s.held())
	}
	// With a seat free, carol's token goes through.
	if code, _ := s.post(`/users/EX%5Ccarol/tokens`, form(url.Values{"product": {"inventory"}}), nil); code != http.StatusCreated || s.held() != 2 {
		t.Fatalf("carol's token: %d, held %d", code, s.held())
	}
}

// hkItems reads the user and action columns of a housekeeping result.
func hkItems(t *testing.T, body string) []string {
	t.Helper()
	i := strings.Index(body, `<table id="hk-items">`)
	if i < 0 {
		return nil
	}
	tbl, _, _ := strings.Cut(body[i:], "</table>")
	var out []string
	for _, m := range regexp.MustCompile(`<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>`).FindAllStringSubmatch(tbl, -1) {
		out = append(out, strings.Join(m[1:], " | "))
	}
	return out
}

// Must hold: the housekeeping preview (a dry run) changes nothing and shows
// exactly what the real run then frees.
func TestConsoleHousekeepingPreviewMatchesRun(t *testing.T) {
	s := newUsersSession(t)
	for _, n := range []string{"alice", "bob"} {
		if _, err := s.db.AddUser(s.ctx, store.NewUser{Domain: "EX", Name: n}, "t"); err != nil {
			t.Fatal(err)
		}
	}
	s.token(`EX\alice`)
	s.token(`EX\alice`)
	bobs := s.token(`EX\bob`)
	s.clock.Advance(40 * 24 * time.Hour)
	// bob's token is used, so only alice's two go unused for 30 days.
	if _, err := s.db.UseToken(s.ctx, bobs.Secret); err != nil {
		t.Fatal(err)
	}
	s.signIn()
	form := url.Values{"csrf": {s.csrf}, "task": {"disable-unused-tokens"}, "days": {"30"}, "product": {"inventory"}, "mode": {"preview"}}
	before, held := s.eventCount(), s.held()
	code, body := s.post("/housekeeping", form, nil)
	preview := hkItems(t, body)
	if code != 200 || len(preview) != 2 || !strings.Contains(body, `a real run now frees <span id="hk-freed">1 seat</span>`) || !strings.Contains(body, `id="hk-confirm"`) {
		t.Fatalf("preview: %d %v\n%s", code, preview, body)
	}
	if s.eventCount() != before || s.held() != held {
		t.Fatal("the preview changed something")
	}
	// The preview's "Run it now" repeats its parameters.
	for _, k := range []string{"task", "days", "product"} {
		if !strings.Contains(body, `<input type="hidden" name="`+k+`" value="`+form.Get(k)+`">`) {
			t.Errorf("the preview's run button does not repeat %s", k)
		}
	}
	form.Set("mode", "run")
	code, body = s.post("/housekeeping", form, nil)
	run := hkItems(t, body)
	if code != 200 || !slices.Equal(run, preview) || !strings.Contains(body, `freed <span id="hk-freed">1 seat</span>`) {
		t.Fatalf("run: %d %v, preview was %v\n%s", code, run, preview, body)
	}
	if s.held() != held-1 || s.eventCount() == before {
		t.Fatalf("after the run: held %d (was %d), events %d (were %d)", s.held(), held, s.eventCount(), before)
	}
	form.Set("mode", "preview")
	if _, body := s.post("/housekeeping", form, nil); !strings.Contains(body, "Nothing to do") {
		t.Error("a second preview finds work left")
	}
}

// Must hold: "Sync now" lists the real directory and merges it; a user
// deleted there is shown deleted with its last known name and its seat
// freed; a directory that cannot be listed changes no user and says why.
func TestConsoleDirectorySync(t *testing.T) {
	alice := slapdtest.User{UID: "alice", OU: "people", Groups: []string{"staff"}}
	bob := slapdtest.User{UID: "bob", OU: "people"}
	srv := slapdtest.Start(t, []slapdtest.User{alice, bob})
	s := newUsersSession(t)
	d := store.Directory{Name: "corp", URL: srv.URL, BaseDN: slapdtest.Base, BindDN: slapdtest.BindDN, PasswordFile: srv.PasswordFile, Domain: "EXAMPLE"}
	if err := directory.Check(&d); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.AddDirectory(s.ctx, d, "t"); err != nil {
		t.Fatal(err)
	}
	d.Name, d.URL = "gone", "ldap://127.0.0.1:1/"
	if _, err := s.db.AddDirectory(s.ctx, d, "t"); err != nil {
		t.Fatal(err)
	}
	tok := url.Values{"csrf": {s.csrf}}
	code, body := s.post("/directories/corp/sync", tok, nil)
	if code != 200 || !strings.Contains(body, "2 users seen, 2 added") {
		t.Fatalf("sync: %d\n%s", code, body)
	}
	s.token(`EXAMPLE\bob`)
	srv.Delete(t, bob)
	if code, body = s.post("/directories/corp/sync", tok, nil); code != 200 || !strings.Contains(body, "1 deleted from the directory; 1 seat freed") {
		t.Fatalf("sync after the deletion: %d\n%s", code, body)
	}
	_, body = s.get("/users?external=deleted")
	if !strings.Contains(body, `EXAMPLE\bob</a>`) || !strings.Contains(body, "deleted from directory") || s.held() != 0 {
		t.Fatalf("bob after the sync (held %d):\n%s", s.held(), body)
	}
	before := s.eventCount()
	code, body = s.post("/directories/gone/sync", tok, nil)
	if code != http.StatusBadGateway || !strings.Contains(body, "connect to ldap://127.0.0.1:1/") || !strings.Contains(body, "Nothing was changed") {
		t.Fatalf("an unreachable directory: %d\n%s", code, body)
	}
	if us, _ := s.db.Users(s.ctx); len(us) != 2 || s.eventCount() != before {
		t.Fatalf("a failed sync changed users (%d) or events", len(us))
	}
	if _, body = s.get("/users"); !strings.Contains(body, "connect to ldap://127.0.0.1:1/") {
		t.Error("the directories table does not show the failed sync's result")
	}
}

// Must hold: a viewer sees users and a user's credentials but no control
// that changes them, and their posts are refused.
func TestConsoleUsersViewerSeesNoAction(t *testing.T) {
	s := newUsersSession(t)
	if _, err := s.db.AddUser(s.ctx, store.NewUser{Domain: "EX", Name: "alice"}, "t"); err != nil {
		t.Fatal(err)
	}
	c := s.token(`EX\alice`)
	s.addDirectory("ldap://127.0.0.1:1/")
	viewer := s.as("vera", "viewer")
	operator := s.as("otto", "operator")
	mutating := regexp.MustCompile(`<form[^>]*method="post"[^>]*action="(/[^"]*)"`)
	for _, p := range []string{"/users", `/users/EX%5Calice`} {
		code, body := viewer.get(p)
		if code != 200 || !strings.Contains(body, `EX\alice`) {
			t.Errorf("viewer %s: %d", p, code)
		}
		for _, m := range mutating.FindAllStringSubmatch(body, -1) {
			if m[1] != "/logout" {
				t.Errorf("viewer sees a form posting to %s on %s", m[1], p)
			}
		}
		if _, body := operator.get(p); len(mutating.FindAllString(body, -1)) < 2 {
			t.Errorf("the operator sees no action on %s", p)
		}
	}
	for _, p := range []string{`/users/EX%5Calice/tokens`, "/credentials/" + strconv.FormatInt(c.ID, 10) + "/revoke", "/housekeeping", "/directories/corp/sync"} {
		f := url.Values{"csrf": {viewer.csrf}, "product": {"inventory"}, "task": {"disable-unused-tokens"}, "mode": {"run"}, "days": {"1"}}
		if code, body := viewer.post(p, f, nil); code != http.StatusForbidden || !strings.Contains(body, "your role may not change users") {
			t.Errorf("viewer posting %s: %d", p, code)
		}
	}
	if s.held() != 1 {
		t.Fatal("a viewer's refused post changed the seats")
	}
}
