package console_test

import (
	"context"
	"crypto/ed25519"
	"encoding/csv"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/recognize"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

// installOn enrolls a computer whose inventory holds the named package,
// as an agent posts it, so that software licenses consume on it.
func installOn(t *testing.T, db *sqlstore.DB, host, pkgName string) {
	t.Helper()
	ctx := context.Background()
	sec, err := db.CreateSecret(ctx, "sw", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := identity.NewKey()
	pub := key.Public().(ed25519.PublicKey)
	node := identity.NodeID(pub)
	if _, err := db.Enroll(ctx, store.EnrollParams{NodeID: node, PublicKey: pub, Request: protocol.EnrollRequest{
		Secret: sec.Value, Hostname: host, Hints: protocol.Hints{InstanceID: host}}}); err != nil {
		t.Fatal(err)
	}
	basic := protocol.BasicInventory{Hostname: host, OS: "linux", Hints: protocol.Hints{InstanceID: host},
		Plugins: []protocol.Plugin{{Name: "inventory", Version: "7.1"}}}
	p := protocol.Package{Source: "dpkg", Name: pkgName, Version: "1.0", Arch: "amd64"}
	var h protocol.SetHash
	h.Add(protocol.ItemHash(&p))
	for seq, req := range []protocol.InventoryRequest{{Basic: basic},
		{BasicHash: basic.Hash(), Software: &protocol.SoftwareInventory{Full: true, Packages: []protocol.Package{p}, Count: 1, Hash: h.String()}}} {
		if _, err := db.PostInventory(ctx, store.Request{NodeID: node, Seq: uint64(seq + 2), Kind: protocol.KindInventory}, &req); err != nil {
			t.Fatal(err)
		}
	}
}

// addPositions stores software licenses: one expiring in 5 days, one
// whose maintenance purchase ends in 60 days, one overdue by 3 days, and
// one installed on two computers with one entitlement (a shortfall).
func addPositions(t *testing.T, db *sqlstore.DB) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.ImportLicenses(ctx, []store.LicenseImport{{License: store.License{ID: "L-inventory",
		Product: "inventory", Kind: "node", Duration: "perpetual", Seats: 100, IssuedAt: time.Now(), Issuer: "test"}, File: []byte("x")}}, "test"); err != nil {
		t.Fatal(err)
	}
	installOn(t, db, "cad-1", "acme-cad")
	installOn(t, db, "cad-2", "acme-cad")
	if _, err := db.AddApplications(ctx, []store.Application{{Name: "Acme CAD", Publisher: "Acme", Rules: []recognize.Rule{{Package: "acme-cad"}}},
		{Name: "Viewer", Rules: []recognize.Rule{{Package: "viewer"}}}}, "test"); err != nil {
		t.Fatal(err)
	}
	today := positions.DateOf(time.Now())
	for _, l := range []positions.License{
		{Name: "Soon <ends>", Duration: positions.TimeLimited, Expiry: today.AddDays(5), Extra: 3},
		{Name: "Maintained", Duration: positions.Perpetual},
		{Name: "Gone", Duration: positions.TimeLimited, Expiry: today.AddDays(-3), Extra: 1},
	} {
		if _, err := db.AddSoftwareLicense(ctx, store.SoftwareLicense{License: l, Applications: []string{"Viewer"}}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.AddSoftwareLicense(ctx, store.SoftwareLicense{License: positions.License{Name: "CAD seats", Duration: positions.Perpetual, Extra: 1, UnitPrice: 10000},
		Applications: []string{"Acme CAD"}}, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddPurchases(ctx, []store.NewPurchase{
		{Purchase: positions.Purchase{PO: "PO-1", Item: "perpetual", Date: today.AddDays(-300), Quantity: 4, Type: positions.PurchaseLicense}, Links: []positions.Link{{License: "SW-2", Quantity: 4}}},
		{Purchase: positions.Purchase{PO: "PO-2", Item: "support", Date: today.AddDays(-300), Quantity: 4, Type: positions.PurchaseMaintenance,
			Effective: today.AddDays(-300), Expiry: today.AddDays(60)}, Links: []positions.Link{{License: "SW-2", Quantity: 4}}},
	}, "test"); err != nil {
		t.Fatal(err)
	}
}

// The reports page lists what expires in 7, 30 or 90 days or is overdue,
// and the compliance report, with filters; both download as CSV with the
// same filters; bad filters are refused with a reason.
func TestConsolePositionReports(t *testing.T) {
	s := newSession(t)
	addPositions(t, s.db)
	for q, want := range map[string][]string{
		"":                         {"Soon &lt;ends&gt;"},
		"within=7d":                {"Soon &lt;ends&gt;"},
		"within=90d":               {"Soon &lt;ends&gt;", "Maintained"},
		"within=overdue":           {"Gone"},
		"within=90d&q=maint":       {"Maintained"},
		"within=90d&kind=product":  {},
		"within=90d&kind=software": {"Soon &lt;ends&gt;", "Maintained"},
	} {
		code, body := s.get("/reports?" + q)
		if code != 200 {
			t.Fatalf("/reports?%s: %d\n%.600s", q, code, body)
		}
		i, j := strings.Index(body, "License and maintenance expiry"), strings.Index(body, "<h3>Compliance")
		if i < 0 || j < i {
			t.Fatalf("/reports?%s: no expiry listing before the compliance report:\n%s", q, body)
		}
		exp := body[i:j]
		for _, name := range []string{"Soon &lt;ends&gt;", "Maintained", "Gone"} {
			if got := strings.Contains(exp, "</code> "+name+"</td>"); got != contains(want, name) {
				t.Errorf("/reports?%s: %s in the expiry listing is %v, want %v", q, name, got, !got)
			}
		}
	}
	_, body := s.get("/reports")
	comp := body[strings.Index(body, "<h3>Compliance"):]
	if !strings.Contains(comp, "CAD seats</td><td>software</td><td>Acme CAD</td><td>1</td><td>2</td><td>-1</td>") ||
		!strings.Contains(comp, `<span class="flag">under-licensed</span>`) || !strings.Contains(comp, "1 under-licensed") {
		t.Errorf("compliance: want CAD seats under-licensed by 1:\n%s", comp)
	}
	if !strings.Contains(body, `href="/reports/expiry.csv?over=5&amp;within=30d"`) || !strings.Contains(body, `href="/reports/compliance.csv?over=5&amp;within=30d"`) {
		t.Errorf("no CSV links with the filters:\n%s", body)
	}

	code, csvBody := s.get("/reports/expiry.csv?within=90d&q=" + url.QueryEscape("soon"))
	rows, err := csv.NewReader(strings.NewReader(csvBody)).ReadAll()
	if code != 200 || err != nil || len(rows) != 2 || rows[0][0] != "license" || rows[1][1] != "Soon <ends>" || rows[1][4] != positions.ReasonLicense {
		t.Errorf("expiry CSV: %d %v\n%s", code, err, csvBody)
	}
	code, csvBody = s.get("/reports/compliance.csv?kind=software&q=cad")
	rows, err = csv.NewReader(strings.NewReader(csvBody)).ReadAll()
	if code != 200 || err != nil || len(rows) != 3 || rows[1][1] != "CAD seats" || rows[1][13] != positions.UnderLicensed || rows[2][0] != "TOTAL" {
		t.Errorf("compliance CSV: %d %v\n%s", code, err, csvBody)
	}

	for _, q := range []string{"within=soon", "within=99999d", "kind=hardware", "over=101", "over=x", "q=" + strings.Repeat("a", 201)} {
		if code, body := s.get("/reports?" + q); code != 400 || !strings.Contains(body, `role="alert"`) {
			t.Errorf("/reports?%s: %d, want 400 with the reason", q, code)
		}
		for _, f := range []string{"expiry", "compliance"} {
			if code, _ := s.get("/reports/" + f + ".csv?" + q); code != 400 {
				t.Errorf("/reports/%s.csv?%s: %d, want 400", f, q, code)
			}
		}
	}
}

// The dashboard shows the licenses, subscriptions and maintenance ending
// within 30 days, and the under-licensed licenses.
func TestConsoleDashboardPositions(t *testing.T) {
	s := newSession(t)
	if _, body := s.get("/"); !strings.Contains(body, "No license, subscription or maintenance ends within 30 days.") ||
		!strings.Contains(body, "No license is consumed past its entitlements.") {
		t.Fatalf("empty store: want the empty sections:\n%s", body)
	}
	addPositions(t, s.db)
	code, body := s.get("/")
	i := strings.Index(body, "ending within 30 days</h2>")
	if code != 200 || i < 0 {
		t.Fatalf("dashboard: %d\n%s", code, body)
	}
	sect := body[i:]
	sect = sect[:strings.Index(sect, "Discards, last 24 hours")]
	for name, want := range map[string]bool{"Soon &lt;ends&gt;": true, "Maintained": false, "Gone": false} {
		if got := strings.Contains(sect, "<strong>"+name+"</strong>"); got != want {
			t.Errorf("%s on the dashboard: %v, want %v\n%s", name, got, want, sect)
		}
	}
	if !strings.Contains(sect, "<strong>CAD seats</strong> <code>SW-4</code>: 2 consumed of 1, short by 1 (100.00)") {
		t.Errorf("no CAD seats shortfall:\n%s", sect)
	}
}

// The software page lists software licenses with their position and the
// applications; a license shows its purchases and the computers where
// its applications are installed, an application its computers.
func TestConsoleSoftwarePages(t *testing.T) {
	s := newSession(t)
	if code, body := s.get("/software"); code != 200 || !strings.Contains(body, "No software license yet.") || !strings.Contains(body, "No application defined yet.") {
		t.Fatalf("empty: %d\n%s", code, body)
	}
	addPositions(t, s.db)
	code, body := s.get("/software")
	if code != 200 || !strings.Contains(body, `<a href="/software/licenses/SW-4"><code>SW-4</code> CAD seats</a>`) ||
		!strings.Contains(body, `<td>1</td><td>2</td><td><span class="flag">-1</span></td><td><span class="flag">under-licensed</span></td>`) ||
		!strings.Contains(body, `<a href="/software/applications/Acme%20CAD">Acme CAD</a></td><td>Acme</td><td>2</td><td>2</td>`) {
		t.Errorf("/software: %d\n%s", code, body)
	}
	code, body = s.get("/software/licenses/SW-4")
	for _, want := range []string{"Installed on 2 computers", `">cad-1</a>`, `">cad-2</a>`, "under-licensed", "No purchase linked."} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/software/licenses/SW-4: %d, want %q\n%s", code, want, body)
		}
	}
	code, body = s.get("/software/licenses/" + url.PathEscape("Maintained"))
	if code != 200 || !strings.Contains(body, "<td>PO-2</td><td>support</td>") || !strings.Contains(body, "<td>PO-1</td><td>perpetual</td>") {
		t.Errorf("/software/licenses/Maintained: %d\n%s", code, body)
	}
	code, body = s.get("/software/applications/Acme%20CAD")
	if code != 200 || !strings.Contains(body, `<code>SW-4</code> CAD seats`) || !strings.Contains(body, `">cad-2</a>`) || !strings.Contains(body, "2 computers, 2 consuming") {
		t.Errorf("/software/applications/Acme CAD: %d\n%s", code, body)
	}
	for _, p := range []string{"/software/licenses/SW-99", "/software/applications/nope", "/software/applications/%3Cx%3E"} {
		if code, body := s.get(p); code != 404 || strings.Contains(body, "<x>") {
			t.Errorf("%s: %d, want 404 with the name escaped", p, code)
		}
	}
}
