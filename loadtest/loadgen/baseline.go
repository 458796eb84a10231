package loadgen

import (
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/mattn/go-sqlite3" // the database/sql driver "sqlite3", as the server's store uses it

	"github.com/quic-go/quic-go"

	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
)

// The baseline measures, on the same machine and in the same run, the
// limits Tally's figures are divided by, so that they are ratios that
// survive a noisy or different machine:
//
//   - a bare quic-go request/response echo of Tally's message sizes, with
//     the same TLS (mutual, Ed25519, TLS 1.3, ALPN), connections and
//     concurrency, and no decoding or store: the transport's ceiling;
//   - the disk's durable SQLite commit rate (WAL, synchronous=FULL), one
//     row per commit and 100 per commit: the store's ceiling;
//   - handshakes per second, full, resumed (TLS session tickets) and 0-RTT,
//     side by side, against the echo server and, when given, the Tally
//     server: the cost of reconnects after an outage.

// BaselineConfig configures a baseline run.
type BaselineConfig struct {
	// Connections and Concurrency of the echo measurement: use the load
	// run's agents (up to 1,000) and concurrency.
	Connections int
	Concurrency int
	Sockets     int
	// Duration of each measurement (echo delta, echo full, each commit
	// mode, each handshake mode).
	Duration time.Duration
	// PackagesMin, PackagesMax, PoolSize and Seed make the message sizes:
	// those of the load run's posts.
	PackagesMin, PackagesMax, PoolSize int
	Seed                               uint64
	// SQLiteDir is where the commit-rate database is made (a temporary
	// folder inside it, removed after). Use the server's file system.
	SQLiteDir string
	// Target, when its QUIC address is set, adds the Tally server's
	// handshakes (full and resumed) to the handshake table.
	Target *Target
	// Skip parts: "echo", "sqlite", "handshakes".
	Skip     map[string]bool
	Progress func(string)
}

// BaselineReport is the baseline's figures.
type BaselineReport struct {
	Started    time.Time        `json:"started"`
	Machine    Machine          `json:"machine"`
	Sizes      MessageSizes     `json:"message_sizes"`
	Echo       []EchoResult     `json:"echo,omitempty"`
	SQLite     []CommitResult   `json:"sqlite,omitempty"`
	Handshakes []HandshakeStats `json:"handshakes,omitempty"`
	Notes      []string         `json:"notes,omitempty"`
}

// MessageSizes are the encoded sizes of Tally's requests and answer.
type MessageSizes struct {
	Delta    int `json:"delta_request"`
	Full     int `json:"full_request"` // mean over 64 agents
	Response int `json:"response"`
}

// EchoResult is one echo measurement.
type EchoResult struct {
	Message     string  `json:"message"` // "delta" or "full"
	Bytes       int     `json:"request_bytes"`
	Connections int     `json:"connections"`
	Concurrency int     `json:"concurrency"`
	PerSecond   float64 `json:"per_second"`
	Latency     Latency `json:"latency"`
	Errors      int64   `json:"errors"`
}

// CommitResult is one SQLite measurement.
type CommitResult struct {
	RowsPerCommit int     `json:"rows_per_commit"`
	CommitsPerSec float64 `json:"commits_per_second"`
	RowsPerSec    float64 `json:"rows_per_second"`
	Latency       Latency `json:"commit_latency"`
	Path          string  `json:"path"`
	FileSystem    string  `json:"file_system"`
}

// HandshakeStats is one handshake measurement: each iteration connects,
// sends one request (an echo, or an empty request the Tally server answers
// "bad request" without touching its store: it also waits for the
// session ticket), and closes.
type HandshakeStats struct {
	Server    string  `json:"server"` // "echo" or "tally"
	Mode      string  `json:"mode"`   // see handshakeModes
	PerSecond float64 `json:"per_second"`
	Latency   Latency `json:"latency"` // connect and first answer
	Resumed   float64 `json:"resumed_fraction"`
	Used0RTT  float64 `json:"0rtt_fraction"`
	Errors    int64   `json:"errors"`
}

