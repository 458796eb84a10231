package loadgen

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
)

// Scenario names what a run does.
type Scenario string

// Scenarios.
const (
	// Enroll enrolls Agents agents as fast as Concurrency allows.
	Enroll Scenario = "enroll"
	// Steady enrolls, posts each agent's full inventory once (the prime
	// phase), then has every agent post a delta every Interval (± Jitter)
	// for Duration.
	Steady Scenario = "steady"
	// Storm enrolls and primes, drops every connection (an outage), then
	// has every agent post at once and measures the time to drain.
	Storm Scenario = "storm"
	// Race enrolls, makes sure the product has licenses, then has every
	// agent make its first qualifying post at once, and checks that
	// exactly the free seats were taken.
	Race Scenario = "race"
)

// Config is one run. Zero values take the defaults of Defaults.
type Config struct {
	Scenario Scenario
	Target   Target

	Agents      int
	Duration    time.Duration // steady: how long agents post; storm and race: upper bound of the burst
	Interval    time.Duration // steady: each agent's posting interval; 0 posts back to back
	Jitter      float64       // steady: ± fraction of Interval
	Rate        float64       // cap on posts (first attempts) per second over all agents; 0: none
	Concurrency int           // requests in flight at most; storm and race default to Agents
	// EnrollConcurrency bounds the enroll phase of the other scenarios
	// (default 256): enrolling is their setup.
	EnrollConcurrency int

	// Licenses. Race: the product raced for, and the seats of the license
	// minted for it (needs Target.DataDir) or imported from LicenseFile;
	// with neither, the product's existing licenses. Steady and storm: the
	// inventory product gets Seats (default: Agents) seats the same way, so
	// that software inventory is stored.
	Product     string
	Seats       int
	LicenseFile string
	NoLicense   bool // steady and storm: mint nothing (unlicensed software is discarded)

	PackagesMin int
	PackagesMax int
	PoolSize    int
	Churn       float64 // fraction of delta posts that carry a change
	// BasicEvery: one delta post in BasicEvery carries the whole basic
	// inventory, the others its hash (the agent sends it when it changes
	// and once a day: 24 for hourly posts; the default). 1: every post;
	// negative: only the first post and when the server asks.
	BasicEvery int
	Seed       uint64
	Run        string // names this run's agents; random by default

	Sockets        int           // UDP sockets shared by the agents' QUIC connections; not used with TCP
	TCP            bool          // TLS over TCP (the server's fallback, at the QUIC port number) instead of QUIC
	Prime          bool          // storm: post every agent's full inventory before the outage
	Reconnect      bool          // storm: drop every connection before the storm
	DialTimeout    time.Duration // one handshake
	RequestTimeout time.Duration // one attempt of one request
	DrainTimeout   time.Duration // how long in-flight posts may finish after the end
	PrimeTimeout   time.Duration // bound of the prime phase (every agent's full post)
	// PrimeConcurrency bounds the prime's full posts in flight (default
	// 64): the prime is the setup of steady and storm, not a measure of
	// overload.
	PrimeConcurrency int
	MaxAttempts      int // per post, for busy answers and transport failures

	AdminProbe time.Duration // interval of admin API latency probes; negative: none
	// ProbeCommand, when set, runs the admin API probes in a process of
	// their own (the program and its arguments; it runs ServeProbe, see
	// probe.go): inside the generator, they wait behind its agents.
	ProbeCommand []string
	CheckSample  int  // computers whose software is compared; 0: all
	RecordSeqs   bool // keep every acknowledged sequence number (tests)

	// Progress receives a line per second; nil for none. ProgressTTY
	// rewrites one line with \r instead of printing one per second.
	Progress    io.Writer
	ProgressTTY bool
}

// Defaults fills in the zero fields.
func (c *Config) Defaults() {
	if c.Agents <= 0 {
		c.Agents = 100
	}
	if len(c.Target.Servers) > 0 && c.Target.QUIC == "" {
		c.Target.QUIC = c.Target.Servers[0]
	}
	if c.Duration <= 0 {
		c.Duration = 30 * time.Second
	}
	if c.Interval < 0 {
		c.Interval = 0
	}
	if c.Jitter <= 0 || c.Jitter > 1 {
		c.Jitter = 0.2
	}
	if c.Concurrency <= 0 {
		switch c.Scenario {
		case Storm, Race:
			c.Concurrency = c.Agents
		default:
			c.Concurrency = 256
		}
	}
	if c.EnrollConcurrency <= 0 {
		c.EnrollConcurrency = min(256, c.Concurrency)
	}
	if c.Scenario == Enroll {
		c.EnrollConcurrency = c.Concurrency
	}
	if c.Product == "" {
		c.Product = "inventory"
	}
	if c.Scenario == Race && c.Seats <= 0 && c.LicenseFile == "" && c.Target.DataDir != "" {
		c.Seats = max(1, c.Agents/4)
	}
	if c.PackagesMin <= 0 {
		c.PackagesMin = 500
	}
	if c.PackagesMax <= 0 {
		c.PackagesMax = 3000
	}
	if c.PackagesMax < c.PackagesMin {
		c.PackagesMax = c.PackagesMin
	}
	if c.PoolSize <= 0 {
		c.PoolSize = 6000
	}
	if c.PoolSize < c.PackagesMax {
		c.PoolSize = c.PackagesMax
	}
	if c.Churn < 0 {
		c.Churn = 0
	}
	if c.BasicEvery == 0 {
		c.BasicEvery = 24
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Run == "" {
		b := make([]byte, 3)
		_, _ = rand.Read(b)
		c.Run = hex.EncodeToString(b)
	}
	if c.Sockets <= 0 {
		c.Sockets = 4
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 60 * time.Second
	}
	if c.PrimeConcurrency <= 0 {
		c.PrimeConcurrency = min(64, c.Concurrency)
	}
	if c.PrimeTimeout <= 0 {
		c.PrimeTimeout = 10 * time.Minute
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 100 // the phase's time bound comes first: an agent retries until then
	}
	if c.AdminProbe == 0 {
		c.AdminProbe = 200 * time.Millisecond
	}
}

// Validate checks the configuration after Defaults.
func (c *Config) Validate() error {
	switch c.Scenario {
	case Enroll, Steady, Storm, Race:
	default:
		return fmt.Errorf("unknown scenario %q: want enroll, steady, storm or race", c.Scenario)
	}
	if c.Agents > 1_000_000 {
		return errors.New("at most 1,000,000 agents")
	}
	if c.Target.QUIC == "" || c.Target.Fingerprint == "" {
		return errors.New("no server: pass --data DIR of a local server, or --server and --fingerprint")
	}
	seen := map[string]bool{}
	for _, a := range c.Target.Servers {
		if a == "" || seen[a] {
			return fmt.Errorf("server addresses %q: each must be HOST:PORT, listed once", c.Target.Servers)
		}
		seen[a] = true
	}
	if c.Target.AdminURL == "" || c.Target.Token == "" {
		return errors.New("no admin API: pass --data DIR, or --admin-url and --token (the counts are checked through it)")
	}
	return nil
}
