package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, which is 100 on every Linux architecture Go
// supports: /proc reports CPU times in these units.
const clockTicks = 100

// procUsage is one reading of a process's CPU time and resident memory.
type procUsage struct {
	at       time.Time
	cpuTicks uint64 // user + system
	rssBytes uint64
}

func readProc(pid int) (procUsage, error) {
	u := procUsage{at: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// The command name (field 2) may hold spaces and parentheses: fields
	// are counted after its closing parenthesis.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return u, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 { // f[0] is field 3 (state); utime is field 14, stime 15
		return u, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return u, fmt.Errorf("/proc/%d/stat: bad CPU times", pid)
	}
	u.cpuTicks = ut + st
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err == nil {
				u.rssBytes = kb << 10
			}
			break
		}
	}
	return u, nil
}

// cpuPercent is the CPU used between two readings, in percent of one core.
func cpuPercent(a, b procUsage) float64 {
	dt := b.at.Sub(a.at).Seconds()
	if dt <= 0 || b.cpuTicks < a.cpuTicks {
		return 0
	}
	return float64(b.cpuTicks-a.cpuTicks) / clockTicks / dt * 100
}

// ProcStats is a process's resource use over a phase.
type ProcStats struct {
	PID int `json:"pid"`
	// CPUAvg and CPUMax are percent of one core (200 is both cores of a
	// two-core machine); the maximum is over one-second samples.
	CPUAvg     float64 `json:"cpu_avg_pct"`
	CPUMax     float64 `json:"cpu_max_pct"`
	RSSMaxMB   float64 `json:"rss_max_mb"`
	RSSEndMB   float64 `json:"rss_end_mb"`
	CPUSeconds float64 `json:"cpu_seconds"`
}

// sampler reads a process's usage every second, so that a phase's peak
// memory and CPU are known, not only its average.
type sampler struct {
	pid  int
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	last    procUsage
	cpuMax  float64
	lastCPU float64
	rssMax  uint64
	ok      bool
}

func startSampler(pid int) *sampler {
	s := &sampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	if pid <= 0 {
		close(s.done)
		return s
	}
	u, err := readProc(pid)
	if err != nil {
		close(s.done)
		return s
	}
	s.last, s.ok, s.rssMax = u, true, u.rssBytes
	go s.loop()
	return s
}

func (s *sampler) loop() {
	defer close(s.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			u, err := readProc(s.pid)
			if err != nil {
				continue
			}
			s.mu.Lock()
			if u.at.Sub(s.last.at) < 500*time.Millisecond {
				// A late tick followed by a prompt one: too short an
				// interval for 10 ms clock ticks to give a rate.
				s.mu.Unlock()
				continue
			}
			c := cpuPercent(s.last, u)
			if c > s.cpuMax {
				s.cpuMax = c
			}
			s.lastCPU = c
			if u.rssBytes > s.rssMax {
				s.rssMax = u.rssBytes
			}
			s.last = u
			s.mu.Unlock()
		}
	}
}

// mark starts a phase: it returns the reading the phase's average is
// measured from and resets the peaks.
func (s *sampler) mark() procUsage {
	if !s.ok {
		return procUsage{}
	}
	u, err := readProc(s.pid)
	if err != nil {
		return procUsage{}
	}
	s.mu.Lock()
	s.cpuMax, s.rssMax = 0, u.rssBytes
	s.mu.Unlock()
	return u
}

// since reports the usage from a mark to now.
func (s *sampler) since(from procUsage) *ProcStats {
	if !s.ok || from.at.IsZero() {
		return nil
	}
	u, err := readProc(s.pid)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.rssBytes > s.rssMax {
		s.rssMax = u.rssBytes
	}
	avg := cpuPercent(from, u)
	mx := s.cpuMax
	if avg > mx {
		mx = avg
	}
	return &ProcStats{PID: s.pid, CPUAvg: round1(avg), CPUMax: round1(mx), RSSMaxMB: mb(s.rssMax), RSSEndMB: mb(u.rssBytes),
		CPUSeconds: round1(float64(u.cpuTicks-from.cpuTicks) / clockTicks)}
}

// current is the latest one-second reading, for the progress line.
func (s *sampler) current() (cpu float64, rss uint64, ok bool) {
	if !s.ok {
		return 0, 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastCPU, s.last.rssBytes, true
}

func (s *sampler) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

func mb(b uint64) float64      { return round1(float64(b) / (1 << 20)) }
func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// Machine describes the host a figure was measured on: figures from a
// busy machine are ratios at best.
type Machine struct {
	CPUs        int    `json:"cpus"`
	LoadStart   string `json:"load_average_start"`
	LoadEnd     string `json:"load_average_end,omitempty"`
	MemTotalMiB uint64 `json:"mem_total_mib,omitempty"`
}

func machineNow() Machine {
	m := Machine{CPUs: runtime.NumCPU(), LoadStart: loadAverage()}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				m.MemTotalMiB = kb >> 10
			}
		}
	}
	return m
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// udpRcvbufErrors is the host's count of UDP datagrams dropped because a
// socket's receive buffer was full (/proc/net/snmp): when it grows, QUIC
// retransmits, and a storm can feed on itself.
func udpRcvbufErrors() int64 {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return -1
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "Udp: ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "RcvbufErrors" && i < len(f) {
				v, err := strconv.ParseInt(f[i], 10, 64)
				if err != nil {
					return -1
				}
				return v
			}
		}
	}
	return -1
}
