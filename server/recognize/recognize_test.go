package recognize

import (
	"slices"
	"strings"
	"testing"
)

func TestCompare(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0}, {"1.0", "1.1", -1}, {"1.10", "1.9", 1}, {"1.0~rc1", "1.0", -1},
		{"1:1.0", "2.0", 1}, {"2.27-3ubuntu1", "2.27-3ubuntu1.2", -1}, {"1.0a", "1.0", 1},
		{"1.0", "1.0.0", -1}, {"0010", "10", 0}, {"", "0", 0}, {"1.2+dfsg", "1.2", 1},
		{"115.0.2", "115.0.10", -1}, {"10.0.19041.1", "10.0.19041.1", 0},
	} {
		if got := Compare(c.a, c.b); got != c.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := Compare(c.b, c.a); got != -c.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

func TestRange(t *testing.T) {
	r, err := ParseRange(">=2.7, <2.8")
	if err != nil {
		t.Fatal(err)
	}
	for v, want := range map[string]bool{"2.7": true, "2.7.17-1~18.04": true, "2.8": false, "2.6.9": false, "3": false} {
		if r.Contains(v) != want {
			t.Errorf("%q in >=2.7,<2.8: %v", v, !want)
		}
	}
	if r, _ := ParseRange(""); !r.Contains("anything") {
		t.Error("empty range refuses a version")
	}
	if r, _ := ParseRange(">= 1 != 1.5"); !r.Contains("1.4") || r.Contains("1.5") {
		t.Error("spaces after operators")
	}
	for _, bad := range []string{">=", "<>1", "=>1", ">=1 <", strings.Repeat("1,", 9)} {
		if _, err := ParseRange(bad); err == nil {
			t.Errorf("range %q accepted", bad)
		}
	}
}

func TestIndex(t *testing.T) {
	ix, err := NewIndex([]Application{
		{ID: 1, Rules: []Rule{{Package: "python2.7*", Versions: ">=2.7.15, <2.8", Source: "dpkg"}}},
		{ID: 2, Rules: []Rule{{Package: "Mozilla Firefox*"}, {Package: "firefox"}}},
		{ID: 4, Rules: []Rule{{Package: "*office*"}}},
		{ID: 3, Rules: []Rule{{Package: "libreoffice-?alc"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p    Package
		want []int64
	}{
		{Package{"dpkg", "python2.7-minimal", "2.7.17-1~18.04"}, []int64{1}},
		{Package{"rpm", "python2.7-minimal", "2.7.17"}, nil},
		{Package{"dpkg", "python2.7", "2.7.12-1"}, nil},
		{Package{"windows-registry", "Mozilla Firefox (x64 en-US)", "115"}, []int64{2}},
		{Package{"dpkg", "FireFox", "115"}, []int64{2}},
		{Package{"dpkg", "firefox-esr", "115"}, nil},
		{Package{"dpkg", "libreoffice-calc", "1"}, []int64{3, 4}},
		{Package{"dpkg", "libreoffice-calcx", "1"}, []int64{4}},
	} {
		if got := ix.Match(nil, c.p); !slices.Equal(got, c.want) {
			t.Errorf("%+v: got %v, want %v", c.p, got, c.want)
		}
	}
	for _, bad := range []Rule{{Package: ""}, {Package: "*"}, {Package: "a", Source: "pip"}, {Package: "a", Versions: ">="}, {Package: strings.Repeat("*a", 9)}} {
		if _, err := NewIndex([]Application{{ID: 9, Rules: []Rule{bad}}}); err == nil {
			t.Errorf("rule %+v accepted", bad)
		}
	}
}

func TestGlobNoBlowUp(t *testing.T) {
	name := strings.Repeat("a", 200)
	if globMatch("*a*a*a*a*a*a*a*b", name) {
		t.Fatal("matched")
	}
	if !globMatch("a*?a", "abba") || globMatch("a?", "a") {
		t.Fatal("glob")
	}
}

func FuzzRange(f *testing.F) {
	f.Add(">=1.0, <2", "1.5")
	f.Fuzz(func(t *testing.T, r, v string) {
		rng, err := ParseRange(r)
		if err != nil {
			return
		}
		rng.Contains(v)
		if Compare(v, v) != 0 {
			t.Fatalf("Compare(%q, itself) != 0", v)
		}
	})
}
