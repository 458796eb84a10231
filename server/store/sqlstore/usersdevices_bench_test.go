package sqlstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

// BenchmarkBasicPostDevices measures first basic inventory posts with the
// inventory plug-in through the store, durable commits, 64 in flight,
// without users (the baseline: each consumes a node seat) and naming a
// primary user (each also adds the user, registers the device and takes
// a user seat), so that the ratio is the cost of devices on the post path.
func BenchmarkBasicPostDevices(b *testing.B) {
	for _, withUser := range []bool{false, true} {
		name := "no-users"
		if withUser {
			name = "primary-user"
		}
		b.Run(name, func(b *testing.B) {
			db, err := sqlstore.Open(filepath.Join(b.TempDir(), "b.db"), sqlstore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			nodes := fleet(b, db, b.N)
			ctx := context.Background()
			if _, err := db.ImportLicenses(ctx, []store.LicenseImport{{License: store.License{ID: "U-inventory", Product: "inventory", Kind: "user", Duration: "perpetual",
				Seats: 10_000_000, IssuedAt: time.Now(), Issuer: "bench"}, File: []byte("u")}}, "bench"); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1) - 1
						if i >= int64(len(nodes)) {
							return
						}
						n := nodes[i]
						basic := protocol.BasicInventory{Hostname: "h", OS: "linux", Hints: n.hints, Plugins: benchPlugins[1:2]}
						if withUser {
							basic.PrimaryUser = &protocol.User{Name: fmt.Sprintf("u%d", i), Domain: "CORP"}
							basic.Users = []protocol.User{*basic.PrimaryUser}
						}
						req := protocol.InventoryRequest{Basic: basic}
						if _, err := db.PostInventory(ctx, store.Request{NodeID: n.id, Seq: n.seq.Add(1), Kind: protocol.KindInventory}, &req); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if withUser {
				us, _ := db.UserSeatUsage(ctx)
				if len(us) != 1 || us[0].Held != b.N {
					b.Fatalf("user seats %+v, want %d held", us, b.N)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "posts/s")
		})
	}
}
