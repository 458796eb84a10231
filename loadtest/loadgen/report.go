package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tallyhq/tally/protocol"
)

// Report is what a run measured and checked. It is written as JSON by
// --json; Print writes it for people.
type Report struct {
	Scenario     string    `json:"scenario"`
	Run          string    `json:"run"`
	Started      time.Time `json:"started"`
	Server       string    `json:"server"`
	AdminURL     string    `json:"admin_url"`
	Agents       int       `json:"agents"`
	Settings     Settings  `json:"settings"`
	Machine      Machine   `json:"machine"`
	SetupSeconds float64   `json:"setup_seconds"`
	Seconds      float64   `json:"seconds"`

	Phases     []PhaseReport `json:"phases"`
	PostsSent  int           `json:"posts_sent,omitempty"`
	PostsAcked int           `json:"posts_acked,omitempty"`
	Checks     []Check       `json:"checks"`
	Notes      []string      `json:"notes,omitempty"`

	// Agent is each agent's outcome, for programmatic checks (tests).
	Agent []AgentResult `json:"-"`
}

// Settings are the configuration figures a report depends on.
type Settings struct {
	Duration    string  `json:"duration,omitempty"`
	Interval    string  `json:"interval,omitempty"`
	Jitter      float64 `json:"jitter,omitempty"`
	Rate        float64 `json:"rate,omitempty"`
	Concurrency int     `json:"concurrency"`
	PrimeConc   int     `json:"prime_concurrency,omitempty"`
	Product     string  `json:"product,omitempty"`
	Seats       int     `json:"seats,omitempty"`
	PackagesMin int     `json:"packages_min"`
	PackagesMax int     `json:"packages_max"`
	PoolSize    int     `json:"pool_size"`
	Churn       float64 `json:"churn"`
	Seed        uint64  `json:"seed"`
	Transport   string  `json:"transport"`         // "quic" or "tcp" (TLS over TCP)
	Sockets     int     `json:"sockets,omitempty"` // QUIC only
}

func settingsOf(c *Config) Settings {
	s := Settings{Concurrency: c.Concurrency, PackagesMin: c.PackagesMin, PackagesMax: c.PackagesMax, PoolSize: c.PoolSize,
		Churn: c.Churn, Seed: c.Seed, Transport: "quic", Sockets: c.Sockets, Rate: c.Rate}
	if c.TCP {
		s.Transport, s.Sockets = "tcp", 0
	}
	if c.Scenario == Steady || c.Scenario == Storm {
		s.PrimeConc = c.PrimeConcurrency
	}
	switch c.Scenario {
	case Steady:
		s.Duration, s.Interval, s.Jitter = c.Duration.String(), c.Interval.String(), c.Jitter
	case Race:
		s.Product, s.Seats = c.Product, c.Seats
	}
	return s
}

// PhaseReport is one phase's figures.
type PhaseReport struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"` // from the start to the last acknowledgement
	// Acked counts acknowledged requests by kind (enroll, full, delta,
	// basic); PerSecond is their sum over Seconds.
	Acked     map[string]int64   `json:"acked"`
	PerSecond float64            `json:"acked_per_second"`
	Latency   map[string]Latency `json:"latency"` // by kind, from the first attempt to the acknowledgement
	Attempts  int64              `json:"attempts"`
	Unacked   int64              `json:"unacked"`
	NotSent   int64              `json:"not_sent,omitempty"` // due when the phase ended, still waiting for a slot of --concurrency
	Repeats   int64              `json:"repeats,omitempty"`
	// Failovers counts the agents' moves to the next replica's address
	// after a transport failure (with several addresses only).
	Failovers int64            `json:"failovers,omitempty"`
	Errors    map[string]int64 `json:"errors"`   // every failed attempt, by kind
	Verdicts  map[string]int64 `json:"verdicts"` // "product verdict"
	Anomalies map[string]int64 `json:"anomalies,omitempty"`
	// Bytes per acknowledged request: the CBOR request and response, and
	// over QUIC every QUIC byte of the agents' connections (handshakes,
	// ACKs, keep-alives included; UDP and IP headers not), over TCP every
	// byte of TLS records (handshakes and framing included; TCP and IP
	// headers not).
	RequestBytes        map[string]float64 `json:"request_bytes"`
	ResponseBytes       map[string]float64 `json:"response_bytes"`
	QUICBytesPerRequest float64            `json:"quic_bytes_per_request,omitempty"`
	TCPBytesPerRequest  float64            `json:"tcp_bytes_per_request,omitempty"`
	// UDPDrops is the host's UDP receive-buffer drops during the phase
	// (all processes: the server's and the generator's sockets; counted
	// over TCP too, where the agents send no UDP).
	UDPDrops    int64      `json:"udp_receive_buffer_drops"`
	Handshakes  Handshakes `json:"handshakes"`
	Admin       *Latency   `json:"admin_api,omitempty"`
	AdminErrors int64      `json:"admin_api_errors,omitempty"`
	Server      *ProcStats `json:"server,omitempty"`
	Generator   *ProcStats `json:"generator,omitempty"`
}

