package console

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/store"
)

// Dashboard geometry: seat bars and the 90-day chart, in SVG user units.
const (
	barWidth    = 240
	chartDays   = 90
	chartWidth  = 720
	chartHeight = 160
	staleDays   = 30
	staleShown  = 10
)

type usageBar struct {
	store.Usage
	Used, Reserved, Over int // widths of the bar's parts
	Label                string
}

type chart struct {
	Points        string // the polyline
	Area          string // the polygon under it
	Max, Now      int
	First, Last   string // the dates at both ends
	Width, Height int
	Days          []chartDay
}

type chartDay struct {
	Date  string
	Seats int
}

type dashboardData struct {
	Bars        []usageBar
	Chart       chart
	Expiring    []store.Expiring
	Shortfalls  []store.Usage
	Discards    int64
	DiscardsBy  map[string]int64
	Stale       []store.Computer
	StaleMore   bool
	StaleDays   int
	Maintenance *store.Event
	Drift       *store.Event
	CanRun      bool
	// License positions (server/positions), when the store keeps them:
	// licenses, subscriptions and maintenance ending within 30 days, and
	// the licenses consumed past their entitlements.
	Positions     bool
	PosExpiring   []positions.ExpiryRow
	PosShortfalls []positions.ComplianceRow
}

func (c *Console) dashboard(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := c.cfg.Dates.Now()
	d := dashboardData{StaleDays: staleDays, CanRun: c.cfg.Maintenance != nil, DiscardsBy: map[string]int64{}}
	if s := r.URL.Query().Get("stale"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 3650 {
			c.view(w, r, "dashboard", http.StatusBadRequest, page{Title: "Dashboard", Nav: "dashboard", Error: fmt.Sprintf("stale %q: give a number of days from 1 to 3650", s), Data: d})
			return
		}
		d.StaleDays = n
	}
	us, err := c.cfg.Store.UsageTotals(ctx, "")
	if err != nil {
		c.serverError(w, err)
		return
	}
	nodeSeats := 0
	for _, u := range us {
		if u.Kind == store.SeatNode {
			nodeSeats += u.Consumed
		}
		if u.Granted == 0 && u.Consumed == 0 && u.Waiting == 0 {
			continue
		}
		c.cfg.Dates.Usage(&u, now)
		d.Bars = append(d.Bars, bar(u))
		if u.Available < 0 {
			d.Shortfalls = append(d.Shortfalls, u)
		}
	}
	hours, err := c.seatHours(ctx, now)
	if err != nil {
		c.serverError(w, err)
		return
	}
	d.Chart = seatChart(hours, nodeSeats, now)
	thirty := c.cfg.Dates
	thirty.Window = 30 * 24 * time.Hour
	ls, err := c.cfg.Store.Licenses(ctx)
	if err != nil {
		c.serverError(w, err)
		return
	}
	as, err := c.cfg.Store.ActivationList(ctx)
	if err != nil {
		c.serverError(w, err)
		return
	}
	d.Expiring = thirty.Expiring(ls, as, now)
	disc, err := c.cfg.Store.Events(ctx, store.EventFilter{Kind: store.EventDiscarded, Since: now.Add(-24 * time.Hour), Limit: 10000})
	if err != nil {
		c.serverError(w, err)
		return
	}
	for _, e := range disc {
		d.Discards += e.Count
		d.DiscardsBy[e.Product] += e.Count
	}
	stale, err := c.cfg.Store.ListComputers(ctx, store.ComputerFilter{NotSeenSince: now.AddDate(0, 0, -d.StaleDays), Limit: staleShown})
	if err != nil {
		c.serverError(w, err)
		return
	}
	d.Stale, d.StaleMore = stale.Computers, stale.Next != 0
	for kind, dst := range map[string]**store.Event{store.EventMaintenance: &d.Maintenance, store.EventDriftRepaired: &d.Drift} {
		ev, err := c.cfg.Store.Events(ctx, store.EventFilter{Kind: kind, Limit: 1})
		if err != nil {
			c.serverError(w, err)
			return
		}
		if len(ev) == 1 {
			*dst = &ev[0]
		}
	}
	exp, comp, ok, err := c.positionReports(r, positionFilter{Window: positions.Window{Days: 30}, Over: positions.DefaultOverLicensedPercent})
	if err != nil {
		c.serverError(w, err)
		return
	}
	d.Positions, d.PosExpiring = ok, exp
	for _, row := range comp.Rows {
		if row.Status == positions.UnderLicensed {
			d.PosShortfalls = append(d.PosShortfalls, row)
		}
	}
	c.view(w, r, "dashboard", http.StatusOK, page{Title: "Dashboard", Nav: "dashboard", Data: d})
}

