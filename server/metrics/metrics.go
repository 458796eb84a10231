// Package metrics exposes the server's Prometheus metrics on /metrics:
// requests by kind and status with their latency, verdicts by product, seats
// held and granted per product, the backlog agents report from their
// spools, and the store's commit time and batch size. Metrics live in a
// registry passed around, never in package globals.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tallyhq/tally/protocol"
)

// SeatCount is one product's seats, for the gauges read at scrape time.
type SeatCount struct {
	Product string
	Held    int
	Granted int
}

// Source is what the scrape-time gauges read from the store.
type Source interface {
	SeatCounts(ctx context.Context) ([]SeatCount, error)
	// Backlog returns the sum and the maximum of the spool depths the
	// agents reported in their latest posts.
	Backlog(ctx context.Context) (sum, max int64, err error)
}

// Metrics holds the server's collectors.
type Metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	verdicts  *prometheus.CounterVec
	bytesIn   prometheus.Counter
	commit    prometheus.Histogram
	batch     prometheus.Histogram
	shed      prometheus.Counter
	sourceSet bool
}

// New builds the collectors in a fresh registry.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tally_requests_total", Help: "Agent requests answered, by kind and status.",
	}, []string{"kind", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "tally_request_duration_seconds", Help: "Time from a decoded request to its answer, by kind (includes the durable commit).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"kind"})
	m.verdicts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tally_verdicts_total", Help: "Verdicts given, by product and verdict.",
	}, []string{"product", "verdict"})
	m.bytesIn = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tally_request_bytes_total", Help: "Bytes of agent requests read (CBOR envelopes).",
	})
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "tally_db_commit_seconds", Help: "Duration of each durable commit of the store's writer (one batch).",
		Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1},
	})
	m.batch = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "tally_db_commit_batch_size", Help: "Requests committed together in one durable commit (group commit).",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
	})
	m.shed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tally_requests_shed_total", Help: "Requests answered busy with a retry-after because too many were in flight.",
	})
	m.reg.MustRegister(m.requests, m.latency, m.verdicts, m.bytesIn, m.commit, m.batch, m.shed,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Request records one answered request.
func (m *Metrics) Request(kind protocol.Kind, status protocol.Status, d time.Duration, bytes int) {
	m.requests.WithLabelValues(kind.String(), status.String()).Inc()
	m.latency.WithLabelValues(kind.String()).Observe(d.Seconds())
	m.bytesIn.Add(float64(bytes))
	if status == protocol.StatusBusy {
		m.shed.Inc()
	}
}

// Verdicts records the verdicts of one committed request.
func (m *Metrics) Verdicts(vs []protocol.ProductVerdict) {
	for _, v := range vs {
		m.verdicts.WithLabelValues(v.Product, v.Verdict.String()).Inc()
	}
}

// Commit records one durable commit of the store's writer.
func (m *Metrics) Commit(d time.Duration, jobs int) {
	m.commit.Observe(d.Seconds())
	m.batch.Observe(float64(jobs))
}

// Watch adds the gauges read from the store at each scrape.
func (m *Metrics) Watch(src Source) {
	if m.sourceSet {
		return
	}
	m.sourceSet = true
	m.reg.MustRegister(&seatCollector{src: src,
		held:    prometheus.NewDesc("tally_seats_held", "Seats held now, by product.", []string{"product"}, nil),
		granted: prometheus.NewDesc("tally_seats_granted", "Seats granted by licenses valid now, by product.", []string{"product"}, nil),
		backlog: prometheus.NewDesc("tally_agent_spool_backlog", "Posts waiting in agents' spools, as the agents last reported (sum over computers).", nil, nil),
		maxLog:  prometheus.NewDesc("tally_agent_spool_backlog_max", "The largest spool backlog an agent last reported.", nil, nil),
	})
}

// WatchDisk exposes the free and total bytes of the file system holding
// the data folder, read at each scrape (nothing when f fails).
func (m *Metrics) WatchDisk(f func() (free, total uint64, err error)) {
	m.reg.MustRegister(&diskCollector{f: f,
		free:  prometheus.NewDesc("tally_data_disk_free_bytes", "Bytes free on the file system holding the data folder (for the server's user): under about 40 MB the database can no longer write.", nil, nil),
		total: prometheus.NewDesc("tally_data_disk_size_bytes", "Size of the file system holding the data folder.", nil, nil),
	})
}

type diskCollector struct {
	f           func() (free, total uint64, err error)
	free, total *prometheus.Desc
}

func (c *diskCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.free
	ch <- c.total
}

func (c *diskCollector) Collect(ch chan<- prometheus.Metric) {
	free, total, err := c.f()
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.free, prometheus.GaugeValue, float64(free))
	ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(total))
}

// CountRefusedHandshakes exposes the listeners' count of connections
// turned away because too many handshakes were in progress.
func (m *Metrics) CountRefusedHandshakes(f func() int64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "tally_handshakes_refused_total", Help: "Connections turned away because too many handshakes were in progress, in all or from one address (load shedding): QUIC ones refused at once, TCP ones closed at once (one address) or after waiting the start timeout.",
	}, func() float64 { return float64(f()) }))
}

// CountRetries exposes the QUIC listener's count of Retry packets asked
// for.
func (m *Metrics) CountRetries(f func() int64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "tally_quic_retries_total", Help: "QUIC connection attempts answered with a Retry (address validation) because handshakes were queuing up or their address had its share.",
	}, func() float64 { return float64(f()) }))
}

// CountTurnedAway exposes the TCP listener's count of connections closed
// by its connection limits.
func (m *Metrics) CountTurnedAway(f func() int64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "tally_tcp_connections_turned_away_total", Help: "TCP connections closed by the connection limits: over --max-tcp-conns or --max-conns-per-addr, or shed (the oldest yet to send a request) to make room.",
	}, func() float64 { return float64(f()) }))
}

// CountHandshakes exposes the QUIC listener's count of completed
// handshakes, full and resumed.
func (m *Metrics) CountHandshakes(f func() (full, resumed int64)) {
	m.reg.MustRegister(&handshakeCollector{f: f, desc: prometheus.NewDesc("tally_quic_handshakes_total",
		"QUIC handshakes completed, by session: full, or resumed from a TLS session ticket (with or without 0-RTT data).", []string{"session"}, nil)})
}

type handshakeCollector struct {
	f    func() (full, resumed int64)
	desc *prometheus.Desc
}

func (c *handshakeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *handshakeCollector) Collect(ch chan<- prometheus.Metric) {
	full, resumed := c.f()
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(full), "full")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(resumed), "resumed")
}

// Handler serves the metrics in Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

type seatCollector struct {
	src                            Source
	held, granted, backlog, maxLog *prometheus.Desc
}

func (c *seatCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.held
	ch <- c.granted
	ch <- c.backlog
	ch <- c.maxLog
}

func (c *seatCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if counts, err := c.src.SeatCounts(ctx); err == nil {
		for _, s := range counts {
			ch <- prometheus.MustNewConstMetric(c.held, prometheus.GaugeValue, float64(s.Held), s.Product)
			ch <- prometheus.MustNewConstMetric(c.granted, prometheus.GaugeValue, float64(s.Granted), s.Product)
		}
	}
	if sum, max, err := c.src.Backlog(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.backlog, prometheus.GaugeValue, float64(sum))
		ch <- prometheus.MustNewConstMetric(c.maxLog, prometheus.GaugeValue, float64(max))
	}
}
