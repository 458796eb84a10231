package patch

import (
	"context"
	"testing"

	"github.com/tallyhq/tally/agent/plugins/pluginstest"
	"github.com/tallyhq/tally/protocol"
)

func TestCompareVersions(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0},
		{"1.0", "1.1", -1},
		{"1.10", "1.9", 1},
		{"1.0~rc1", "1.0", -1},
		{"1.0", "1.0+b1", -1},
		{"1:0.9", "2.0", 1},
		{"2.0-1", "2.0-2", -1},
		{"2.0-10", "2.0-9", 1},
		{"1.2.3a", "1.2.3", 1},
		{"0001", "1", 0},
		{"1.2.3-1ubuntu0.1", "1.2.3-1ubuntu0.2", -1},
		{"3.0.2-0ubuntu1.10", "3.0.2-0ubuntu1.9", 1},
		{"", "0", 0},
	}
	for _, c := range cases {
		if got := CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := CompareVersions(c.b, c.a); got != -c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

func FuzzCompareVersions(f *testing.F) {
	for _, s := range []string{"1.0", "1:2.3-4", "1.0~rc1", "", "a-b-c", "9999999999999999999999"} {
		f.Add(s, "1.0")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		x, y := CompareVersions(a, b), CompareVersions(b, a)
		if x != -y || x < -1 || x > 1 {
			t.Fatalf("CompareVersions(%q, %q) = %d but reversed %d", a, b, x, y)
		}
		if CompareVersions(a, a) != 0 {
			t.Fatalf("%q differs from itself", a)
		}
	})
}

func TestScan(t *testing.T) {
	installed := []protocol.Package{
		{Name: "openssl", Version: "3.0.2-0ubuntu1.9", Source: "dpkg", Arch: "amd64"},
		{Name: "openssl", Version: "3.0.2-0ubuntu1.9", Source: "dpkg", Arch: "i386"},
		{Name: "bash", Version: "5.1-6", Source: "dpkg"},
		{Name: "curl", Version: "7.0", Source: "rpm"},
	}
	mins := []protocol.MinimumVersion{
		{Name: "openssl", Version: "3.0.2-0ubuntu1.10"},
		{Name: "bash", Version: "5.1-6"},
		{Name: "curl", Version: "8.0", Source: "dpkg"}, // another package database
	}
	s := Scan(installed, mins)
	if s.Scanned != 4 || len(s.Missing) != 1 || s.Missing[0].Name != "openssl" || s.Missing[0].Minimum != "3.0.2-0ubuntu1.10" {
		t.Fatalf("scan %+v", s)
	}
}

func TestRunScansPostsAndAsksForPackages(t *testing.T) {
	env := &pluginstest.Env{IsOnline: true, P: protocol.Plugin{Name: Name, Version: Version},
		Pkgs: []protocol.Package{{Name: "openssl", Version: "1.0", Source: "dpkg"}}}
	env.Answer = func(kind protocol.Kind, in, out any) error {
		switch kind {
		case protocol.KindCatalogRequest:
			c := out.(*protocol.CatalogResponse)
			c.Verdicts = []protocol.ProductVerdict{{Product: "patch", Verdict: protocol.VerdictLicensed}}
			c.Version, c.Minimums = "1", []protocol.MinimumVersion{{Name: "openssl", Version: "1.1"}}
		case protocol.KindPackageRequest:
			if names := in.(*protocol.PackageRequest).Names; len(names) != 1 || names[0] != "openssl" {
				t.Errorf("asked for %v", names)
			}
			out.(*protocol.PackageResponse).Packages = []protocol.MinimumVersion{{Name: "openssl", Version: "1.1"}}
		}
		return nil
	}
	p := &Plugin{}
	if err := p.Run(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	if len(env.Posts) != 1 || env.Posts[0].Body.(*protocol.PluginDataRequest).PatchScan.Missing[0].Name != "openssl" {
		t.Fatalf("posts %+v", env.Posts)
	}
	if len(env.Calls) != 2 || p.Updates != 1 {
		t.Fatalf("calls %+v, updates %d", env.Calls, p.Updates)
	}
	if err := env.Posts[0].Body.(*protocol.PluginDataRequest).Validate(); err != nil {
		t.Fatal(err)
	}
}

// The catalog refused: no scan is made or posted.
func TestRefusedCatalogPostsNothing(t *testing.T) {
	env := &pluginstest.Env{IsOnline: true, Answer: func(kind protocol.Kind, _, out any) error {
		if c, ok := out.(*protocol.CatalogResponse); ok {
			c.Verdicts = []protocol.ProductVerdict{{Product: "patch", Verdict: protocol.VerdictDeniedNoSeat}}
		}
		return nil
	}}
	if err := (&Plugin{}).Run(context.Background(), env); err != nil || len(env.Posts) != 0 || env.SoftwareRead != 0 {
		t.Fatalf("%v, posts %d, software read %d", err, len(env.Posts), env.SoftwareRead)
	}
}

// Stopped, it sends only the package request: the qualifying post of 6.x.
func TestStoppedSendsOnlyThePackageRequest(t *testing.T) {
	env := &pluginstest.Env{IsOnline: true, St: pluginstest.Refused("patch-6")}
	if err := (&Plugin{}).Run(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	if len(env.Calls) != 1 || env.Calls[0].Kind != protocol.KindPackageRequest || len(env.Posts) != 0 {
		t.Fatalf("calls %+v, posts %+v", env.Calls, env.Posts)
	}
}
