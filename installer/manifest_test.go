package installer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A manifest naming a path its component's install never writes removes
// nothing: Check refuses it before any removal.
func TestManifestCheckRefusesForeignPaths(t *testing.T) {
	allowed := []string{AgentBinary, AgentConfig, AgentUnit}
	for _, m := range []Manifest{
		{Component: "tally-agent", Files: []Entry{{Path: "/etc/passwd"}}},
		{Component: "tally-agent", Files: []Entry{{Path: AgentConfig + "/../../passwd"}}},
		{Component: "tally-agent", Dirs: []string{"/home"}},
		{Component: "tally-agent", Dirs: []string{"/"}},
		{Component: "tally-server", Files: []Entry{{Path: AgentBinary}}},
	} {
		if err := m.Check("tally-agent", allowed); err == nil {
			t.Errorf("%+v passed the check", m)
		}
	}
	ok := Manifest{Component: "tally-agent", Files: []Entry{{Path: AgentConfig}}, Dirs: []string{"/etc", ConfigDir}}
	if err := ok.Check("tally-agent", allowed); err != nil {
		t.Fatal(err)
	}
}

// A Writer records what it created; Remove takes away exactly that,
// keeps a file that was there before, and leaves folders holding other
// things.
func TestWriterAndRemove(t *testing.T) {
	root := t.TempDir()
	tg, err := NewTarget(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "etc/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(root, "etc/systemd/system/other.service")
	if err := os.WriteFile(other, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "etc/tally"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, AgentConfig), []byte("admin's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := Manifest{Component: "tally-agent"}
	w := &Writer{T: tg, M: &m}
	for _, step := range []func() error{
		func() error { return w.MkdirAll(AgentData, 0o700) },
		func() error { return w.WriteFile(AgentUnit, []byte("[Unit]\n"), 0o644) },
		func() error { return w.WriteFile(AgentConfig, []byte("mine\n"), 0o644) },
		func() error { return w.WriteFile(AgentBinary, []byte("bin"), 0o755) },
		func() error { return w.Symlink(AgentWants, AgentUnit) },
		func() error { return w.Symlink(AgentWants, AgentUnit) }, // again: an upgrade
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, AgentData)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data folder: %v %v", fi.Mode(), err)
	}
	if len(m.Files) != 4 {
		t.Fatalf("files recorded: %+v", m.Files)
	}
	mp := filepath.Join(root, "manifest.json")
	if err := m.Save(mp); err != nil {
		t.Fatal(err)
	}
	back, err := LoadManifest(mp)
	if err != nil || len(back.Files) != 4 || len(back.Dirs) != len(m.Dirs) {
		t.Fatalf("%+v %v", back, err)
	}
	r, err := Remove(tg, back, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Kept) != 1 || r.Kept[0] != filepath.Join(root, AgentConfig) {
		t.Fatalf("kept %v", r.Kept)
	}
	for _, p := range []string{AgentUnit, AgentBinary, AgentWants, AgentData, "/usr", "/var"} {
		if _, err := os.Lstat(filepath.Join(root, p)); !os.IsNotExist(err) {
			t.Errorf("%s is still there: %v", p, err)
		}
	}
	for _, p := range []string{other, filepath.Join(root, AgentConfig)} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s went: %v", p, err)
		}
	}
}

// Hostile or broken manifests are refused with a clear error.
func TestLoadManifestRefusesJunk(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		"damaged": "{not json",
		"unknown": `{"component":"tally-agent","files":[],"dirs":[],"rm":"-rf"}`,
		"huge":    `{"component":"` + strings.Repeat("x", maxManifest) + `"}`,
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadManifest(p); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	if _, err := LoadManifest(filepath.Join(dir, "none")); err == nil || !strings.Contains(err.Error(), "no install manifest") {
		t.Errorf("missing: %v", err)
	}
}

// Every path goes under the root; a path that would climb out is a bug.
func TestTargetPaths(t *testing.T) {
	root := t.TempDir()
	tg, err := NewTarget(root)
	if err != nil {
		t.Fatal(err)
	}
	if tg.IsSystem() || tg.SystemdRunning() {
		t.Fatal("a folder is not this system")
	}
	if got := tg.Path(AgentConfig); got != filepath.Join(root, "etc/tally/agent.conf") {
		t.Fatal(got)
	}
	for _, bad := range []string{"etc/x", "/etc/../../x"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%q did not panic", bad)
				}
			}()
			tg.Path(bad)
		}()
	}
	if _, err := NewTarget(filepath.Join(root, "missing")); err == nil {
		t.Error("a missing root was accepted")
	}
	f := filepath.Join(root, "file")
	os.WriteFile(f, nil, 0o600)
	if _, err := NewTarget(f); err == nil {
		t.Error("a file was accepted as root")
	}
	if s, _ := NewTarget("/"); !s.IsSystem() || s.Path(AgentConfig) != AgentConfig {
		t.Error("/ is this system")
	}
}
