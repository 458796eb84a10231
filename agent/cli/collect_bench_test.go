//go:build unix

package cli

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/state"
	"github.com/tallyhq/tally/protocol"
)

// cpuTime is the user and system time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchCollection measures one whole collection as the agent makes it:
// basic inventory, software set (read, sorted, hashed) and the encoded
// post, reporting the CPU time it takes (cpu-ms/op) beside the wall time.
func benchCollection(b *testing.B, root string) {
	dir, err := state.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	c := collectOnly{instance: "bench", machineID: "bench", dir: dir}
	ctx := context.Background()
	var n int
	start := cpuTime(b)
	b.ResetTimer()
	for b.Loop() {
		req, _, err := c.post(ctx, root)
		if err != nil {
			b.Fatal(err)
		}
		enc, err := protocol.Marshal(&req)
		if err != nil {
			b.Fatal(err)
		}
		n = int(req.Software.Count)
		_ = enc
	}
	b.ReportMetric(float64(cpuTime(b)-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(n), "packages")
}

// The Ubuntu 10.10 desktop fixture: 1,278 packages.
func BenchmarkCollectionUbuntuDesktopFixture(b *testing.B) {
	data, err := os.ReadFile("../software/dpkg/testdata/status/ubuntu-10.10-desktop.status")
	if err != nil {
		b.Fatal(err)
	}
	root := b.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "var/lib/dpkg/info"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	benchCollection(b, root)
}

// This machine, whatever its package databases hold.
func BenchmarkCollectionThisMachine(b *testing.B) { benchCollection(b, "/") }
