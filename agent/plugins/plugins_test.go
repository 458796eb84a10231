package plugins_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tallyhq/tally/agent/plugins"
	_ "github.com/tallyhq/tally/agent/plugins/all"
)

type fake struct{ name string }

func (f fake) Info() plugins.Info                   { return plugins.Info{Name: f.name} }
func (fake) Run(context.Context, plugins.Env) error { return nil }

func reg(name string) plugins.Registration {
	return plugins.Registration{Info: plugins.Info{Name: name, Version: "1.0", BuildDate: "2026-01-02"}, New: func() plugins.Plugin { return fake{name} }}
}

func TestRegistryRefusesEmptyDuplicateAndMalformed(t *testing.T) {
	var r plugins.Registry
	if err := r.Add(reg("alpha")); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(reg("alpha")); !errors.Is(err, plugins.ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := r.Add(reg("")); !errors.Is(err, plugins.ErrEmptyName) {
		t.Fatalf("empty: %v", err)
	}
	for _, bad := range []plugins.Registration{
		reg("Alpha"),
		{Info: plugins.Info{Name: "beta", Version: "1", BuildDate: "2026-01-02"}},                                               // no constructor
		{Info: plugins.Info{Name: "beta", BuildDate: "2026-01-02"}, New: func() plugins.Plugin { return fake{"beta"} }},         // no version
		{Info: plugins.Info{Name: "beta", Version: "1", BuildDate: "soon"}, New: func() plugins.Plugin { return fake{"beta"} }}, // bad date
		{Info: plugins.Info{Name: "beta", Version: "1", BuildDate: "2026-01-02"}, New: func() plugins.Plugin { return fake{"gamma"} }},
	} {
		if err := r.Add(bad); err == nil {
			t.Errorf("%+v accepted", bad.Info)
		}
	}
	if got := strings.Join(r.Names(), ","); got != "alpha" {
		t.Fatalf("names %s", got)
	}
}

func TestRegisterPanicsOnDuplicate(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("registering monitor twice did not panic")
		}
	}()
	plugins.Register(reg("monitor"))
}

func TestTheBuildHasTheCatalogPlugins(t *testing.T) {
	got := strings.Join(plugins.Default.Names(), ",")
	if got != "deployment,inventory,monitor,patch,software-management" {
		t.Fatalf("plug-ins %s", got)
	}
	for _, r := range plugins.Default.List() {
		if r.Info.Summary == "" || r.Info.Stopped == "" {
			t.Errorf("%s: summary or stopped sentence missing", r.Info.Name)
		}
	}
}

func TestOwner(t *testing.T) {
	installed := []string{"inventory", "software-management", "deployment", "monitor"}
	cases := map[string]string{
		"inventory":           "inventory",
		"inventory-6":         "inventory",
		"inventory-6-early":   "inventory",
		"software-management": "software-management",
		"software-delivery-6": "software-management",
		"deployment-6":        "deployment",
		"monitor":             "monitor",
		"patch":               "", // not installed
		"inventoryx":          "",
	}
	for product, want := range cases {
		if got := plugins.Default.Owner(product, installed, nil); got != want {
			t.Errorf("Owner(%s) = %q, want %q", product, got, want)
		}
	}
	if got := plugins.Default.Owner("odd", installed, map[string]string{"odd": "monitor"}); got != "monitor" {
		t.Errorf("learned owner ignored: %q", got)
	}
}
