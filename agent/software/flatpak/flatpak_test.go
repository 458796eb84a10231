package flatpak

import (
	"context"
	"io/fs"
	"os"
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"github.com/tallyhq/tally/agent/software/softwaretest"
	"github.com/tallyhq/tally/protocol"
)

func gimpMetainfo(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/org.gimp.GIMP.metainfo.xml")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseMetainfo(t *testing.T) {
	mi, err := ParseMetainfo(gimpMetainfo(t))
	if err != nil {
		t.Fatal(err)
	}
	want := Metainfo{ID: "org.gimp.GIMP", Name: "GNU Image Manipulation Program", Developer: "The GIMP team", Version: "2.10.38", ReleaseDate: "2024-05-02"}
	if mi != want {
		t.Errorf("got %+v, want %+v", mi, want)
	}
	mi, err = ParseMetainfo([]byte(`<component><id>a</id><developer id="x"><name xml:lang="de">D</name><name>Dev</name></developer><releases><release version="2"/><release version="1"/></releases></component>`))
	if err != nil || mi.Developer != "Dev" || mi.Version != "2" {
		t.Errorf("got %+v, %v", mi, err)
	}
	for _, bad := range []string{"", "<", "\x00\x01", "<component><id>"} {
		if _, err := ParseMetainfo([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseMetadata(t *testing.T) {
	md, err := ParseMetadata([]byte("# c\n[Application]\nname=org.gimp.GIMP\nruntime=org.gnome.Platform/x86_64/46\n\n[Context]\nname=other\n"))
	if err != nil || md != (Metadata{Name: "org.gimp.GIMP", Runtime: "org.gnome.Platform/x86_64/46"}) {
		t.Errorf("got %+v, %v", md, err)
	}
	for _, bad := range []string{"", "[Runtime]\nname=org.gnome.Platform\n", "name=x\n"} {
		if _, err := ParseMetadata([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestCollect(t *testing.T) {
	deployed := time.Unix(1714600000, 0)
	app := "var/lib/flatpak/app/org.gimp.GIMP/"
	user := "home/ann/.local/share/flatpak/app/org.example.Tool/"
	fsys := softwaretest.Root(t, fstest.MapFS{
		app + "current":                       {Mode: fs.ModeSymlink, Data: []byte("x86_64/stable")},
		app + "x86_64/stable/active":          {Mode: fs.ModeSymlink, Data: []byte("0a1b2c")},
		app + "x86_64/stable/0a1b2c/metadata": {Data: []byte("[Application]\nname=org.gimp.GIMP\n")},
		app + "x86_64/stable/0a1b2c/deploy":   {Data: []byte{0}, ModTime: deployed},
		app + "x86_64/stable/0a1b2c/export/share/metainfo/org.gimp.GIMP.metainfo.xml": {Data: gimpMetainfo(t)},
		app + "x86_64/beta/active":                                              {Mode: fs.ModeSymlink, Data: []byte("/var/lib/flatpak/app/org.gimp.GIMP/x86_64/beta/ffff")},
		app + "x86_64/beta/ffff/metadata":                                       {Data: []byte("[Application]\nname=org.gimp.GIMP\n")},
		app + "x86_64/beta/ffff/files/share/metainfo/org.gimp.GIMP.appdata.xml": {Data: []byte(`<component><id>org.gimp.GIMP.desktop</id><releases><release version="2.99.18"/></releases></component>`)},
		app + "aarch64/stable/0a1b2c/metadata":                                  {Data: []byte("[Application]\nname=org.gimp.GIMP\n")}, // not deployed: no active
		user + "x86_64/master/active/metadata":                                  {Data: []byte("[Application]\nname=org.example.Tool\n")},
		"var/lib/flatpak/app/broken/x86_64/stable/active/metadata":              {Data: []byte("garbage")},
		"var/lib/flatpak/runtime/org.gnome.Platform/x86_64/46/active/metadata":  {Data: []byte("[Runtime]\nname=org.gnome.Platform\n")},
	})
	pkgs, problems, err := Collect(context.Background(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	want := []protocol.Package{
		{Name: "org.gimp.GIMP", Version: "2.99.18", Arch: "x86_64", Source: "flatpak"},
		{Name: "org.gimp.GIMP", Version: "2.10.38", Arch: "x86_64", Publisher: "The GIMP team", InstallDate: deployed.Unix(), Source: "flatpak"},
		{Name: "org.example.Tool", Arch: "x86_64", Source: "flatpak"},
	}
	if !slices.Equal(pkgs, want) {
		t.Errorf("got %+v\nwant %+v", pkgs, want)
	}
	if len(problems) != 1 {
		t.Errorf("problems %q, want the broken metadata", problems)
	}
}
