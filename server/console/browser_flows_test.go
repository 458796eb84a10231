package console_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/recognize"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

// Must hold (issue 20): in a real browser against a real server with a
// real agent, an operator signs in, finds a computer by its hostname, retires
// it, and sees its seat freed on the dashboard.
func TestBrowserRetireFreesSeatOnDashboard(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 5})
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	a.Install(t, "monitor", "")
	if res := a.Cycle(t); res.Verdicts["monitor"] != "licensed" {
		t.Fatalf("verdicts %v", res.Verdicts)
	}
	id := a.Enrollment().ComputerID
	comp, err := srv.Admin.Computer(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	base := srv.Addresses().AdminURL
	ctx := tab(t)
	signInAs(t, ctx, srv, "olga", "operator")

	used := `#seats tr[data-product="monitor"][data-kind="node"] .used-count`
	do(t, ctx, "dashboard", chromedp.Navigate(base+"/"))
	mustContain(t, "seats on the dashboard", text(t, ctx, used), "1 / 5")
	shot(t, ctx, "dashboard")

	do(t, ctx, "search by hostname",
		chromedp.Navigate(base+"/computers"),
		chromedp.WaitVisible(chromedp.CSS("#q")),
		chromedp.SendKeys(chromedp.CSS("#q"), comp.Hostname),
		chromedp.Submit(chromedp.CSS("#q")),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#computers a[href="/computers/%d"]`, id))),
	)
	shot(t, ctx, "computers-search")
	do(t, ctx, "open the computer",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#computers td:nth-child(3) a[href="/computers/%d"]`, id))),
		chromedp.WaitVisible(chromedp.CSS("#retire")),
	)
	shot(t, ctx, "computer")
	do(t, ctx, "retire", chromedp.Click(chromedp.CSS("#retire")))
	mustContain(t, "after retiring", text(t, ctx, "#done"), "is now Retired")
	shot(t, ctx, "retired")

	do(t, ctx, "dashboard again", chromedp.Navigate(base+"/"))
	mustContain(t, "seats on the dashboard after retiring", text(t, ctx, used), "0 / 5")
	shot(t, ctx, "dashboard-after-retire")

	do(t, ctx, "events", chromedp.Navigate(base+"/events?computer="+fmt.Sprint(id)))
	mustContain(t, "the computer's events", text(t, ctx, "#events tbody tr:first-child"), "computer.status")
	shot(t, ctx, "events")
}

// Must hold (issue 20): importing a license by upload in the browser
// changes the usage the console shows.
func TestBrowserImportLicenseByUpload(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	a.Install(t, "monitor", "")
	a.Cycle(t) // refused: no license yet
	file := filepath.Join(t.TempDir(), "monitor.lic")
	if err := os.WriteFile(file, iss.Mint(t, license.Payload{Product: "monitor", Seats: 7}), 0o600); err != nil {
		t.Fatal(err)
	}
	base := srv.Addresses().AdminURL
	ctx := tab(t)
	signIn(t, ctx, base, srv.Identity().Token)

	granted := `#usage tr[data-product="monitor"][data-kind="node"] .granted`
	do(t, ctx, "licenses", chromedp.Navigate(base+"/licenses"), chromedp.WaitVisible(chromedp.CSS("#files")))
	mustContain(t, "granted before the import", text(t, ctx, granted), "0")
	do(t, ctx, "upload",
		chromedp.SetUploadFiles(chromedp.CSS("#files"), []string{file}),
		chromedp.Click(chromedp.CSS("#import")),
	)
	mustContain(t, "after the upload", text(t, ctx, "#done"), "Imported 1 license")
	shot(t, ctx, "license-imported")
	do(t, ctx, "licenses again", chromedp.Navigate(base+"/licenses"))
	if got := text(t, ctx, granted); got != "7" {
		t.Fatalf("granted after the import: %q, want 7", got)
	}
	shot(t, ctx, "licenses")

	if res := a.Cycle(t); res.Verdicts["monitor"] != "licensed" {
		t.Fatalf("after the import the agent is %v", res.Verdicts)
	}
	do(t, ctx, "dashboard", chromedp.Navigate(base+"/"))
	mustContain(t, "seats after the agent's post", text(t, ctx, `#seats tr[data-product="monitor"][data-kind="node"] .used-count`), "1 / 7")
}