// Baseline runs the baseline measurements.
func Baseline(ctx context.Context, cfg BaselineConfig) (*BaselineReport, error) {
	if cfg.Connections <= 0 {
		cfg.Connections = 256
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 256
	}
	if cfg.Sockets <= 0 {
		cfg.Sockets = 4
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	if cfg.SQLiteDir == "" {
		cfg.SQLiteDir = os.TempDir()
	}
	say := cfg.Progress
	if say == nil {
		say = func(string) {}
	}
	rep := &BaselineReport{Started: time.Now().UTC(), Machine: machineNow()}
	defer func() { rep.Machine.LoadEnd = loadAverage() }()
	lc := Config{PackagesMin: cfg.PackagesMin, PackagesMax: cfg.PackagesMax, PoolSize: cfg.PoolSize, Seed: cfg.Seed, Run: "baseline"}
	lc.Defaults()
	sizes, delta, full, resp, err := messageSizes(&lc)
	if err != nil {
		return nil, err
	}
	rep.Sizes = sizes

	if !cfg.Skip["echo"] || !cfg.Skip["handshakes"] {
		es, err := startEcho(resp)
		if err != nil {
			return nil, err
		}
		defer es.close()
		if !cfg.Skip["echo"] {
			for _, m := range []struct {
				name string
				req  []byte
			}{{"delta", delta}, {"full", full}} {
				say("echo of " + m.name + " posts")
				r, err := echoRate(ctx, es.addr, es.fingerprint, m.req, cfg)
				if err != nil {
					return nil, err
				}
				r.Message = m.name
				rep.Echo = append(rep.Echo, r)
			}
		}
		if !cfg.Skip["handshakes"] {
			for _, mode := range handshakeModes {
				say("echo handshakes: " + mode)
				rep.Handshakes = append(rep.Handshakes, handshakeRate(ctx, "echo", es.addr, es.fingerprint, mode, delta, cfg))
			}
			if t := cfg.Target; t != nil && t.QUIC != "" {
				for _, mode := range handshakeModes {
					say("tally-server handshakes: " + mode)
					rep.Handshakes = append(rep.Handshakes, handshakeRate(ctx, "tally", t.QUIC, t.Fingerprint, mode, nil, cfg))
				}
			}
		}
	}
	if !cfg.Skip["sqlite"] {
		for _, rows := range []int{1, 100} {
			say(fmt.Sprintf("SQLite commits of %d rows", rows))
			r, err := commitRate(ctx, cfg.SQLiteDir, rows, len(delta), cfg.Duration)
			if err != nil {
				return nil, err
			}
			if r.FileSystem == "tmpfs" || r.FileSystem == "overlayfs" {
				rep.Notes = append(rep.Notes, fmt.Sprintf("%s is on %s: its fsync is not a disk's; pass --sqlite-dir on the server's file system", r.Path, r.FileSystem))
			}
			rep.SQLite = append(rep.SQLite, r)
		}
	}
	return rep, nil
}

// messageSizes encodes a typical delta post, a full post of the mean size
// over 64 agents (the agent closest to it) and a typical answer, as the
// load run would.
func messageSizes(cfg *Config) (s MessageSizes, delta, full, resp []byte, err error) {
	pool := NewPool(cfg.PoolSize, cfg.Seed)
	const n = 64
	fulls := make([][]byte, n)
	total := 0
	for i := range n {
		a, err := newAgent(cfg, pool, i, "")
		if err != nil {
			return s, nil, nil, nil, err
		}
		in := a.inventoryRequest(true)
		in.Software = &protocol.SoftwareInventory{Full: true, Packages: a.materialize(pool), Count: uint32(len(a.sw.pkgs)), Hash: a.sw.hash.String()}
		if fulls[i], err = envelope(protocol.KindInventory, 2, &in); err != nil {
			return s, nil, nil, nil, err
		}
		total += len(fulls[i])
		if i == 0 {
			d := a.inventoryRequest(false) // as most delta posts of the load run
			d.Software = &protocol.SoftwareInventory{Base: 1, Count: uint32(len(a.sw.pkgs)), Hash: a.sw.hash.String()}
			if delta, err = envelope(protocol.KindInventory, 3, &d); err != nil {
				return s, nil, nil, nil, err
			}
		}
	}
	mean := total / n
	full = fulls[0]
	for _, f := range fulls {
		if abs(len(f)-mean) < abs(len(full)-mean) {
			full = f
		}
	}
	r, err := protocol.NewResponse(3, &protocol.InventoryResponse{
		Verdicts: []protocol.ProductVerdict{{Product: "inventory", Verdict: protocol.VerdictLicensed}},
		Software: &protocol.SoftwareAck{Generation: 1, Stored: true}})
	if err != nil {
		return s, nil, nil, nil, err
	}
	if resp, err = protocol.Marshal(r); err != nil {
		return s, nil, nil, nil, err
	}
	return MessageSizes{Delta: len(delta), Full: len(full), Response: len(resp)}, delta, full, resp, nil
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func envelope(kind protocol.Kind, seq uint64, body any) ([]byte, error) {
	raw, err := protocol.Marshal(body)
	if err != nil {
		return nil, err
	}
	return protocol.Marshal(protocol.Request{Major: protocol.Major, Rev: protocol.Revision, Kind: kind, Seq: seq, Body: raw})
}

// echoServer answers every stream, after reading it whole, with a canned
// answer of Tally's size: the transport without the server.
type echoServer struct {
	ln          *quic.EarlyListener
	addr        string
	fingerprint string
	wg          sync.WaitGroup
}

func startEcho(answer []byte) (*echoServer, error) {
	key, err := identity.NewKey()
	if err != nil {
		return nil, err
	}
	cert, err := identity.SelfSigned(key, "tally-load echo")
	if err != nil {
		return nil, err
	}
	// The listener's settings are the Tally listener's (server/listener).
	qc := &quic.Config{
		HandshakeIdleTimeout:           10 * time.Second,
		MaxIdleTimeout:                 60 * time.Second,
		MaxIncomingStreams:             8,
		MaxIncomingUniStreams:          -1,
		InitialStreamReceiveWindow:     64 << 10,
		MaxStreamReceiveWindow:         protocol.MaxRequestSize,
		InitialConnectionReceiveWindow: 128 << 10,
		MaxConnectionReceiveWindow:     2 * protocol.MaxRequestSize,
		Allow0RTT:                      true,
		DisablePathMTUDiscovery:        true,
	}
	ln, err := quic.ListenAddrEarly("127.0.0.1:0", identity.ServerTLS(cert, protocol.ALPN), qc)
	if err != nil {
		return nil, err
	}
	s := &echoServer{ln: ln, addr: ln.Addr().String(), fingerprint: identity.Fingerprint(cert.Leaf)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			conn, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			go func() {
				for {
					st, err := conn.AcceptStream(context.Background())
					if err != nil {
						return
					}
					go func() {
						if _, err := protocol.ReadMessage(st, protocol.MaxRequestSize); err != nil {
							st.CancelRead(0)
						}
						_, _ = st.Write(answer)
						st.Close()
					}()
				}
			}()
		}
	}()
	return s, nil
}

func (s *echoServer) close() {
	s.ln.Close()
	s.wg.Wait()
}

// clientTLS is a fresh client identity pinned to fingerprint; cache adds
// a session cache (resumption and 0-RTT).
func clientTLS(fingerprint string, cache bool) (*tls.Config, error) {
	key, err := identity.NewKey()
	if err != nil {
		return nil, err
	}
	cert, err := identity.SelfSigned(key, "tally-load baseline")
	if err != nil {
		return nil, err
	}
	tc := identity.ClientTLS(cert, fingerprint, protocol.ALPN)
	if cache {
		tc.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	} else {
		tc.ClientSessionCache = nil
	}
	return tc, nil
}

// exchange sends req on a fresh stream of conn and reads the answer.
func exchange(ctx context.Context, conn *quic.Conn, req []byte) error {
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	if _, err := st.Write(req); err != nil {
		st.CancelRead(0)
		return err
	}
	st.Close()
	raw, err := protocol.ReadMessage(st, protocol.MaxResponseSize)
	if err != nil {
		return err
	}
	if len(raw) == 0 {
		return errors.New("empty answer")
	}
	return nil
}

// echoRate measures requests per second of req against the echo server,
// closed loop, with cfg's connections and concurrency.
func echoRate(ctx context.Context, addr, fingerprint string, req []byte, cfg BaselineConfig) (EchoResult, error) {
	res := EchoResult{Bytes: len(req), Connections: cfg.Connections, Concurrency: cfg.Concurrency}
	d, err := newDialer([]string{addr}, cfg.Sockets, 10*time.Second)
	if err != nil {
		return res, err
	}
	defer d.close()
	conns := make([]*quic.Conn, cfg.Connections)
	for i := range conns {
		tc, err := clientTLS(fingerprint, false)
		if err != nil {
			return res, err
		}
		if conns[i], err = d.dial(ctx, i, tc, false); err != nil {
			return res, fmt.Errorf("connect to the echo server: %w", err)
		}
	}
	defer func() {
		for _, c := range conns {
			c.CloseWithError(0, "")
		}
	}()
	var h Histogram
	var errs atomic.Int64
	mctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := conns[w%len(conns)]
			for mctx.Err() == nil {
				t0 := time.Now()
				rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
				err := exchange(rctx, conn, req)
				rcancel()
				if err != nil {
					errs.Add(1)
					continue
				}
				h.Record(time.Since(t0))
			}
		}()
	}
	wg.Wait()
	res.PerSecond = round1(float64(h.Count()) / time.Since(start).Seconds())
	res.Latency, res.Errors = h.Summary(), errs.Load()
	return res, nil
}

