package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tallyhq/tally/server/adminapi"
)

// The admin API's latency is measured from a process of its own when
// Config.ProbeCommand names one. A probe inside the generator measures the
// generator too: with thousands of simulated agents saturating the host,
// its goroutine waits behind theirs, and its latencies are many times
// those a separate process sees in the same run (docs/PERFORMANCE.md).
// An administrator's browser or CLI is such a separate process.
//
// The prober reads one admin API path per line on its standard input,
// GETs it, and writes one line per path: the milliseconds it took, then
// "ok" or "err" and the error. It stops at the end of its input.

// Environment variables that give the prober its admin API, so that the
// token is not on a command line.
const (
	ProbeEnvURL   = "TALLY_LOAD_ADMIN_URL"
	ProbeEnvToken = "TALLY_LOAD_ADMIN_TOKEN"
)

// maxProbePath bounds a path line the prober accepts.
const maxProbePath = 1024

// ServeProbe is the prober's loop: paths from in, results to out, against
// the admin API at adminURL. It returns nil at the end of in.
func ServeProbe(ctx context.Context, in io.Reader, out io.Writer, adminURL, token string) error {
	admin, err := adminapi.NewClient(adminURL, token)
	if err != nil {
		return fmt.Errorf("admin probe: %w", err)
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 256), maxProbePath)
	w := bufio.NewWriter(out)
	for sc.Scan() {
		path := sc.Text()
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("admin probe: %q is not an admin API path", path)
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		start := time.Now()
		err := admin.Do(pctx, "GET", path, nil, nil)
		ms := float64(time.Since(start).Microseconds()) / 1000
		cancel()
		if err != nil {
			fmt.Fprintf(w, "%.3f err %s\n", ms, strings.ReplaceAll(err.Error(), "\n", " "))
		} else {
			fmt.Fprintf(w, "%.3f ok\n", ms)
		}
		if err := w.Flush(); err != nil {
			return fmt.Errorf("admin probe: %w", err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("admin probe: %w", err)
	}
	return ctx.Err()
}

// prober runs one probe at a time: in this process, or through a prober
// process started once for the run.
type prober interface {
	probe(ctx context.Context, path string) (time.Duration, error)
	close()
}

type inProcessProber struct{ admin *adminapi.Client }

func (p inProcessProber) probe(ctx context.Context, path string) (time.Duration, error) {
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	err := p.admin.Do(pctx, "GET", path, nil, nil)
	return time.Since(start), err
}

func (inProcessProber) close() {}

// processProber talks to a prober process over its standard input and
// output.
type processProber struct {
	mu   sync.Mutex
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	dead error
}

// startProber starts command (the program and its arguments) as the
// prober, with the admin API in its environment.
func startProber(command []string, adminURL, token string) (*processProber, error) {
	if len(command) == 0 {
		return nil, errors.New("admin probe: no command")
	}
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Env = append(os.Environ(), ProbeEnvURL+"="+adminURL, ProbeEnvToken+"="+token)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("admin probe: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("admin probe: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("admin probe: start %s: %w", command[0], err)
	}
	return &processProber{cmd: cmd, in: in, out: bufio.NewReader(out)}, nil
}

func (p *processProber) probe(ctx context.Context, path string) (time.Duration, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead != nil {
		return 0, p.dead
	}
	if _, err := io.WriteString(p.in, path+"\n"); err != nil {
		p.dead = fmt.Errorf("admin probe process: %w", err)
		return 0, p.dead
	}
	line, err := p.out.ReadString('\n')
	if err != nil {
		p.dead = fmt.Errorf("admin probe process: %w", err)
		return 0, p.dead
	}
	msText, rest, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
	ms, perr := strconv.ParseFloat(msText, 64)
	if perr != nil || ms < 0 {
		p.dead = fmt.Errorf("admin probe process: malformed answer %q", line)
		return 0, p.dead
	}
	d := time.Duration(ms * float64(time.Millisecond))
	if rest != "ok" {
		return d, errors.New(strings.TrimPrefix(rest, "err "))
	}
	return d, nil
}

func (p *processProber) close() {
	p.in.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}
