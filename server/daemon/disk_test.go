package daemon_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/servertest"
)

// syncBuffer is a log destination tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// smallDisk mounts a tmpfs of size bytes that the test owns, or skips.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: making a small full disk needs root (mount -t tmpfs)")
	}
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot mount a tmpfs here (%v: %s)", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file until the disk is full, and returns it.
func fill(t *testing.T, dir string) string {
	t.Helper()
	name := filepath.Join(dir, "filler")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	for len(chunk) > 1 { // the last blocks too
		chunk = chunk[:len(chunk)/2]
		for {
			if _, err := f.Write(chunk); err != nil {
				break
			}
		}
	}
	return name
}

// On a full disk an admin's change is answered 507 with what to do (not
// an internal error), /metrics shows the free bytes of the data folder's
// file system, and the server warns in its log under the threshold; once
// space is freed, the same change succeeds.
func TestFullDiskTellsTheAdmin(t *testing.T) {
	dir := smallDisk(t, 24<<20)
	logs := &syncBuffer{}
	s := servertest.New(t, servertest.WithDataDir(dir), func(cfg *daemon.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
		cfg.DiskWarn = daemon.DiskThreshold{Percent: 50}
		cfg.DiskCheckEvery = 20 * time.Millisecond
	})
	ctx := context.Background()
	if _, err := s.Admin.AddStatus(ctx, "Before", "made with room on the disk"); err != nil {
		t.Fatal(err)
	}
	filler := fill(t, dir)

	_, err := s.Admin.AddStatus(ctx, "Full", "made on a full disk")
	var ae *adminapi.APIError
	if !errors.As(err, &ae) || ae.Code != http.StatusInsufficientStorage || !strings.Contains(ae.Message, "the disk holding "+dir+" is full") ||
		!strings.Contains(ae.Message, "free space") {
		t.Fatalf("an admin change on a full disk: %v", err)
	}
	if _, err := s.Admin.Statuses(ctx); err != nil {
		t.Fatalf("reads go on: %v", err)
	}

	req, _ := http.NewRequest(http.MethodGet, s.Addresses().AdminURL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.Identity().Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "tally_data_disk_free_bytes ") || !strings.Contains(string(body), "tally_data_disk_size_bytes 2.5165824e+07") {
		t.Fatalf("metrics lack the data folder's disk:\n%s", grepLines(string(body), "disk"))
	}

	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "nearly full") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning in the log:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Admin.AddStatus(ctx, "Full", "made once space was freed"); err != nil {
		t.Fatalf("after freeing space: %v", err)
	}
	s.Stop()
}

func grepLines(s, word string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
