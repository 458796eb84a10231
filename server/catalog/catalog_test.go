package catalog

import (
	"strings"
	"testing"
)

func TestBuiltinReproducesTheSeeds(t *testing.T) {
	c, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"inventory": "any-non-active", "inventory-6": "any-non-active", "inventory-6-early": "Retired, Return to Lessor, Disposed",
		"software-management": "any-non-active", "software-delivery-6": "none", "patch": "Retired", "patch-6": "none",
		"monitor": "Retired", "deployment": "Retired", "deployment-6": "none",
	}
	if len(c.Products()) != len(want) {
		t.Fatalf("%d products, want %d", len(c.Products()), len(want))
	}
	for name, freed := range want {
		p, ok := c.Product(name)
		if !ok {
			t.Fatalf("missing %s", name)
		}
		if p.FreedByText() != freed {
			t.Errorf("%s freed by %q, want %q", name, p.FreedByText(), freed)
		}
	}
	if ps := c.ForPlugin("inventory", "6.1.1"); len(ps) != 1 || ps[0].Name != "inventory-6-early" {
		t.Fatalf("inventory 6.1.1 → %v", ps)
	}
	if ps := c.ForPlugin("inventory", "6.1.2"); len(ps) != 1 || ps[0].Name != "inventory-6" {
		t.Fatalf("inventory 6.1.2 → %v", ps)
	}
	if ps := c.ForPlugin("inventory", "7.0.1-rc2"); len(ps) != 1 || ps[0].Name != "inventory" {
		t.Fatalf("inventory 7.0.1-rc2 → %v", ps)
	}
	if ps := c.ForPlugin("inventory", "latest"); len(ps) != 0 {
		t.Fatalf("a version that is not a number matched %v", ps)
	}
}

func TestAdminProductsAddAndReplace(t *testing.T) {
	c, err := Load(&AdminFile{Name: "products.toml", Data: []byte(`
[[product]]
name = "monitor"
plugin = "monitor"
plugin-versions = ">= 0"
qualifying = ["plugin-data"]
over-count = ["discard-data"]
freed-by = ["Retired", "Disposed"]
plugin-removal-frees = true
purge-after-days = 7

[[product]]
name = "backup"
title = "Backup agent"
plugin = "backup"
plugin-versions = ">= 1, < 3"
qualifying = ["check-in"]
over-count = ["deny-check-in"]
freed-by = "any-non-active"
plugin-removal-frees = false
purge-after-days = -1
`)})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := c.Product("monitor")
	if !m.FreedByStatus("Disposed") || m.Source != "products.toml" || !m.Qualifies(TriggerPluginData) {
		t.Fatalf("monitor not replaced: %+v", m)
	}
	if b, ok := c.Product("backup"); !ok || !b.Matches("backup", "2.9") || b.Matches("backup", "3.0") {
		t.Fatalf("backup: %+v", b)
	}
	if len(c.Products()) != 11 {
		t.Fatalf("%d products", len(c.Products()))
	}
}

func TestAdminProductsErrorsNameTheField(t *testing.T) {
	base := `name = "x"
plugin = "x"
plugin-versions = ">= 1"
qualifying = ["check-in"]
over-count = ["deny-check-in"]
freed-by = "none"
plugin-removal-frees = false
purge-after-days = 3
`
	cases := map[string]struct{ change, want string }{
		"bad name":      {`name = "Bad Name"`, `name "Bad Name"`},
		"bad trigger":   {`qualifying = ["posting"]`, `qualifying: "posting" is not one of`},
		"no trigger":    {`qualifying = []`, "qualifying: list at least one"},
		"bad behaviour": {`over-count = ["shout"]`, `over-count: "shout"`},
		"bad freed-by":  {`freed-by = "sometimes"`, `freed-by: "sometimes"`},
		"active frees":  {`freed-by = ["Active"]`, "Active cannot free"},
		"bad versions":  {`plugin-versions = "seven"`, "plugin-versions"},
		"bad purge":     {`purge-after-days = -5`, "purge-after-days: -5"},
		"unknown field": {`colour = "blue"`, `unknown field product.colour`},
		"bad exception": {`inactive-devices-consume = "yes"`, "products.toml"},
		"not toml":      {`= = =`, "products.toml"},
	}
	for name, c := range cases {
		lines := strings.Split(base, "\n")
		key := strings.SplitN(c.change, " ", 2)[0]
		replaced := false
		for i, l := range lines {
			if strings.HasPrefix(l, key+" ") {
				lines[i], replaced = c.change, true
			}
		}
		if !replaced {
			lines = append(lines, c.change)
		}
		data := "[[product]]\n" + strings.Join(lines, "\n")
		_, err := Load(&AdminFile{Name: "products.toml", Data: []byte(data)})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "products.toml") {
			t.Errorf("%s: err = %v, want one naming the file and %q", name, err, c.want)
		}
	}
	_, err := Load(&AdminFile{Name: "products.toml", Data: []byte("[[product]]\n" + base + "\n[[product]]\n" + base)})
	if err == nil || !strings.Contains(err.Error(), "defined twice") {
		t.Errorf("duplicate: %v", err)
	}
	for _, missing := range []string{"freed-by", "plugin-removal-frees", "purge-after-days"} {
		var keep []string
		for _, l := range strings.Split(base, "\n") {
			if !strings.HasPrefix(l, missing+" ") {
				keep = append(keep, l)
			}
		}
		_, err := Load(&AdminFile{Name: "products.toml", Data: []byte("[[product]]\n" + strings.Join(keep, "\n"))})
		if err == nil || !strings.Contains(err.Error(), missing+" is missing") {
			t.Errorf("missing %s: %v", missing, err)
		}
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(builtinTOML))
	f.Add([]byte("[[product]]\nname = \"x\""))
	f.Add([]byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Load(&AdminFile{Name: "fuzz.toml", Data: data})
		if err == nil && len(c.Products()) < 10 {
			t.Fatalf("a loaded catalog lost built-in products")
		}
	})
}

