//go:build unix

package software

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCollectFIFO(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "var/lib/dpkg")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "status"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan Result, 1)
	go func() {
		res, _ := Collect(context.Background(), root)
		done <- res
	}()
	select {
	case res := <-done:
		if len(res.Problems) != 1 || !strings.Contains(res.Problems[0], "not a regular file") {
			t.Errorf("problems %q", res.Problems)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a FIFO in place of the database hung the collection")
	}
}