// Must hold (issue 20): an Activation ID created in the browser activates
// from a real agent, and the console shows its seat in use.
func TestBrowserCreateActivationIDActivatedByAgent(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 3, Kind: license.KindNodeLocked})
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	base := srv.Addresses().AdminURL
	ctx := tab(t)
	signIn(t, ctx, base, srv.Identity().Token)

	do(t, ctx, "create",
		chromedp.Navigate(base+"/activations"),
		chromedp.WaitVisible(chromedp.CSS("#create")),
		chromedp.SetValue(chromedp.CSS("#a-qty"), "2"),
		chromedp.Click(chromedp.CSS("#create")),
	)
	actID := text(t, ctx, "#created")
	shot(t, ctx, "activation-created")
	actx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := a.Activate(actx, actID)
	if err != nil || resp.Result != protocol.ActivationOK {
		t.Fatalf("activate %s from the agent: %+v %v", actID, resp, err)
	}
	do(t, ctx, "activations again", chromedp.Navigate(base+"/activations"))
	if got := text(t, ctx, "#activations .in-use"); got != "1 / 2" {
		t.Fatalf("in use after the agent activated: %q, want 1 / 2", got)
	}
	shot(t, ctx, "activations")
}

// Must hold (issue 20): a viewer finds no button that changes anything on
// any page, and a post forged from their own signed-in page, with their
// form token, is refused with 403 and changes nothing.
func TestBrowserViewerFindsNoMutatingButton(t *testing.T) {
	srv := servertest.New(t)
	iss := srv.TrustNewIssuer(t)
	srv.ImportLicense(t, iss, license.Payload{Product: "monitor", Seats: 5})
	a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret})
	a.Install(t, "monitor", "")
	if res := a.Cycle(t); res.Verdicts["monitor"] != "licensed" {
		t.Fatalf("verdicts %v", res.Verdicts)
	}
	id := a.Enrollment().ComputerID
	base := srv.Addresses().AdminURL
	ctx := tab(t)
	signInAs(t, ctx, srv, "vera", "viewer")

	// Every form that posts, but the sign-out, changes something.
	const mutating = `document.querySelectorAll('form[method="post"]:not([action="/logout"]), button[formaction]').length`
	for _, page := range []string{"/", "/computers", fmt.Sprintf("/computers/%d", id), "/licenses", "/activations", "/leases", "/reports", "/events", "/settings"} {
		do(t, ctx, "open "+page, chromedp.Navigate(base+page), chromedp.WaitVisible(chromedp.CSS("main")))
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](mutating))
		if err != nil {
			t.Fatalf("count the controls on %s: %v", page, err)
		}
		if n != 0 {
			shot(t, ctx, "viewer-mutating-control")
			t.Fatalf("a viewer sees %d control(s) that change something on %s", n, page)
		}
	}
	do(t, ctx, "the computer as a viewer", chromedp.Navigate(fmt.Sprintf("%s/computers/%d", base, id)), chromedp.WaitVisible(chromedp.CSS("main")))
	shot(t, ctx, "computer-as-viewer")

	// The page's CSP forbids fetch, so the forgery is a form the viewer's
	// page builds and submits, with the viewer's own form token.
	forge := fmt.Sprintf(`(() => {
		const f = document.createElement("form");
		f.method = "post"; f.action = "/computers/%d/status";
		for (const [k, v] of [["status", "Retired"], ["csrf", document.querySelector('input[name="csrf"]').value]]) {
			const i = document.createElement("input"); i.type = "hidden"; i.name = k; i.value = v; f.appendChild(i);
		}
		document.body.appendChild(f); f.submit(); return true;
	})()`, id)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](forge)); err != nil {
		t.Fatalf("forge a retire: %v", err)
	}
	mustContain(t, "the answer to a viewer's forged retire", text(t, ctx, "main"), "your role may not change computers")
	shot(t, ctx, "viewer-forged-post")
	comp, err := srv.Admin.Computer(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if comp.Status == "Retired" {
		t.Fatal("a viewer's forged post retired the computer")
	}
}

