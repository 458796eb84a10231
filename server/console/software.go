package console

import (
	"net/http"
	"slices"
	"strings"

	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/store"
)

// maxShownComputers bounds the computers a software license or an
// application page lists: the count is always shown in full.
const maxShownComputers = 500

type softwareData struct {
	Licenses     []store.SoftwareLicense
	Status       map[string]positions.ComplianceRow // by license ID
	Applications []store.Application
}

// software lists the software licenses with their position today and the
// applications recognised in inventory.
func (c *Console) software(w http.ResponseWriter, r *http.Request) {
	ps, ok := c.cfg.Store.(positionStore)
	if !ok {
		c.refuse(w, r, http.StatusNotFound, "this server's store keeps no software licenses")
		return
	}
	d := softwareData{Status: map[string]positions.ComplianceRow{}}
	var err error
	if d.Licenses, err = ps.SoftwareLicenseList(r.Context()); err != nil {
		c.serverError(w, err)
		return
	}
	if d.Applications, err = ps.ApplicationList(r.Context()); err != nil {
		c.serverError(w, err)
		return
	}
	bought, err := ps.PurchaseList(r.Context())
	if err != nil {
		c.serverError(w, err)
		return
	}
	purchases := make([]positions.Purchase, len(bought))
	for i, p := range bought {
		purchases[i] = p.Purchase
	}
	for _, row := range c.softwarePositions(d.Licenses, purchases) {
		d.Status[row.License] = row
	}
	c.view(w, r, "software", http.StatusOK, page{Title: "Software", Nav: "software", Data: d})
}

// softwarePositions is the compliance of software licenses today, from
// the licenses (with their live consumption and links) and the purchases
// they link: the position snapshot would also read every product license
// with its held seats, which these pages do not show.
func (c *Console) softwarePositions(ls []store.SoftwareLicense, purchases []positions.Purchase) []positions.ComplianceRow {
	snap := positions.Snapshot{Purchases: purchases}
	for _, l := range ls {
		snap.Licenses = append(snap.Licenses, l.License)
		snap.Links = append(snap.Links, l.Links...)
	}
	rep := positions.Compliance(snap, positions.DateOf(c.cfg.Dates.Now()), positions.DefaultOverLicensedPercent)
	return rep.Rows
}

type swLicenseData struct {
	store.SoftwareLicense
	Position  positions.ComplianceRow
	Purchases []linkedPurchase
	Computers []store.Installation
	Installed int
}

// linkedPurchase is a purchase and the quantity of it a license takes.
type linkedPurchase struct {
	positions.Purchase
	Quantity int
}

// swLicense shows a software license: its position, purchases, and the
// computers where its applications are installed (a computer counted once).
func (c *Console) swLicense(w http.ResponseWriter, r *http.Request) {
	ps, ok := c.cfg.Store.(positionStore)
	if !ok {
		c.refuse(w, r, http.StatusNotFound, "this server's store keeps no software licenses")
		return
	}
	l, err := ps.SoftwareLicense(r.Context(), r.PathValue("ref"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := swLicenseData{SoftwareLicense: l}
	var purchases []positions.Purchase
	for _, ln := range l.Links {
		p, err := ps.Purchase(r.Context(), ln.Purchase)
		if err != nil {
			c.serverError(w, err)
			return
		}
		purchases = append(purchases, p.Purchase)
		d.Purchases = append(d.Purchases, linkedPurchase{Purchase: p.Purchase, Quantity: ln.Quantity})
	}
	d.Position = c.softwarePositions([]store.SoftwareLicense{l}, purchases)[0]
	seen := map[int64]int{}
	var all []store.Installation
	for _, name := range l.Applications {
		app, err := ps.Application(r.Context(), name)
		if err != nil {
			c.serverError(w, err)
			return
		}
		for _, in := range app.Computers {
			if i, ok := seen[in.ComputerID]; ok {
				all[i].Packages += in.Packages
				continue
			}
			seen[in.ComputerID] = len(all)
			all = append(all, in)
		}
	}
	slices.SortFunc(all, func(a, b store.Installation) int { return strings.Compare(a.Hostname, b.Hostname) })
	d.Installed = len(all)
	d.Computers = all[:min(len(all), maxShownComputers)]
	c.view(w, r, "swlicense", http.StatusOK, page{Title: "Software license " + l.ID, Nav: "software", Data: d})
}

type applicationData struct {
	store.Application
	Licenses []store.SoftwareLicense // the software licenses naming it
	Shown    []store.Installation
}

// application shows an application: its rules, the licenses naming it
// and the computers where it is installed.
func (c *Console) application(w http.ResponseWriter, r *http.Request) {
	ps, ok := c.cfg.Store.(positionStore)
	if !ok {
		c.refuse(w, r, http.StatusNotFound, "this server's store keeps no applications")
		return
	}
	app, err := ps.Application(r.Context(), r.PathValue("name"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := applicationData{Application: app}
	ls, err := ps.SoftwareLicenseList(r.Context())
	if err != nil {
		c.serverError(w, err)
		return
	}
	for _, l := range ls {
		if slices.ContainsFunc(l.Applications, func(a string) bool { return strings.EqualFold(a, app.Name) }) {
			d.Licenses = append(d.Licenses, l)
		}
	}
	d.Shown = app.Computers[:min(len(app.Computers), maxShownComputers)]
	c.view(w, r, "application", http.StatusOK, page{Title: "Application " + app.Name, Nav: "software", Data: d})
}
