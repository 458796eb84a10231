package console_test

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/directory/slapdtest"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

// Must hold (issue 18): in a real browser against a real server and a real
// slapd, an operator syncs the directory, finds a user, issues a token
// (the seat is taken), previews the release of disabled accounts (nothing
// changes) and runs it (the seat the preview named is freed); a viewer
// sees the same pages without a control that changes anything.
func TestBrowserUsersSyncTokenHousekeeping(t *testing.T) {
	ldap := slapdtest.Start(t, []slapdtest.User{
		{UID: "alice", OU: "people", Groups: []string{"staff"}},
		{UID: "bob", OU: "people", Groups: []string{"staff"}},
		{UID: "dave", OU: "people", Locked: true},
	})
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "inventory", Seats: 5, Kind: license.KindUser})
	bg := context.Background()
	if _, err := srv.Admin.AddDirectory(bg, store.Directory{Name: "corp", URL: ldap.URL, BaseDN: slapdtest.Base, BindDN: slapdtest.BindDN,
		PasswordFile: ldap.PasswordFile, Domain: "EXAMPLE"}); err != nil {
		t.Fatal(err)
	}
	base := srv.Addresses().AdminURL
	ctx := tab(t)
	signInAs(t, ctx, srv, "olga", "operator")

	do(t, ctx, "sync the directory",
		chromedp.Navigate(base+"/users"),
		chromedp.WaitVisible(chromedp.CSS(`#directories tr[data-directory="corp"] button`)),
		chromedp.Click(chromedp.CSS(`#directories tr[data-directory="corp"] button`)),
	)
	mustContain(t, "after the sync", text(t, ctx, "#done"), "Synced corp: 3 users seen")
	// dave is disabled in the directory and holds a token: release-disabled-accounts frees it.
	if _, err := srv.Admin.AddCredential(bg, `EXAMPLE\dave`, adminapi.CredentialRequest{Product: "inventory", Kind: "token"}); err != nil {
		t.Fatal(err)
	}

	do(t, ctx, "search a user",
		chromedp.Navigate(base+"/users"),
		chromedp.WaitVisible(chromedp.CSS("#uq")),
		chromedp.SendKeys(chromedp.CSS("#uq"), "alice"),
		chromedp.Submit(chromedp.CSS("#uq")),
		chromedp.WaitVisible(chromedp.CSS(`#users tbody tr:only-child td a`)),
	)
	do(t, ctx, "open alice", chromedp.Click(chromedp.CSS(`#users tbody tr td a`)), chromedp.WaitVisible(chromedp.CSS("#issue")))
	mustContain(t, "alice's external status", text(t, ctx, "#user-external"), "active")
	do(t, ctx, "issue a token", chromedp.SetValue(chromedp.CSS("#t-label"), "laptop"), chromedp.Click(chromedp.CSS("#issue")))
	if tok := text(t, ctx, "#issued-token"); len(tok) < 16 {
		t.Fatalf("issued token %q", tok)
	}
	mustContain(t, "alice's seat", text(t, ctx, `#user-seats tr[data-product="inventory"] .consumes`), "yes")
	shot(t, ctx, "user")

	held := `#user-seats .user-seat[data-product="inventory"] .held`
	do(t, ctx, "users", chromedp.Navigate(base+"/users"))
	mustContain(t, "seats held", text(t, ctx, held), "2 / 5")
	shot(t, ctx, "users")

	do(t, ctx, "preview release-disabled-accounts",
		chromedp.SetValue(chromedp.CSS("#hk-task"), "release-disabled-accounts"),
		chromedp.Click(chromedp.CSS("#hk-preview")),
		chromedp.WaitVisible(chromedp.CSS("#hk-confirm")),
	)
	mustContain(t, "the preview", text(t, ctx, "#hk-res-h"), "Preview of release-disabled-accounts: a real run now frees 1 seat")
	preview := text(t, ctx, "#hk-items tbody")
	mustContain(t, "the preview's items", preview, `EXAMPLE\dave`)
	mustContain(t, "seats held after the preview", text(t, ctx, held), "2 / 5")
	shot(t, ctx, "users-housekeeping-preview")
	do(t, ctx, "run it", chromedp.Click(chromedp.CSS("#hk-confirm")), chromedp.WaitNotPresent(chromedp.CSS("#hk-confirm")))
	mustContain(t, "the run", text(t, ctx, "#hk-res-h"), "Ran release-disabled-accounts: freed 1 seat")
	if got := text(t, ctx, "#hk-items tbody"); got != preview {
		t.Fatalf("the run did %q, the preview said %q", got, preview)
	}
	mustContain(t, "seats held after the run", text(t, ctx, held), "1 / 5")

	vctx := tab(t)
	signInAs(t, vctx, srv, "vera", "viewer")
	const mutating = `document.querySelectorAll('form[method="post"]:not([action="/logout"]), button[formaction]').length`
	for _, page := range []string{"/users", `/users/EXAMPLE%5Calice`} {
		do(t, vctx, "open "+page, chromedp.Navigate(base+page), chromedp.WaitVisible(chromedp.CSS("main h1")))
		n, err := chromedp.Run(vctx, chromedp.Evaluate[int](mutating))
		if err != nil {
			t.Fatalf("count the controls on %s: %v", page, err)
		}
		if n != 0 {
			shot(t, vctx, "viewer-users-control")
			t.Fatalf("a viewer sees %d control(s) that change something on %s", n, page)
		}
	}
	mustContain(t, "alice's credentials as a viewer", text(t, vctx, "#credentials"), "laptop")
}