// Handshakes counts the connections the agents opened in a phase.
type Handshakes struct {
	Full    int64    `json:"full"`
	Resumed int64    `json:"resumed"`
	Latency *Latency `json:"latency,omitempty"`
}

func phaseReport(ph *phase, end time.Time) PhaseReport {
	last := time.Unix(0, ph.end.Load())
	if last.Before(ph.start) {
		last = end
	}
	secs := last.Sub(ph.start).Seconds()
	pr := PhaseReport{Name: ph.name, Seconds: round3(secs), Acked: map[string]int64{}, Latency: map[string]Latency{},
		RequestBytes: map[string]float64{}, ResponseBytes: map[string]float64{},
		Attempts: ph.attempts.Load(), Unacked: ph.unacked.Load(), NotSent: ph.notSent.Load(), Repeats: ph.repeats.Load(),
		Failovers: ph.failovers.Load()}
	var total int64
	for k := range numKinds {
		n := ph.acked[k].Load()
		if n == 0 {
			continue
		}
		total += n
		name := kindNames[k]
		pr.Acked[name] = n
		pr.Latency[name] = ph.lat[k].Summary()
		pr.RequestBytes[name] = round1(float64(ph.reqBytes[k].Load()) / float64(n))
		pr.ResponseBytes[name] = round1(float64(ph.respBytes[k].Load()) / float64(n))
	}
	if secs > 0 {
		pr.PerSecond = round1(float64(total) / secs)
	}
	ph.mu.Lock()
	pr.Errors, pr.Verdicts = copyMap(ph.errs), copyMap(ph.verdicts)
	if len(ph.anomalies) > 0 {
		pr.Anomalies = copyMap(ph.anomalies)
	}
	ph.mu.Unlock()
	pr.Handshakes = Handshakes{Full: ph.handFull.Load(), Resumed: ph.handResumed.Load()}
	if ph.handshake.Count() > 0 {
		l := ph.handshake.Summary()
		pr.Handshakes.Latency = &l
	}
	if ph.admin.Count() > 0 {
		l := ph.admin.Summary()
		pr.Admin = &l
	}
	pr.AdminErrors = ph.adminErrs.Load()
	return pr
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// Check is one verified property of a run.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// AgentResult is one simulated agent's outcome.
type AgentResult struct {
	NodeID     string
	ComputerID int64
	Posted     int
	Acked      int
	Unacked    int
	AckedSeqs  []uint64 // with Config.RecordSeqs
	Verdicts   map[string]protocol.Verdict
}

func (r *Report) check(name string, ok bool, detail string) {
	r.Checks = append(r.Checks, Check{Name: name, OK: ok, Detail: detail})
}

func (r *Report) note(s string) { r.Notes = append(r.Notes, s) }

// OK reports whether every check passed.
func (r *Report) OK() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// Phase returns the named phase's report, or nil.
func (r *Report) Phase(name string) *PhaseReport {
	for i := range r.Phases {
		if r.Phases[i].Name == name {
			return &r.Phases[i]
		}
	}
	return nil
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteAcked writes, as JSON, each agent's node ID and the sequence numbers
// of its acknowledged posts (recorded with Config.RecordSeqs): what a test
// compares with the server's applied requests.
func (r *Report) WriteAcked(w io.Writer) error {
	acked := make(map[string][]uint64, len(r.Agent))
	for _, a := range r.Agent {
		acked[a.NodeID] = a.AckedSeqs
	}
	return json.NewEncoder(w).Encode(acked)
}

// Print writes the report for people.
func (r *Report) Print(w io.Writer) {
	over := "QUIC"
	if r.Settings.Transport == "tcp" {
		over = "TLS over TCP"
	}
	fmt.Fprintf(w, "tally-load %s: %d agents against %s over %s (run %s, %s)\n", r.Scenario, r.Agents, r.Server, over, r.Run, r.Started.Format(time.RFC3339))
	fmt.Fprintf(w, "  setup %.1fs (keys, certificates, software sets), total %.1fs; %d CPUs, load average %s at the start, %s at the end\n",
		r.SetupSeconds, r.Seconds, r.Machine.CPUs, r.Machine.LoadStart, r.Machine.LoadEnd)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	for i := range r.Phases {
		printPhase(w, &r.Phases[i], r.Settings.Transport == "tcp")
	}
	fmt.Fprintln(w, "checks:")
	for _, c := range r.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %s: %s\n", mark, c.Name, c.Detail)
	}
}

func printPhase(w io.Writer, p *PhaseReport, tcp bool) {
	var acked int64
	for _, n := range p.Acked {
		acked += n
	}
	fmt.Fprintf(w, "phase %s: %d acknowledged in %.2fs = %.1f/s; %d attempts, %d given up", p.Name, acked, p.Seconds, p.PerSecond, p.Attempts, p.Unacked)
	if p.NotSent > 0 {
		fmt.Fprintf(w, ", %d due but not sent (no free slot of --concurrency before the end)", p.NotSent)
	}
	if p.Failovers > 0 {
		fmt.Fprintf(w, ", %d failovers to the next replica", p.Failovers)
	}
	fmt.Fprintln(w)
	for _, k := range kindNames {
		l, ok := p.Latency[k]
		if !ok {
			continue
		}
		fmt.Fprintf(w, "  %-6s %7d  latency p50 %.1f  p90 %.1f  p99 %.1f  max %.1f ms;  bytes/post: request %.0f, response %.0f\n",
			k, p.Acked[k], l.P50, l.P90, l.P99, l.Max, p.RequestBytes[k], p.ResponseBytes[k])
	}
	if tcp {
		fmt.Fprintf(w, "  TLS bytes per request over TCP (both directions, TLS records and framing; TCP/IP headers not counted): %.0f\n", p.TCPBytesPerRequest)
	} else {
		fmt.Fprintf(w, "  QUIC bytes per request (both directions, all overhead): %.0f; UDP receive-buffer drops on this host: %d\n", p.QUICBytesPerRequest, p.UDPDrops)
	}
	if h := p.Handshakes; h.Full+h.Resumed > 0 {
		fmt.Fprintf(w, "  handshakes: %d full, %d resumed", h.Full, h.Resumed)
		if h.Latency != nil {
			fmt.Fprintf(w, "; p50 %.1f  p99 %.1f ms", h.Latency.P50, h.Latency.P99)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  errors: %s\n", mapText(p.Errors))
	fmt.Fprintf(w, "  verdicts: %s\n", mapText(p.Verdicts))
	if len(p.Anomalies) > 0 {
		fmt.Fprintf(w, "  anomalies: %s\n", mapText(p.Anomalies))
	}
	if a := p.Admin; a != nil {
		fmt.Fprintf(w, "  admin API latency: p50 %.1f  p99 %.1f  max %.1f ms (%d probes, %d errors)\n", a.P50, a.P99, a.Max, a.Count, p.AdminErrors)
	}
	if s := p.Server; s != nil {
		fmt.Fprintf(w, "  server (pid %d): CPU avg %.0f%%, max %.0f%% of one core; RSS max %.0f MB, end %.0f MB\n", s.PID, s.CPUAvg, s.CPUMax, s.RSSMaxMB, s.RSSEndMB)
	}
	if s := p.Generator; s != nil {
		fmt.Fprintf(w, "  generator: CPU avg %.0f%%; RSS max %.0f MB\n", s.CPUAvg, s.RSSMaxMB)
	}
}

func mapText(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
