package macos

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

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

const (
	chrome = "info-plist/GoogleChrome-130-Info.plist"
	gmac   = "info-plist/gMacInformation-Info.binary.plist"
	zoom   = "receipts/us.zoom.pkg.videomeeting.plist"
	xprot  = "receipts/com.apple.pkg.XProtectPayloads_10_15.16U4211.plist"
)

func TestParseInfoPlist(t *testing.T) {
	for _, tt := range []struct {
		file   string
		bundle string
		app    App
		pkg    protocol.Package
	}{
		{chrome, "Google Chrome.app",
			App{BundleID: "com.google.Chrome", Name: "Chrome", DisplayName: "Google Chrome", ShortVersion: "130.0.6723.69", Version: "6723.69"},
			protocol.Package{Name: "Google Chrome", Version: "130.0.6723.69", Source: "macos-app"}},
		{gmac, "gMacInformation.app",
			App{BundleID: "com.google.corp.gMacInformation", Name: "gMacInformation", ShortVersion: "202410231131", Version: "202410231131"},
			protocol.Package{Name: "gMacInformation", Version: "202410231131", Source: "macos-app"}},
	} {
		app, err := ParseInfoPlist(readFile(t, tt.file))
		if err != nil {
			t.Fatal(err)
		}
		if app != tt.app {
			t.Errorf("%s: %+v, want %+v", tt.file, app, tt.app)
		}
		if p := app.Package(tt.bundle); p != tt.pkg {
			t.Errorf("%s: %+v, want %+v", tt.file, p, tt.pkg)
		}
	}
	if p := (App{Version: "7"}).Package("Bare.app"); p.Name != "Bare" || p.Version != "7" {
		t.Errorf("fallbacks: %+v", p)
	}
	for _, bad := range []string{"", "<plist><array/></plist>", "bplist00"} {
		if _, err := ParseInfoPlist([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseReceipt(t *testing.T) {
	for _, tt := range []struct {
		file string
		want protocol.Package
	}{
		{zoom, protocol.Package{Name: "us.zoom.pkg.videomeeting", Version: "6.0.2.33403", InstallDate: time.Date(2024, 3, 14, 9, 26, 53, 0, time.UTC).Unix(), Source: "macos-pkgutil"}},
		{xprot, protocol.Package{Name: "com.apple.pkg.XProtectPayloads_10_15.16U4211", Version: "2.0.0.1.1698345660", InstallDate: time.Date(2023, 11, 2, 18, 0, 0, 0, time.UTC).Unix(), Source: "macos-pkgutil"}},
	} {
		r, err := ParseReceipt(readFile(t, tt.file))
		if err != nil {
			t.Fatal(err)
		}
		if p := r.Package(); p != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.file, p, tt.want)
		}
	}
	if _, err := ParseReceipt([]byte("<plist><dict><key>PackageVersion</key><string>1</string></dict></plist>")); err == nil {
		t.Error("receipt without identifier accepted")
	}
}

func TestScan(t *testing.T) {
	link := func(target string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte(target), Mode: fs.ModeSymlink}
	}
	fsys := softwaretest.Root(t, fstest.MapFS{
		"Applications/Google Chrome.app/Contents/Info.plist":                                {Data: readFile(t, chrome)},
		"Applications/Google Chrome.app/Contents/Frameworks/Helper.app/Contents/Info.plist": {Data: readFile(t, gmac)},
		"Applications/Utilities/gMacInformation.app/Contents/Info.plist":                    {Data: readFile(t, gmac)},
		"Applications/Utilities/Deeper/Too Deep.app/Contents/Info.plist":                    {Data: readFile(t, gmac)},
		"Applications/Safari.app": link("/System/Cryptexes/App/System/Applications/Safari.app"),
		"System/Cryptexes/App/System/Applications/Safari.app/Contents/Info.plist": {Data: []byte(`<plist><dict><key>CFBundleName</key><string>Safari</string><key>CFBundleShortVersionString</key><string>17.4</string></dict></plist>`)},
		"Applications/Broken.app/Contents/Info.plist":                             {Data: []byte("not a plist")},
		"Applications/Empty.app/Contents":                                         {Mode: fs.ModeDir},
		"Applications/.hidden.app/Contents/Info.plist":                            {Data: readFile(t, chrome)},
		"Applications/notes.txt":                                                  {Data: []byte("x")},
		"Users/ann/Applications/Own.app/Contents/Info.plist":                      {Data: []byte(`<plist><dict><key>CFBundleVersion</key><string>3</string></dict></plist>`)},
		"Users/Shared/Applications/Shared.app/Contents/Info.plist":                {Data: readFile(t, chrome)},
		"var/db/receipts/us.zoom.pkg.videomeeting.plist":                          {Data: readFile(t, zoom)},
		"var/db/receipts/us.zoom.pkg.videomeeting.bom":                            {Data: []byte("BOMStore")},
		"var/db/receipts/com.apple.pkg.XProtectPayloads_10_15.16U4211.plist":      {Data: readFile(t, xprot)},
	})
	pkgs, problems, err := Scan(context.Background(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pkgs {
		got = append(got, p.Source+" "+p.Name+" "+p.Version)
	}
	want := []string{
		"macos-app Google Chrome 130.0.6723.69",
		"macos-app Safari 17.4",
		"macos-app gMacInformation 202410231131",
		"macos-app Own 3",
		"macos-pkgutil com.apple.pkg.XProtectPayloads_10_15.16U4211 2.0.0.1.1698345660",
		"macos-pkgutil us.zoom.pkg.videomeeting 6.0.2.33403",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if len(problems) != 1 {
		t.Errorf("problems %q, want Broken.app's", problems)
	}

	pkgs, problems, err = Scan(context.Background(), fstest.MapFS{})
	if pkgs != nil || problems != nil || err != nil {
		t.Errorf("empty root: %v %v %v", pkgs, problems, err)
	}
}