// seatHours returns the hourly counts of seats consumed and freed over the
// chart's days. The hours before the current one are kept until the hour
// turns: seat events are recorded at the time they happen, so a past
// hour's count does not change, and reading 90 days of them is most of
// the dashboard's work.
func (c *Console) seatHours(ctx context.Context, now time.Time) ([]store.HourCount, error) {
	kinds := []string{store.EventSeatConsumed, store.EventSeatFreed}
	hour := now.Truncate(time.Hour)
	c.chartMu.Lock()
	past, until := c.chartPast, c.chartUntil
	c.chartMu.Unlock()
	if !until.Equal(hour) {
		var err error
		if past, err = c.cfg.Store.HourlyCounts(ctx, kinds, hour.AddDate(0, 0, -chartDays-1)); err != nil {
			return nil, err
		}
		past = slices.DeleteFunc(past, func(h store.HourCount) bool { return !h.Hour.Before(hour) })
		c.chartMu.Lock()
		c.chartPast, c.chartUntil = past, hour
		c.chartMu.Unlock()
	}
	recent, err := c.cfg.Store.HourlyCounts(ctx, kinds, hour)
	if err != nil {
		return nil, err
	}
	return append(slices.Clip(past), recent...), nil
}

func bar(u store.Usage) usageBar {
	b := usageBar{Usage: u}
	scale := max(u.Granted, u.Consumed+u.Reserved, 1)
	b.Used = min(u.Consumed, u.Granted) * barWidth / scale
	b.Reserved = min(u.Reserved, max(u.Granted-u.Consumed, 0)) * barWidth / scale
	if over := u.Consumed + u.Reserved - u.Granted; over > 0 {
		b.Over = over * barWidth / scale
	}
	b.Label = fmt.Sprintf("%d of %d seats used", u.Consumed, u.Granted)
	if u.Reserved > 0 {
		b.Label += fmt.Sprintf(", %d reserved", u.Reserved)
	}
	return b
}

// seatChart walks the node seats held back from now, day by day, undoing
// each day's consumed and freed seats as the audit log recorded them.
func seatChart(hours []store.HourCount, heldNow int, now time.Time) chart {
	zone := now.Location()
	day := func(t time.Time) string { return t.In(zone).Format("2006-01-02") }
	delta := map[string]int{}
	for _, h := range hours {
		switch h.Kind {
		case store.EventSeatConsumed:
			delta[day(h.Hour)] += int(h.Count)
		case store.EventSeatFreed:
			delta[day(h.Hour)] -= int(h.Count)
		}
	}
	ch := chart{Width: chartWidth, Height: chartHeight, Now: heldNow}
	days := make([]chartDay, chartDays)
	held := heldNow
	for i := chartDays - 1; i >= 0; i-- {
		d := day(now.AddDate(0, 0, i-(chartDays-1)))
		days[i] = chartDay{Date: d, Seats: max(held, 0)}
		held -= delta[d]
	}
	for _, d := range days {
		ch.Max = max(ch.Max, d.Seats)
	}
	top := max(ch.Max, 1)
	var pts []string
	for i, d := range days {
		x := i * chartWidth / (chartDays - 1)
		y := chartHeight - d.Seats*(chartHeight-10)/top
		pts = append(pts, fmt.Sprintf("%d,%d", x, y))
	}
	ch.Points = strings.Join(pts, " ")
	ch.Area = fmt.Sprintf("0,%d %s %d,%d", chartHeight, ch.Points, chartWidth, chartHeight)
	ch.First, ch.Last = days[0].Date, days[chartDays-1].Date
	ch.Days = days
	return ch
}
