package sqlstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/recognize"
	"github.com/tallyhq/tally/server/store"
)

// BenchmarkPositions measures, on a fleet of computers of 1,500 packages
// each (1,100 shared, 400 of 4,900 others at random) and 200
// applications (150 exact names, 50 globs with a version range): the
// delta post (two packages out, two in) before and after the
// applications exist, recognising the whole fleet when they are added
// and when one more rule is added, and the two reports with 500 software
// licenses and 2,000 purchases. Run it once: -benchtime=1x (-short: a
// fleet of 1,024).
func BenchmarkPositions(b *testing.B) {
	size := 10240
	if testing.Short() {
		size = 1024
	}
	start := time.Now()
	db, machines, pool, basicHash := swFleetOf(b, size, 1100, 1500)
	b.Logf("fleet of %d computers built in %s", size, time.Since(start).Round(time.Second))
	ctx := context.Background()
	deltas := func(n int) (time.Duration, time.Duration) {
		for k := range n {
			m := machines[k%len(machines)]
			m.queued = append(m.queued, m.delta(pool))
		}
		cpu := processCPU()
		t0 := time.Now()
		runSW(b, machines, n, func(m *swMachine) error {
			sw := m.queued[0]
			m.queued = m.queued[1:]
			sw.Base = m.gen
			return postSoftware(db, m, basicHash, sw)
		})
		return time.Since(t0) / time.Duration(n), (processCPU() - cpu) / time.Duration(n)
	}
	posts := 20480
	if testing.Short() {
		posts = 2048
	}
	wall0, cpu0 := deltas(posts)

	r := rand.New(rand.NewPCG(3, 4))
	var apps []store.Application
	for i := range 150 {
		apps = append(apps, store.Application{Name: fmt.Sprintf("exact-%d", i), Rules: []recognize.Rule{{Package: pool[r.IntN(len(pool))].Name}}})
	}
	for i := range 50 {
		// lib<kind>-<digits>*: about 11 of the pool's names each.
		apps = append(apps, store.Application{Name: fmt.Sprintf("glob-%d", i),
			Rules: []recognize.Rule{{Package: fmt.Sprintf("lib%s-%d*", []string{"ssl", "xml", "gtk", "qt", "perl"}[i%5], 100+i*7), Versions: ">=2, <11", Source: "dpkg"}}})
	}
	t0 := time.Now()
	if _, err := db.AddApplications(ctx, apps, "bench"); err != nil {
		b.Fatal(err)
	}
	addAll := time.Since(t0)
	t0 = time.Now()
	if _, err := db.AddApplications(ctx, []store.Application{{Name: "one-more", Rules: []recognize.Rule{{Package: "libgtk-2*", Versions: ">=1"}}}}, "bench"); err != nil {
		b.Fatal(err)
	}
	addOne := time.Since(t0)

	wall1, cpu1 := deltas(posts)
	wall2, cpu2 := deltas(posts) // once more, to see the noise

	// 500 licenses of one to three applications, 2,000 purchases of every
	// type, each split over one to three licenses.
	for i := range 500 {
		l := store.SoftwareLicense{License: positions.License{Name: fmt.Sprintf("lic-%d", i), Duration: positions.Perpetual, UnitPrice: 1000}}
		if i%3 == 0 {
			l.Duration, l.Expiry = positions.Subscription, positions.DateOf(time.Now()).AddDays(r.IntN(400)-100)
		}
		for range 1 + r.IntN(3) {
			l.Applications = append(l.Applications, apps[r.IntN(len(apps))].Name)
		}
		if _, err := db.AddSoftwareLicense(ctx, l, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	var ps []store.NewPurchase
	today := positions.DateOf(time.Now())
	for i := range 2000 {
		p := store.NewPurchase{Purchase: positions.Purchase{PO: fmt.Sprintf("PO-%d", i), Item: "item", Quantity: 30, UnitPrice: 500,
			Type: []string{positions.PurchaseLicense, positions.PurchaseSubscription, positions.PurchaseMaintenance}[i%3]}}
		if p.Type != positions.PurchaseLicense {
			p.Effective = today.AddDays(-r.IntN(365))
			p.Expiry = p.Effective.AddDays(365)
		}
		seen := map[string]bool{}
		for range 1 + r.IntN(3) {
			lic := fmt.Sprintf("SW-%d", 1+r.IntN(500))
			if !seen[lic] {
				seen[lic] = true
				p.Links = append(p.Links, positions.Link{License: lic, Quantity: 10})
			}
		}
		ps = append(ps, p)
	}
	if _, err := db.AddPurchases(ctx, ps, "bench"); err != nil {
		b.Fatal(err)
	}
	for range 2 {
		t0 = time.Now()
		if _, err := db.ApplicationList(ctx); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := db.PurchaseList(ctx); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if _, err := db.SoftwareLicenseList(ctx); err != nil {
			b.Fatal(err)
		}
		b.Logf("application list %v, purchase list %v, software license list %v", t1.Sub(t0), t2.Sub(t1), time.Since(t2))
	}
	var expiry, compliance time.Duration
	var rows, consumed int
	cpu := processCPU()
	for range 3 {
		t0 = time.Now()
		snap, err := db.PositionSnapshot(ctx)
		if err != nil {
			b.Fatal(err)
		}
		rows = len(positions.Expiry(snap, today, positions.Window{Days: 90}))
		expiry = max(expiry, time.Since(t0))
		t0 = time.Now()
		snap, err = db.PositionSnapshot(ctx)
		if err != nil {
			b.Fatal(err)
		}
		rep := positions.Compliance(snap, today, 5)
		consumed = rep.Totals.Consumed
		compliance = max(compliance, time.Since(t0))
	}
	reportCPU := (processCPU() - cpu) / 6
	b.Logf("delta post without applications: %v wall, %v CPU; with 201: %v wall, %v CPU (%.2f× CPU), and again %v wall, %v CPU",
		wall0, cpu0, wall1, cpu1, float64(cpu1)/float64(cpu0), wall2, cpu2)
	b.Logf("recognise the fleet: adding 200 applications %v, adding one more rule %v", addAll.Round(time.Millisecond), addOne.Round(time.Millisecond))
	b.Logf("reports (slowest of 3): expiry within 90d %v (%d rows), compliance %v (%d consumed); %v CPU each on average",
		expiry.Round(time.Millisecond), rows, compliance.Round(time.Millisecond), consumed, reportCPU.Round(time.Millisecond))
	b.ReportMetric(float64(cpu1)/float64(cpu0), "delta-cpu-ratio")
	b.ReportMetric(addOne.Seconds(), "add-rule-s")
	b.ReportMetric(max(expiry, compliance).Seconds(), "report-s")
}