// An application product takes two lines of a products file, and bad
// ones are refused with a sentence that says what to do.
func TestApplicationProductsInTheFile(t *testing.T) {
	c, err := Load(&AdminFile{Name: "products.toml", Data: []byte(`
[application.cad]
kinds = ["node-locked", "concurrent"]

[application.viewer]
title = "Viewer"
kinds = ["concurrent"]
`)})
	if err != nil {
		t.Fatal(err)
	}
	p, ok := c.Product("cad")
	if !ok || !p.Application || p.Title != "cad" || strings.Join(p.Kinds, ",") != "node-locked,concurrent" || p.Source != "products.toml" {
		t.Fatalf("cad: %+v", p)
	}
	if err := p.Takes("node-locked"); err != nil {
		t.Fatal(err)
	}
	if err := p.Takes("node"); err == nil || !strings.Contains(err.Error(), "--kind node-locked or --kind concurrent") {
		t.Fatalf("a node license for an application product: %v", err)
	}
	v, _ := c.Product("viewer")
	if err := v.Takes("node-locked"); err == nil || !strings.Contains(err.Error(), "takes concurrent licenses only") {
		t.Fatalf("a node-locked license for a concurrent-only product: %v", err)
	}
	for _, pl := range c.Plugins() {
		if pl == "" {
			t.Fatal("an application product added an empty plug-in name")
		}
	}
	for _, bad := range []struct{ file, want string }{
		{"[application.cad]\n", "list the kinds of license product cad takes"},
		{"[application.cad]\nkinds = [\"node\"]\n", "no plug-in to consume node seats"},
		{"[application.cad]\nkinds = [\"floating\"]\n", `kind "floating" is not a license kind`},
		{"[application.CAD]\nkinds = [\"concurrent\"]\n", "lower-case letters"},
		{"[application.cad]\nkinds = [\"concurrent\"]\nplugin = \"x\"\n", "unknown field"},
		{"[application.monitor]\nkinds = [\"concurrent\"]\n", "monitor is a product of the built-in catalog: choose another name"},
		{"[[product]]\nname = \"cad\"\n", "[application.cad] and kinds ="},
	} {
		_, err := Load(&AdminFile{Name: "products.toml", Data: []byte(bad.file)})
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want %q", bad.file, err, bad.want)
		}
	}
}

// Application products added while the server runs: a name taken by
// another product is refused, and Product and Products see the new one.
func TestAddApplication(t *testing.T) {
	c, _ := Builtin()
	for _, bad := range []struct {
		name, title string
		kinds       []string
		want        string
	}{
		{"", "", []string{"concurrent"}, "give the product a name"},
		{"Bad Name", "", []string{"concurrent"}, "lower-case letters"},
		{"cad", "", nil, "list the kinds"},
		{"cad", "", []string{"user"}, "no plug-in to consume user seats"},
		{"cad", strings.Repeat("x", MaxTitle+1), []string{"concurrent"}, "shorten it to 200"},
		{"cad", "a\nb", []string{"concurrent"}, "control character"},
	} {
		if _, err := NewApplication(bad.name, bad.title, bad.kinds, SourceDatabase); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q %q %v: %v, want %q", bad.name, bad.title, bad.kinds, err, bad.want)
		}
	}
	p, err := NewApplication("cad", "CAD Suite", []string{"node-locked", "concurrent", "node-locked"}, SourceDatabase)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddApplication(p); err != nil {
		t.Fatal(err)
	}
	if got, ok := c.Product("cad"); !ok || got.Title != "CAD Suite" || len(got.Kinds) != 2 {
		t.Fatalf("cad: %+v", got)
	}
	if err := c.AddApplication(p); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("added twice: %v", err)
	}
	m, _ := NewApplication("monitor", "", []string{"concurrent"}, SourceDatabase)
	if err := c.AddApplication(m); err == nil || !strings.Contains(err.Error(), "monitor is a product of the built-in catalog: choose another name") {
		t.Fatalf("a built-in name: %v", err)
	}
	if n := len(c.Products()); n != 11 {
		t.Fatalf("%d products, want 11", n)
	}
	c.RemoveApplication("cad")
	if _, ok := c.Product("cad"); ok {
		t.Fatal("removed, still there")
	}
}

// Seed 003's exception is a product rule: off in the built-in catalog (no
// built-in product registers device ID tokens), on where an admin's
// product says so; on, a device counts whatever its computer's status.
func TestInactiveDevicesConsumeRule(t *testing.T) {
	c, err := Load(&AdminFile{Name: "products.toml", Data: []byte(`[[product]]
name = "secure-access"
plugin = "secure-access"
plugin-versions = ">= 1"
qualifying = ["plugin-presence"]
over-count = ["deny-check-in"]
freed-by = "any-non-active"
plugin-removal-frees = true
purge-after-days = -1
inactive-devices-consume = true
`)})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Products() {
		if p.Source == "builtin" && (p.InactiveDevicesConsume || p.DeviceCounts("Retired") || !p.DeviceCounts("Active")) {
			t.Errorf("built-in %s: inactive devices consume %v", p.Name, p.InactiveDevicesConsume)
		}
	}
	p, _ := c.Product("secure-access")
	if !p.InactiveDevicesConsume || !p.DeviceCounts("Retired") || !p.DeviceCounts("In Stock") || !p.DeviceCounts("Active") {
		t.Fatalf("secure-access: %+v", p)
	}
}
