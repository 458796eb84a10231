package spool_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/spool"
	"github.com/tallyhq/tally/protocol"
)

// An agent offline for a month, posting hourly, has some 700 records
// queued; each Put must not cost a read of all of them.
func BenchmarkPut(b *testing.B) {
	for _, n := range []int{10, 700, 3000} {
		for _, size := range []int{4 << 10, 64 << 10} {
			b.Run(fmt.Sprintf("queued=%d/body=%dKiB", n, size>>10), func(b *testing.B) {
				dir := b.TempDir()
				body := bytes.Repeat([]byte{0xa5}, size)
				for i := 1; i <= n; i++ {
					enc, err := spool.Encode(spool.Record{Seq: uint64(i), Kind: protocol.KindInventory, Class: spool.Event, Created: time.Now(), Body: body})
					if err != nil {
						b.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d.rec", i)), enc, 0o600); err != nil {
						b.Fatal(err)
					}
				}
				sp, err := spool.Open(dir, spool.Options{MaxBytes: 1 << 40})
				if err != nil {
					b.Fatal(err)
				}
				seq := uint64(n)
				for b.Loop() {
					seq++
					if err := sp.Put(spool.Record{Seq: seq, Kind: protocol.KindInventory, Class: spool.Event, Body: body}); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					if err := sp.Remove(seq); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			})
		}
	}
}