// handshakeModes are measured side by side. Go's TLS offers the hybrid
// post-quantum key exchange X25519MLKEM768 by default, and a resumed TLS
// 1.3 handshake still runs a key exchange (psk_dhe_ke): the "-x25519"
// modes offer classic X25519 alone, to show what that exchange costs.
var handshakeModes = []string{"full", "resumed", "0-rtt", "full-x25519", "resumed-x25519"}

// handshakeRate measures connections per second in one mode, with 32
// parallel dialers, each reusing one identity (and its session cache) as a
// reconnecting agent does.
func handshakeRate(ctx context.Context, server, addr, fingerprint, mode string, req []byte, cfg BaselineConfig) HandshakeStats {
	hs := HandshakeStats{Server: server, Mode: mode}
	d, err := newDialer([]string{addr}, cfg.Sockets, 10*time.Second)
	if err != nil {
		hs.Errors++
		return hs
	}
	defer d.close()
	if req == nil {
		req = []byte{} // the Tally server answers an empty request "bad request" without touching its store
	}
	const dialers = 32
	var h Histogram
	var errs, resumed, early atomic.Int64
	mctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var start time.Time
	var wg sync.WaitGroup
	ready := make(chan struct{})
	for w := range dialers {
		cache := !strings.HasPrefix(mode, "full")
		tc, err := clientTLS(fingerprint, cache)
		if err != nil {
			errs.Add(1)
			continue
		}
		if strings.HasSuffix(mode, "-x25519") {
			tc.CurvePreferences = []tls.CurveID{tls.X25519}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			once := func(measured bool) {
				t0 := time.Now()
				cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
				defer ccancel()
				conn, err := d.dial(cctx, w, tc, mode == "0-rtt")
				if err == nil {
					err = exchange(cctx, conn, req)
					if err == nil {
						// 0-RTT is known only once the handshake is done.
						select {
						case <-conn.HandshakeComplete():
						case <-cctx.Done():
						}
					}
					cs := conn.ConnectionState()
					conn.CloseWithError(0, "")
					if measured && err == nil {
						if cs.TLS.DidResume {
							resumed.Add(1)
						}
						if cs.Used0RTT {
							early.Add(1)
						}
					}
				}
				if !measured {
					return
				}
				if err != nil {
					errs.Add(1)
					return
				}
				h.Record(time.Since(t0))
			}
			if cache {
				once(false) // the first connection fetches the session ticket
			}
			<-ready
			for mctx.Err() == nil {
				once(true)
			}
		}()
	}
	start = time.Now()
	close(ready)
	wg.Wait()
	el := time.Since(start).Seconds()
	if n := h.Count(); n > 0 {
		hs.PerSecond = round1(float64(n) / el)
		hs.Resumed = round3(float64(resumed.Load()) / float64(n))
		hs.Used0RTT = round3(float64(early.Load()) / float64(n))
	}
	hs.Latency, hs.Errors = h.Summary(), errs.Load()
	return hs
}

