package state

import (
	"os"
	"testing"
	"time"

	"github.com/tallyhq/tally/protocol"
)

func TestPluginsRoundTripSorted(t *testing.T) {
	d := openDir(t)
	if ps, err := d.Plugins(); err != nil || len(ps) != 0 {
		t.Fatalf("no file: %v %v", ps, err)
	}
	in := []InstalledPlugin{{Name: "monitor", Version: "1.4.0"}, {Name: "inventory", Version: "6.2", BuildDate: "2026-01-02", InstalledAt: time.Unix(1, 0).UTC()}}
	if err := d.SavePlugins(in); err != nil {
		t.Fatal(err)
	}
	ps, err := d.Plugins()
	if err != nil || len(ps) != 2 || ps[0].Name != "inventory" || ps[0].Version != "6.2" || ps[1].Name != "monitor" {
		t.Fatalf("read back %+v %v", ps, err)
	}
	if err := os.WriteFile(d.File(PluginsFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Plugins(); err == nil {
		t.Fatal("a damaged plug-in list is not reported")
	}
}

func TestAckRoundTripAndDamage(t *testing.T) {
	d := openDir(t)
	if a, err := d.LoadAck(); err != nil || a.Generation != 0 {
		t.Fatalf("no file: %+v %v", a, err)
	}
	want := Ack{BasicHash: "abc", BasicSentAt: 1234, Generation: 7, Hash: "h", Count: 1,
		Packages: []protocol.Package{{Name: "a", Version: "1", Source: "dpkg"}}, NeedFull: true}
	if err := d.SaveAck(want); err != nil {
		t.Fatal(err)
	}
	got, err := d.LoadAck()
	if err != nil || got.Generation != 7 || got.Packages[0].Name != "a" || !got.NeedFull || got.BasicSent().UnixMilli() != 1234 {
		t.Fatalf("read back %+v %v", got, err)
	}
	// A damaged file is the empty state: the next post is whole, which is safe.
	if err := os.WriteFile(d.File(AckFile), []byte{0xff, 0x00}, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := d.LoadAck(); err != nil || got.Generation != 0 {
		t.Fatalf("damaged: %+v %v", got, err)
	}
}

func FuzzLoadAck(f *testing.F) {
	b, _ := protocol.Marshal(&Ack{Generation: 3, Hash: "x", Packages: []protocol.Package{{Name: "a", Source: "dpkg"}}})
	f.Add(b)
	f.Add([]byte{})
	d, err := Open(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(d.File(AckFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := d.LoadAck(); err != nil {
			t.Fatalf("LoadAck of %d bytes: %v", len(data), err)
		}
	})
}
