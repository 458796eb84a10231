package integration

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/tallyhq/tally/agent/agenttest"
	"github.com/tallyhq/tally/agent/software/softwaretest"
	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/recognize"
	"github.com/tallyhq/tally/server/store"
)

// Allocations of a software license: an allocated computer consumes the
// license before the application is recognised on it, a computer both
// allocated and installed counts once, a retired one not at all; bad
// allocations are refused and change nothing; each change is audited.
func TestSoftwareAllocationsConsume(t *testing.T) {
	status, err := os.ReadFile(ubuntu1804)
	if err != nil {
		t.Fatal(err)
	}
	srv := licensedServer(t, "inventory", 10)
	ctx := context.Background()
	if _, err := srv.Admin.AddApplications(ctx, []store.Application{
		{Name: "Linux PAM", Rules: []recognize.Rule{{Package: "libpam*", Source: "dpkg"}}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Admin.AddSoftwareLicense(ctx, store.SoftwareLicense{License: positions.License{Name: "PAM site", Duration: positions.Perpetual, Extra: 3},
		Applications: []string{"Linux PAM"}}); err != nil {
		t.Fatal(err)
	}
	// Two computers with PAM, a third without.
	var ids []int64
	for i, data := range [][]byte{status, status, withoutPackages(status, "libpam")} {
		root := softwaretest.Dir(t, fstest.MapFS{"var/lib/dpkg/status": {Data: data}})
		a := agenttest.New(t, srv, agenttest.Options{Secret: srv.Secret, SoftwareRoot: root})
		a.Install(t, "inventory", "")
		if posts := inventoryPosts(a.Cycle(t)); len(posts) != 1 {
			t.Fatalf("agent %d: posts %+v", i, posts)
		}
		ids = append(ids, a.Enrollment().ComputerID)
	}
	installed, bare := ids[0], ids[2]
	position := func(wantConsumed, wantReserved int, wantAlloc []int64) {
		t.Helper()
		l, err := srv.Admin.SoftwareLicense(ctx, "SW-1")
		if err != nil || l.Consumed != 2 || l.Reserved != wantReserved || !slices.Equal(l.Allocations, wantAlloc) {
			t.Fatalf("license %+v, %v; want 2 installed, %d reserved, allocated %v", l, err, wantReserved, wantAlloc)
		}
		ls, err := srv.Admin.SoftwareLicenses(ctx)
		if err != nil || len(ls) != 1 || ls[0].Reserved != wantReserved || !slices.Equal(ls[0].Allocations, wantAlloc) {
			t.Fatalf("license list %+v, %v", ls, err)
		}
		rep, err := srv.Admin.ComplianceReport(ctx, positions.DefaultOverLicensedPercent)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rep.Rows {
			if r.License == "SW-1" && (r.Consumed != wantConsumed || r.Reserved != wantReserved || r.Available != 3-wantConsumed) {
				t.Fatalf("compliance row %+v, want %d consumed", r, wantConsumed)
			}
		}
	}
	position(2, 0, []int64{})
	// Allocated and installed: counted once.
	if _, err := srv.Admin.AllocateSoftware(ctx, "SW-1", installed); err != nil {
		t.Fatal(err)
	}
	position(2, 0, []int64{installed})
	// Allocated, not installed: consumes at once.
	if l, err := srv.Admin.AllocateSoftware(ctx, "PAM site", bare); err != nil || l.Reserved != 1 {
		t.Fatalf("allocate by name: %+v %v", l, err)
	}
	position(3, 1, []int64{installed, bare})

	// Bad allocations: each a clear error that changes nothing.
	for _, bad := range []struct {
		ref      string
		computer int64
		dealloc  bool
		want     string
	}{
		{"SW-1", bare, false, "already allocated"},
		{"SW-9", bare, false, "no software license"},
		{"no such license", bare, false, "no software license"},
		{"SW-1", 99999, false, "no computer 99999"},
		{"SW-1", ids[1], true, "not allocated"},
		{"SW-1", -1, false, "computer ID"},
	} {
		var err error
		if bad.dealloc {
			_, err = srv.Admin.DeallocateSoftware(ctx, bad.ref, bad.computer)
		} else {
			_, err = srv.Admin.AllocateSoftware(ctx, bad.ref, bad.computer)
		}
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: %v, want an error saying %q", bad, err, bad.want)
		}
	}
	position(3, 1, []int64{installed, bare})
	// Hostile bodies and paths on the routes: 400 or 404, nothing changed.
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPost, "/api/v1/swlicenses/SW-1/allocations", `{"computer":`},
		{http.MethodPost, "/api/v1/swlicenses/SW-1/allocations", `{"computer": "12"}`},
		{http.MethodPost, "/api/v1/swlicenses/SW-1/allocations", `{"computer": 0}`},
		{http.MethodPost, "/api/v1/swlicenses/SW-1/allocations", `{"computer": 1e300}`},
		{http.MethodPost, "/api/v1/swlicenses/SW-1/allocations", `{"computer": 1, "pad": "` + strings.Repeat("x", 2<<20) + `"}`},
		{http.MethodDelete, "/api/v1/swlicenses/SW-1/allocations/abc", ""},
		{http.MethodDelete, "/api/v1/swlicenses/SW-1/allocations/99999999999999999999", ""},
	} {
		req, _ := http.NewRequest(c.method, srv.Addresses().AdminURL+c.path, strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+srv.Identity().Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("%s %s %.40s: %s, want 400", c.method, c.path, c.body, resp.Status)
		}
	}
	position(3, 1, []int64{installed, bare})

	// A retired computer consumes no license, by allocation or otherwise;
	// nor can one be allocated.
	if _, err := srv.Admin.SetStatus(ctx, bare, "Retired"); err != nil {
		t.Fatal(err)
	}
	position(2, 0, []int64{installed, bare})
	if _, err := srv.Admin.DeallocateSoftware(ctx, "SW-1", bare); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Admin.AllocateSoftware(ctx, "SW-1", bare); err == nil || !strings.Contains(err.Error(), "consumes no license") {
		t.Fatalf("allocated a retired computer: %v", err)
	}
	position(2, 0, []int64{installed})
	if _, err := srv.Admin.SetStatus(ctx, bare, "Active"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Admin.AllocateSoftware(ctx, "SW-1", bare); err != nil {
		t.Fatal(err)
	}
	position(3, 1, []int64{installed, bare})
	if _, err := srv.Admin.DeallocateSoftware(ctx, "SW-1", bare); err != nil {
		t.Fatal(err)
	}
	position(2, 0, []int64{installed})

	evs, err := srv.Admin.Events(ctx, url.Values{"kind": {store.EventSWAllocated}})
	if err != nil || len(evs) != 3 || !strings.Contains(evs[0].Reason, "allocated to computer") {
		t.Fatalf("allocation events %+v, %v", evs, err)
	}
	evs, err = srv.Admin.Events(ctx, url.Values{"kind": {store.EventSWDeallocated}})
	if err != nil || len(evs) != 2 {
		t.Fatalf("deallocation events %+v, %v", evs, err)
	}
}
