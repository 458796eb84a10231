package daemon

import (
	"fmt"
	"time"
)

// DefaultDiskWarn is the free space of the data folder's file system under
// which the server warns: SQLite's write-ahead log needs tens of megabytes
// free between checkpoints, and admins need time to act.
const DefaultDiskWarn = 1 << 30

// DiskThreshold is the free space under which the server warns: Bytes, or
// Percent of the file system's size when Percent > 0.
type DiskThreshold struct {
	Bytes   uint64
	Percent float64
}

// String shows the threshold as the --disk-warn flag takes it.
func (t DiskThreshold) String() string {
	if t.Percent > 0 {
		return fmt.Sprintf("%g%%", t.Percent)
	}
	return fmt.Sprintf("%d bytes", t.Bytes)
}

// low reports whether free bytes of total are under the threshold.
func (t DiskThreshold) low(free, total uint64) bool {
	if t.Percent > 0 {
		return total > 0 && float64(free) < float64(total)*t.Percent/100
	}
	return free < t.Bytes
}

// diskWatch is the daemon's check of the data folder's free space.
type diskWatch struct {
	d    *Daemon
	stop chan struct{}
	done chan struct{}
}

// watchDisk checks the data folder's free space at once and then every
// interval, warning in the log when it is under the threshold (again every
// hour while it stays there) and saying when it is back.
func (d *Daemon) watchDisk(every time.Duration) *diskWatch {
	w := &diskWatch{d: d, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var warned time.Time
		check := func() {
			free, total, err := diskSpace(d.dir.Path)
			if err != nil {
				d.log.Debug("free space of the data folder unknown", "err", err)
				return
			}
			now := d.cfg.Clock.Now()
			switch low := d.cfg.DiskWarn.low(free, total); {
			case low && (warned.IsZero() || now.Sub(warned) >= time.Hour):
				warned = now
				d.log.Warn("the disk holding the data folder is nearly full: free space on it; when it is full, admin changes are refused and agents' posts wait in their spools",
					"data", d.dir.Path, "free_bytes", free, "total_bytes", total, "warn_under", d.cfg.DiskWarn.String())
			case !low && !warned.IsZero():
				warned = time.Time{}
				d.log.Info("the disk holding the data folder has room again", "data", d.dir.Path, "free_bytes", free)
			}
		}
		check()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				check()
			case <-w.stop:
				return
			}
		}
	}()
	return w
}

func (w *diskWatch) close() {
	close(w.stop)
	<-w.done
}
