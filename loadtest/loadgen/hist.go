package loadgen

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram records durations in log-linear buckets (HDR style: 64
// sub-buckets per power of two, under 1.6% error) in bounded memory, from
// many goroutines at once without locks.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64 // microseconds
	max    atomic.Uint64 // microseconds
}

// Values are microseconds; the last bucket holds everything above ~2^40 µs.
const histBuckets = 64 * 42

func histIndex(v uint64) int {
	if v < 128 {
		return int(v)
	}
	shift := bits.Len64(v) - 7
	i := 64*shift + int(v>>uint(shift))
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

// histValue is the middle of bucket i, in microseconds.
func histValue(i int) uint64 {
	if i < 128 {
		return uint64(i)
	}
	shift := uint(i/64 - 1)
	m := uint64(i%64 + 64)
	return m<<shift + (uint64(1)<<shift)/2
}

// Record adds one duration.
func (h *Histogram) Record(d time.Duration) {
	us := uint64(0)
	if d > 0 {
		us = uint64(d / time.Microsecond)
	}
	h.counts[histIndex(us)].Add(1)
	h.n.Add(1)
	h.sum.Add(us)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			break
		}
	}
}

// Count is the number of recorded durations.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Quantile returns the duration below which a fraction q of the recorded
// durations fall (0 when empty).
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			v := histValue(i)
			if m := h.max.Load(); v > m {
				v = m
			}
			return time.Duration(v) * time.Microsecond
		}
	}
	return h.Max()
}

// Max is the largest recorded duration.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) * time.Microsecond }

// Mean is the average recorded duration.
func (h *Histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load()/n) * time.Microsecond
}

// Latency is a histogram's summary as reports show it, in milliseconds.
type Latency struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// Summary summarises the histogram.
func (h *Histogram) Summary() Latency {
	return Latency{Count: h.Count(), Mean: ms(h.Mean()), P50: ms(h.Quantile(0.50)), P90: ms(h.Quantile(0.90)),
		P99: ms(h.Quantile(0.99)), Max: ms(h.Max())}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