// Issue 20 with issue 17's positions: an admin adds a software license
// and a subscription purchase through the API, then in the browser sees
// it on the reports page within 30 days and not within 7, downloads the
// expiry listing as CSV, and adds an operator in the settings.
func TestBrowserReportsExpiryAndSettingsAdmins(t *testing.T) {
	srv := servertest.New(t)
	bg := context.Background()
	if _, err := srv.Admin.AddApplications(bg, []store.Application{{Name: "Acme CAD", Rules: []recognize.Rule{{Package: "acme-cad"}}}}); err != nil {
		t.Fatal(err)
	}
	lic, err := srv.Admin.AddSoftwareLicense(bg, store.SoftwareLicense{License: positions.License{Name: "CAD seats", Duration: positions.Perpetual},
		Applications: []string{"Acme CAD"}})
	if err != nil {
		t.Fatal(err)
	}
	today := positions.DateOf(time.Now())
	if _, err := srv.Admin.AddPurchases(bg, []store.NewPurchase{{Purchase: positions.Purchase{PO: "PO-77", Item: "CAD yearly", Date: today.AddDays(-345),
		Quantity: 3, Type: positions.PurchaseSubscription, Effective: today.AddDays(-345), Expiry: today.AddDays(20)},
		Links: []positions.Link{{License: lic.ID, Quantity: 3}}}}); err != nil {
		t.Fatal(err)
	}
	base := srv.Addresses().AdminURL
	ctx := tab(t)
	signIn(t, ctx, base, srv.Identity().Token)

	do(t, ctx, "reports", chromedp.Navigate(base+"/reports"))
	mustContain(t, "the expiry listing within 30 days", text(t, ctx, "#expiry"), "PO-77")
	mustContain(t, "the compliance report", text(t, ctx, "#compliance"), "CAD seats")
	shot(t, ctx, "reports-positions")

	dir := t.TempDir()
	if _, err := chromedp.CallBrowser(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: "allow", BrowserContextID: chromedp.FromContext(ctx).BrowserContextID, DownloadPath: dir}); err != nil {
		t.Fatalf("allow downloads: %v", err)
	}
	do(t, ctx, "download the expiry CSV", chromedp.Click(chromedp.CSS("#expiry-csv")))
	file := filepath.Join(dir, "tally-expiry.csv")
	var data []byte
	for deadline := time.Now().Add(60 * time.Second); ; {
		if data, err = os.ReadFile(file); err == nil && strings.Contains(string(data), "PO-77") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no downloaded %s with PO-77 (%v): %q", file, err, data)
		}
		time.Sleep(50 * time.Millisecond) // polling the download folder for the file Chromium writes
	}
	mustContain(t, "the downloaded CSV", string(data), "subscription expiry")

	do(t, ctx, "within 7 days",
		chromedp.SetValue(chromedp.CSS("#p-within"), "7d"),
		chromedp.Click(chromedp.CSS("#p-show")),
	)
	mustContain(t, "the expiry listing within 7 days", text(t, ctx, "#no-expiry"), "expires within 7 days")

	do(t, ctx, "settings",
		chromedp.Navigate(base+"/settings"),
		chromedp.WaitVisible(chromedp.CSS("#a-name")),
		chromedp.SendKeys(chromedp.CSS("#a-name"), "otto"),
		chromedp.SetValue(chromedp.CSS("#a-role"), "operator"),
		chromedp.SendKeys(chromedp.CSS("#a-pw"), "correct horse battery staple"),
		chromedp.Click(chromedp.CSS("#add-admin")),
	)
	mustContain(t, "after adding an admin", text(t, ctx, "#done"), "Added the admin otto with the role operator")
	do(t, ctx, "settings again", chromedp.Navigate(base+"/settings"))
	mustContain(t, "the admins", text(t, ctx, "#admin-list"), "otto")
	shot(t, ctx, "settings-admins")
	as, err := srv.Admin.Admins(bg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(as, func(a store.AdminAccount) bool { return a.Name == "otto" && a.Role == "operator" && a.HasPassword }) {
		t.Fatalf("otto is not an operator with a password: %+v", as)
	}
}
