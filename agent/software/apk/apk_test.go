package apk

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/tallyhq/tally/protocol"
)

func fixture(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/alpine-3.16-base/installed")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseFixture(t *testing.T) {
	entries, skipped := Parse(fixture(t))
	if len(skipped) != 0 {
		t.Errorf("skipped: %v", skipped)
	}
	if len(entries) != 14 {
		t.Fatalf("%d entries, want 14", len(entries))
	}
	want := Entry{Name: "musl", Version: "1.2.3-r0", Arch: "x86_64", Maintainer: "Timo Teräs <timo.teras@iki.fi>", Origin: "musl", BuildTime: 1649396308}
	got := entries[1]
	got.Line = 0
	if got != want {
		t.Errorf("entry 1 = %+v, want %+v", got, want)
	}
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		name    string
		in      string
		want    []string
		skipped int
	}{
		{"empty", "", nil, 0},
		{"one", "P:a\nV:1-r0\nA:aarch64\n", []string{"a 1-r0 aarch64"}, 0},
		{"crlf, odd lines", "P:a\r\nV:1\r\nnonsense\r\nX\r\n:\r\n\r\nP:b\nV:2\n", []string{"a 1 ", "b 2 "}, 0},
		{"no version", "P:a\n\nP:b\nV:2\n", []string{"b 2 "}, 1},
		{"no name", "V:1\nA:x86\n", nil, 1},
		{"bad build time", "P:a\nV:1\nt:soon\n", []string{"a 1 "}, 0},
		{"junk", "\x00\xff\n\x01:\x02\n\n\n", nil, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			entries, skipped := Parse([]byte(tt.in))
			var got []string
			for _, e := range entries {
				got = append(got, e.Name+" "+e.Version+" "+e.Arch)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(skipped) != tt.skipped {
				t.Errorf("got %q, %v; want %q, %d skipped", got, skipped, tt.want, tt.skipped)
			}
		})
	}
}

func TestCollect(t *testing.T) {
	for _, path := range []string{"lib/apk/db/installed", "usr/lib/apk/db/installed"} {
		pkgs, problems, err := Collect(context.Background(), fstest.MapFS{path: {Data: fixture(t)}})
		if err != nil || len(problems) != 0 {
			t.Fatal(err, problems)
		}
		if len(pkgs) != 14 {
			t.Fatalf("%s: %d packages", path, len(pkgs))
		}
		want := protocol.Package{Name: "musl", Version: "1.2.3-r0", Arch: "x86_64", Publisher: "Timo Teräs", Source: "apk"}
		if pkgs[1] != want {
			t.Errorf("%s: %+v, want %+v", path, pkgs[1], want)
		}
	}
	pkgs, problems, err := Collect(context.Background(), fstest.MapFS{})
	if pkgs != nil || problems != nil || err != nil {
		t.Errorf("empty root: %v %v %v", pkgs, problems, err)
	}
}

func TestParseHostile(t *testing.T) {
	huge := append([]byte("P:big\nV:1\nT:"), bytes.Repeat([]byte("x"), 10<<20)...)
	entries, skipped := Parse(append(huge, "\n\nP:small\nV:2\n"...))
	if len(entries) != 2 || len(skipped) != 0 {
		t.Errorf("10 MB line: %d entries, %v", len(entries), skipped)
	}
	_, skipped = Parse(bytes.Repeat([]byte("V:1\n\n"), 1000))
	if len(skipped) != maxSkipped+1 {
		t.Errorf("%d skipped errors, want %d", len(skipped), maxSkipped+1)
	}
}