// commitRate measures durable commits per second in a fresh SQLite
// database in dir, in WAL mode with synchronous=FULL as the server's store
// runs, with rows rows of size bytes per commit.
func commitRate(ctx context.Context, dir string, rows, size int, d time.Duration) (CommitResult, error) {
	tmp, err := os.MkdirTemp(dir, "tally-load-sqlite-")
	if err != nil {
		return CommitResult{}, err
	}
	defer os.RemoveAll(tmp)
	file := filepath.Join(tmp, "commits.db")
	res := CommitResult{RowsPerCommit: rows, Path: tmp, FileSystem: fsType(tmp)}
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_busy_timeout", "5000")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite3", "file:"+file+"?"+q.Encode())
	if err != nil {
		return res, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE posts (node TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL, body BLOB, PRIMARY KEY (node, seq))`); err != nil {
		return res, err
	}
	body := make([]byte, size)
	var h Histogram
	seq := 0
	start := time.Now()
	for time.Since(start) < d && ctx.Err() == nil {
		t0 := time.Now()
		tx, err := db.Begin()
		if err != nil {
			return res, err
		}
		for range rows {
			seq++
			if _, err := tx.Exec(`INSERT INTO posts (node, seq, at, body) VALUES (?, ?, ?, ?)`, fmt.Sprintf("node-%d", seq%10000), seq, t0.UnixMilli(), body); err != nil {
				tx.Rollback()
				return res, err
			}
		}
		if err := tx.Commit(); err != nil {
			return res, err
		}
		h.Record(time.Since(t0))
	}
	el := time.Since(start).Seconds()
	res.CommitsPerSec = round1(float64(h.Count()) / el)
	res.RowsPerSec = round1(float64(h.Count()) * float64(rows) / el)
	res.Latency = h.Summary()
	return res, nil
}

// WriteJSON writes the report as indented JSON.
func (r *BaselineReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Print writes the report for people.
func (r *BaselineReport) Print(w io.Writer) {
	fmt.Fprintf(w, "tally-load baseline (%s; %d CPUs, load average %s at the start, %s at the end)\n",
		r.Started.Format(time.RFC3339), r.Machine.CPUs, r.Machine.LoadStart, r.Machine.LoadEnd)
	fmt.Fprintf(w, "message sizes: delta post %d B, full post %d B (mean of 64 agents), answer %d B\n", r.Sizes.Delta, r.Sizes.Full, r.Sizes.Response)
	for _, e := range r.Echo {
		fmt.Fprintf(w, "echo %-5s (%6d B): %9.1f req/s  p50 %.1f  p99 %.1f  max %.1f ms  (%d connections, %d in flight, %d errors)\n",
			e.Message, e.Bytes, e.PerSecond, e.Latency.P50, e.Latency.P99, e.Latency.Max, e.Connections, e.Concurrency, e.Errors)
	}
	for _, c := range r.SQLite {
		fmt.Fprintf(w, "sqlite WAL synchronous=FULL, %3d rows/commit: %8.1f commits/s = %9.1f rows/s  commit p50 %.2f  p99 %.2f ms  (%s, %s)\n",
			c.RowsPerCommit, c.CommitsPerSec, c.RowsPerSec, c.Latency.P50, c.Latency.P99, c.FileSystem, c.Path)
	}
	for _, h := range r.Handshakes {
		fmt.Fprintf(w, "handshakes %-5s %-14s: %8.1f/s  connect+answer p50 %.1f  p99 %.1f ms  resumed %.0f%%  0-RTT %.0f%%  errors %d\n",
			h.Server, h.Mode, h.PerSecond, h.Latency.P50, h.Latency.P99, h.Resumed*100, h.Used0RTT*100, h.Errors)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}
