package integration

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/loadtest/loadgen"
	"github.com/tallyhq/tally/server/servertest"
)

// probeChildEnv makes this test binary, started again, tally-load's admin
// prober (see TestMain).
const probeChildEnv = "TALLY_TEST_ADMIN_PROBE_CHILD"

// The scenarios measure the admin API's latency from a process of their
// own: the run's report says so, and every probe got its answer.
func TestLoadGeneratorProbesFromAProcessOfItsOwn(t *testing.T) {
	if testing.Short() {
		t.Skip("load test; skipped with -short")
	}
	t.Setenv(probeChildEnv, "1") // the prober process, this binary started again, inherits it
	srv := servertest.New(t)
	cfg := loadgen.Config{Target: loadTarget(t, srv), Scenario: loadgen.Steady, Agents: 20, PackagesMin: 20, PackagesMax: 40,
		PoolSize: 100, Duration: 1500 * time.Millisecond, Interval: 200 * time.Millisecond, Concurrency: 8,
		AdminProbe: 50 * time.Millisecond, ProbeCommand: []string{os.Args[0]}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := loadgen.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "probed from a process of its own") {
		t.Fatalf("the report does not say the prober ran apart: %q", rep.Notes)
	}
	steady := rep.Phase("steady")
	if steady == nil || steady.Admin == nil || steady.Admin.Count < 5 {
		t.Fatalf("steady phase: admin probes %+v", steady)
	}
	if steady.AdminErrors != 0 {
		t.Fatalf("%d admin probes failed", steady.AdminErrors)
	}
	if !rep.OK() {
		t.Fatalf("checks: %+v", rep.Checks)
	}
}

// A prober that cannot start leaves the probes inside the generator, and
// the report says so.
func TestLoadGeneratorProbesInsideWhenTheProberCannotStart(t *testing.T) {
	if testing.Short() {
		t.Skip("load test; skipped with -short")
	}
	srv := servertest.New(t)
	cfg := loadgen.Config{Target: loadTarget(t, srv), Scenario: loadgen.Enroll, Agents: 5, Concurrency: 5,
		AdminProbe: 50 * time.Millisecond, ProbeCommand: []string{t.TempDir() + "/no-such-program"}}
	rep, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "probed from inside the generator") {
		t.Fatalf("the report does not say where the admin API was probed from: %q", rep.Notes)
	}
}

// The prober answers each path with its latency; what is not a path is
// refused with a clear error, and a refused or unknown path is an "err"
// line, not the end of the prober.
func TestServeProbe(t *testing.T) {
	srv := servertest.New(t)
	tg := loadTarget(t, srv)
	ctx := context.Background()

	var out bytes.Buffer
	in := strings.NewReader("/healthz\n/api/v1/computers/999999\n/healthz\n")
	if err := loadgen.ServeProbe(ctx, in, &out, tg.AdminURL, tg.Token); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], " ok") || !strings.Contains(lines[1], " err ") || !strings.HasSuffix(lines[2], " ok") {
		t.Fatalf("answers:\n%s", out.String())
	}

	out.Reset()
	if err := loadgen.ServeProbe(ctx, strings.NewReader("/healthz\n/api/v1/computers/1"), &out, tg.AdminURL, "wrong-token"); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 2 || !strings.Contains(lines[1], " err ") {
		t.Fatalf("a wrong token: answers\n%s", out.String())
	}

	for name, input := range map[string]string{
		"not a path": "healthz\n",
		"a URL":      "http://example.invalid/healthz\n",
		"oversized":  "/" + strings.Repeat("a", 4096) + "\n",
	} {
		out.Reset()
		if err := loadgen.ServeProbe(ctx, strings.NewReader(input), &out, tg.AdminURL, tg.Token); err == nil {
			t.Errorf("%s: no error (answers %q)", name, out.String())
		}
		if out.Len() != 0 {
			t.Errorf("%s: probed anyway: %q", name, out.String())
		}
	}
	if err := loadgen.ServeProbe(ctx, strings.NewReader(""), &out, "not a url\x7f", ""); err == nil {
		t.Error("a malformed admin URL was taken")
	}
}
