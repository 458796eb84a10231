package console

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/store"
)

// maxLicenseFiles bounds one upload.
const maxLicenseFiles = 50

// holdersShown bounds the holders listed on a license's page; the rest
// are one link away, on the computers page filtered by the product.
const holdersShown = 1000

type licenseData struct {
	License     store.License
	Holders     []store.Holder
	MoreHolders int
}

type licensesData struct {
	Products  []adminapi.Product
	Bars      []usageBar
	Licenses  []store.License
	CanImport bool
}

func (c *Console) licenses(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := c.cfg.Dates.Now()
	d := licensesData{CanImport: c.cfg.VerifyLicense != nil}
	us, err := c.cfg.Store.UsageTotals(ctx, "")
	if err != nil {
		c.serverError(w, err)
		return
	}
	for _, u := range us {
		if u.Granted == 0 && u.Consumed == 0 && u.Waiting == 0 && len(u.Discards) == 0 {
			continue
		}
		c.cfg.Dates.Usage(&u, now)
		d.Bars = append(d.Bars, bar(u))
	}
	if d.Licenses, err = c.cfg.Store.Licenses(ctx); err != nil {
		c.serverError(w, err)
		return
	}
	for i := range d.Licenses {
		c.cfg.Dates.License(&d.Licenses[i], now)
	}
	if c.cfg.Catalog != nil {
		for _, p := range c.cfg.Catalog.Products() {
			d.Products = append(d.Products, adminapi.ProductOf(p))
		}
	}
	c.view(w, r, "licenses", http.StatusOK, page{Title: "Products and licenses", Nav: "licenses", Data: d})
}

// license shows one license and the computers holding its seats.
func (c *Console) license(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	ls, err := c.cfg.Store.Licenses(ctx)
	if err != nil {
		c.serverError(w, err)
		return
	}
	var d licenseData
	found := false
	for _, l := range ls {
		if l.ID == id {
			d.License, found = l, true
		}
	}
	if !found {
		http.NotFound(w, r)
		return
	}
	c.cfg.Dates.License(&d.License, c.cfg.Dates.Now())
	us, err := c.cfg.Store.Usage(ctx, d.License.Product)
	if err != nil {
		c.serverError(w, err)
		return
	}
	for _, u := range us {
		for _, h := range u.Holders {
			if h.License != id {
				continue
			}
			if len(d.Holders) == holdersShown {
				d.MoreHolders++
				continue
			}
			d.Holders = append(d.Holders, h)
		}
	}
	c.view(w, r, "license", http.StatusOK, page{Title: "License " + id, Nav: "licenses", Data: d})
}

// importLicenses verifies every uploaded file first: one bad file refuses
// the whole upload, with a sentence per bad file, and nothing changes.
func (c *Console) importLicenses(w http.ResponseWriter, r *http.Request) {
	if c.cfg.VerifyLicense == nil {
		c.refuse(w, r, http.StatusServiceUnavailable, "license import is not configured on this server")
		return
	}
	var files []struct {
		name string
		data []byte
	}
	if r.MultipartForm != nil {
		for _, fh := range r.MultipartForm.File["files"] {
			if len(files) == maxLicenseFiles {
				c.refuse(w, r, http.StatusBadRequest, fmt.Sprintf("at most %d license files at once", maxLicenseFiles))
				return
			}
			f, err := fh.Open()
			if err != nil {
				c.refuse(w, r, http.StatusBadRequest, fmt.Sprintf("%s: %v", fh.Filename, err))
				return
			}
			b, err := io.ReadAll(f)
			f.Close()
			if err != nil {
				c.refuse(w, r, http.StatusBadRequest, fmt.Sprintf("%s: %v", fh.Filename, err))
				return
			}
			files = append(files, struct {
				name string
				data []byte
			}{fh.Filename, b})
		}
	}
	if len(files) == 0 {
		c.refuse(w, r, http.StatusBadRequest, "choose at least one license file to upload")
		return
	}
	var imports []store.LicenseImport
	var problems []string
	for _, f := range files {
		li, err := c.cfg.VerifyLicense(f.data)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", f.name, err))
			continue
		}
		imports = append(imports, li)
	}
	if len(problems) > 0 {
		c.refuse(w, r, http.StatusUnprocessableEntity, "nothing was imported: "+strings.Join(problems, "; "))
		return
	}
	imported, err := c.cfg.Store.ImportLicenses(r.Context(), imports, c.actor(r))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var ids []string
	for _, l := range imported {
		ids = append(ids, fmt.Sprintf("%s (%s, %d seats)", l.ID, l.Product, l.Seats))
	}
	msg := "Imported " + plural(len(imported), "license", "licenses")
	if len(ids) > 0 {
		msg += ": " + strings.Join(ids, ", ")
	}
	if n := len(imports) - len(imported); n > 0 {
		msg += fmt.Sprintf("; %s already imported", plural(n, "was", "were"))
	}
	c.done(w, r, "licenses", result{Done: msg + ".", Back: "/licenses", Also: []link{{"/", "Dashboard"}}})
}

func (c *Console) removeLicense(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ch, err := c.cfg.Store.RemoveLicense(r.Context(), id, c.actor(r))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.done(w, r, "licenses", result{Done: "Removed license " + id + ".", Change: &ch, Back: "/licenses"})
}

func (c *Console) deallocate(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	comp, err := strconv.ParseInt(r.PathValue("computer"), 10, 64)
	if err != nil || comp < 1 {
		http.NotFound(w, r)
		return
	}
	ch, err := c.cfg.Store.Deallocate(r.Context(), id, comp, c.actor(r))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.done(w, r, "licenses", result{Done: fmt.Sprintf("Removed the allocation of %s to computer #%d.", id, comp), Change: &ch, Back: "/licenses"})
}
