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
