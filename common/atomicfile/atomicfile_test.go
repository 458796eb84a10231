package atomicfile

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestWriteCreatesAndReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := Write(p, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, []byte("second, longer than the first"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, []byte("3"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "3" {
		t.Fatalf("content %q %v, want %q", b, err, "3")
	}
	if err := Write(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Size() != 0 {
		t.Fatalf("empty write: %v %v", fi, err)
	}
	assertOnly(t, dir, "state.json")
}

func TestWriteSetsPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	dir := t.TempDir()
	for _, perm := range []os.FileMode{0o600, 0o640, 0o644} {
		p := filepath.Join(dir, fmt.Sprintf("f%o", perm))
		if err := Write(p, []byte("x"), perm); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != perm {
			t.Errorf("mode %v, want %v", fi.Mode().Perm(), perm)
		}
	}
	// Replacing a file takes the new permissions: a secret written 0600
	// over a file that was 0644 is not left readable.
	p := filepath.Join(dir, "secret")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("replaced file has mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestWriteFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	if err := Write(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); err == nil {
		t.Fatal("writing into a missing folder succeeded")
	}
	// The target is a folder: the rename fails and no temporary file stays.
	target := filepath.Join(dir, "adir")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "inside"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := Write(target, []byte("x"), 0o600)
	if err == nil || !strings.Contains(err.Error(), target) {
		t.Fatalf("replacing a folder: %v; want an error naming it", err)
	}
	assertOnly(t, dir, "adir")
}

// Readers racing writers see one whole version or another, never a mix
// or a partial file.
func TestConcurrentWritersAndReaders(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "shared")
	versions := make([][]byte, 8)
	for i := range versions {
		versions[i] = bytes.Repeat([]byte{byte('a' + i)}, 64<<10)
	}
	if err := Write(p, versions[0], 0o600); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range versions {
		wg.Add(1)
		go func(v []byte) {
			defer wg.Done()
			for range 10 {
				if err := Write(p, v, 0o600); err != nil {
					t.Error(err)
					return
				}
			}
		}(versions[i])
	}
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Error(err)
				return
			}
			if len(b) != 64<<10 || bytes.Count(b, b[:1]) != len(b) {
				t.Errorf("a reader saw a torn file: %d bytes starting %q", len(b), b[:min(len(b), 8)])
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-readerDone
	assertOnly(t, dir, "shared")
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); err != nil {
		t.Fatalf("a folder that cannot be opened is skipped, got %v", err)
	}
}

// assertOnly fails unless dir holds exactly the named entries: no
// temporary file left behind.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, de := range des {
		got = append(got, de.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("folder holds %v, want only %v", got, names)
	}
}
