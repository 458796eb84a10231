package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/servertest"
)

// freeUDPAddr picks a loopback UDP port that nothing listens on, so that a
// server can be stopped and started again at the same address.
func freeUDPAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}

// listenOn is a servertest option: QUIC on addr instead of port 0.
func listenOn(addr string) servertest.Option {
	return func(c *daemon.Config) { c.Listen = addr }
}

// refuseQUIC holds addr and refuses every QUIC handshake on it (it offers
// no protocol the agent speaks). To the agent this is a server it cannot
// reach, as with nothing listening, except that it learns so at once
// instead of after its 10 s dial timeout, which keeps the tests fast.
// stop frees the address.
func refuseQUIC(t *testing.T, addr string) (stop func()) {
	t.Helper()
	key, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := identity.SelfSigned(key, "not a tally server")
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("hold %s: %v", addr, err)
	}
	tr := &quic.Transport{Conn: udp}
	ln, err := tr.Listen(&tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"not-tally"}, MinVersion: tls.VersionTLS13}, nil)
	if err != nil {
		t.Fatalf("hold %s: %v", addr, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			conn.CloseWithError(0, "")
		}
	}()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			ln.Close()
			<-done
			tr.Close()
			udp.Close() // the Transport leaves a socket it was given open
		}
	}
	t.Cleanup(stop)
	return stop
}

// startServerBinaryAt is startServerBinary with QUIC on a chosen address.
func startServerBinaryAt(t *testing.T, bin, data, listen string) *serverProc {
	t.Helper()
	return startServerBinaryWith(t, bin, data, listen)
}

// startServerBinaryWith is startServerBinaryAt with more serve flags.
func startServerBinaryWith(t *testing.T, bin, data, listen string, flags ...string) *serverProc {
	t.Helper()
	os.Remove(filepath.Join(data, datadir.AddressesFile))
	p := &serverProc{data: data, stdout: new(bytes.Buffer), stderr: new(bytes.Buffer), done: make(chan error, 1)}
	args := append([]string{"serve", "--data", data, "--listen", listen, "--admin", "127.0.0.1:0", "--log-format", "json"}, flags...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		a, err := (datadir.Dir{Path: data}).ReadAddresses()
		if err == nil && a.PID == p.cmd.Process.Pid {
			p.addrs = a
			return p
		}
		select {
		case err := <-p.done:
			t.Fatalf("server exited at start: %v\n%s", err, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start: %s", p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// spoolSeqs lists the sequence numbers queued in an agent's spool, from
// the file names.
func spoolSeqs(t *testing.T, agentData string) []uint64 {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(agentData, "spool"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), ".rec")
		if !ok || de.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		n, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			t.Fatalf("spool file %s: %v", de.Name(), err)
		}
		seqs = append(seqs, n)
	}
	slices.Sort(seqs)
	return seqs
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// appliedRow is one request the server applied, from its database.
type appliedRow struct {
	Seq uint64
	At  int64 // milliseconds
}

// appliedByNode reads, from a stopped server's database opened read-only,
// the requests of node in the order the server applied them: by rowid,
// which SQLite assigns increasing on insert (the table is only ever
// appended to, and pruned from below).
func appliedByNode(t *testing.T, serverData, node string) []appliedRow {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(serverData, datadir.DatabaseFile)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT seq, at FROM applied WHERE node_id = ? ORDER BY rowid`, node)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []appliedRow
	for rows.Next() {
		var r appliedRow
		if err := rows.Scan(&r.Seq, &r.At); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
