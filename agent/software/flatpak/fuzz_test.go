package flatpak

import "testing"

func FuzzParseMetainfo(f *testing.F) {
	f.Add(gimpMetainfo(f))
	f.Add([]byte(`<component><releases><release/></releases><developer><name/></developer></component>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseMetainfo(data)
	})
}

func FuzzParseMetadata(f *testing.F) {
	f.Add([]byte("[Application]\nname=org.gimp.GIMP\nruntime=org.gnome.Platform/x86_64/46\n"))
	f.Add([]byte("[Application\n=\nname"))
	f.Fuzz(func(t *testing.T, data []byte) {
		md, err := ParseMetadata(data)
		if err == nil && md.Name == "" {
			t.Fatal("no name accepted")
		}
	})
}
