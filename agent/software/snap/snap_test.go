package snap

import (
	"context"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/tallyhq/tally/agent/software/softwaretest"
	"github.com/tallyhq/tally/protocol"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseYAML(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want Meta
		err  bool
	}{
		{name: "core fixture", in: string(readFile(t, "core-snap.yaml")),
			want: Meta{Name: "core", Version: "16-2.61.4-20240607", Type: "os", Architectures: []string{"amd64"}}},
		{name: "snapcraft manifest", in: string(readFile(t, "pc-gadget-manifest.yaml")),
			want: Meta{Name: "pc", Version: "24-0.1", Architectures: []string{"amd64"}}},
		{name: "flow list, quotes, comments", in: "# c\n---\nname: 'it''s'\nversion: \"1.0\\\"beta\" # c\narchitectures: [ amd64, \"arm64\" ]\napps:\n  x:\n    command: bin/x\n",
			want: Meta{Name: "it's", Version: `1.0"beta`, Architectures: []string{"amd64", "arm64"}}},
		{name: "nested keys ignored", in: "name: a\napps:\n  name: b\n  version: 2\nversion: 1 # one\n",
			want: Meta{Name: "a", Version: "1"}},
		{name: "indented list, then key", in: "name: a\narchitectures:\n  - s390x\n  - ppc64el\nversion: 3\n- stray\n",
			want: Meta{Name: "a", Version: "3", Architectures: []string{"s390x", "ppc64el"}}},
		{name: "block scalar", in: "name: a\nversion: |\n  1.0\n", want: Meta{Name: "a"}},
		{name: "single architecture scalar", in: "name: a\narchitectures: all\n", want: Meta{Name: "a", Architectures: []string{"all"}}},
		{name: "no name", in: "version: 1\n", err: true},
		{name: "junk", in: "\x00\xff:\n:\n\"", err: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseYAML([]byte(tt.in))
			if tt.err {
				if err == nil {
					t.Errorf("no error, got %+v", m)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Name != tt.want.Name || m.Version != tt.want.Version || m.Type != tt.want.Type || !slices.Equal(m.Architectures, tt.want.Architectures) {
				t.Errorf("got %+v, want %+v", m, tt.want)
			}
		})
	}
}

func TestParseAPI(t *testing.T) {
	pkgs, err := ParseAPI(readFile(t, "snapd-api-v2-snaps.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 16 {
		t.Fatalf("%d snaps, want 16", len(pkgs))
	}
	want := protocol.Package{Name: "postman", Version: "10.24.26", Publisher: "Postman, Inc.", InstallDate: 1717404611, Source: "snap"}
	if pkgs[2] != want {
		t.Errorf("got %+v, want %+v", pkgs[2], want)
	}
	for _, bad := range []string{"", "{", `{"type":"error","result":{"message":"x"}}`, `{"type":"sync","result":{}}`} {
		if _, err := ParseAPI([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestCollect(t *testing.T) {
	installed := time.Unix(1717404611, 0)
	core := readFile(t, "core-snap.yaml")
	link := func(target string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte(target), Mode: fs.ModeSymlink}
	}
	for name, fsys := range map[string]fstest.MapFS{
		"ubuntu": {
			"snap/bin/core":                        {Data: []byte("#!/bin/sh")},
			"snap/core/current":                    link("16928"),
			"snap/core/16928/meta/snap.yaml":       {Data: core},
			"snap/core/16574/meta/snap.yaml":       {Data: []byte("name: core\nversion: old\n")},
			"snap/unmounted/current":               link("5"),
			"snap/unmounted/5":                     {Mode: fs.ModeDir},
			"var/lib/snapd/snaps/core_16928.snap":  {ModTime: installed},
			"var/lib/snapd/snaps/unmounted_5.snap": {},
			"snap/README":                          {Data: []byte("not a snap")},
		},
		"fedora": {
			"snap":                            link("var/lib/snapd/snap"),
			"var/lib/snapd/snap/core/current": link("/var/lib/snapd/snap/core/16928"),
			"var/lib/snapd/snap/core/16928/meta/snap.yaml": {Data: core},
			"var/lib/snapd/snap/unmounted/current":         link("5"),
			"var/lib/snapd/snap/unmounted/5":               {Mode: fs.ModeDir},
			"var/lib/snapd/snaps/core_16928.snap":          {ModTime: installed},
		},
	} {
		t.Run(name, func(t *testing.T) {
			pkgs, problems, err := Collect(context.Background(), softwaretest.Root(t, fsys))
			if err != nil {
				t.Fatal(err)
			}
			want := []protocol.Package{{Name: "core", Version: "16-2.61.4-20240607", Arch: "amd64", InstallDate: installed.Unix(), Source: "snap"}}
			if !slices.Equal(pkgs, want) {
				t.Errorf("got %+v, want %+v", pkgs, want)
			}
			if len(problems) != 1 || !strings.Contains(problems[0], "unmounted") {
				t.Errorf("problems %q", problems)
			}
		})
	}
	pkgs, problems, err := Collect(context.Background(), fstest.MapFS{})
	if pkgs != nil || problems != nil || err != nil {
		t.Errorf("no snapd: %v %v %v", pkgs, problems, err)
	}
}
