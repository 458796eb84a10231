package state

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/protocol"
)

func openDir(t *testing.T) Dir {
	t.Helper()
	d, err := Open(filepath.Join(t.TempDir(), "agent"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// allocate takes a sequence number as the agent does. It may run on any
// goroutine: a failure is reported with t.Error and returns 0.
func allocate(t testing.TB, d Dir) uint64 {
	var seq uint64
	if err := d.WithLock(func() error {
		var err error
		seq, err = d.NextSeq()
		return err
	}); err != nil {
		t.Error(err)
		return 0
	}
	return seq
}

// A new counter starts at the current time in milliseconds, so that a lost
// counter file can never make new posts look like repeats of old ones;
// after that, numbers are dense and survive reopening.
func TestNextSeqStartsAtTheClockAndSurvivesReopening(t *testing.T) {
	d := openDir(t)
	before := uint64(time.Now().UnixMilli())
	first := allocate(t, d)
	if first < before || first > uint64(time.Now().UnixMilli()) {
		t.Fatalf("first seq %d, want the clock in milliseconds (%d)", first, before)
	}
	for want := first + 1; want <= first+2; want++ {
		if got := allocate(t, d); got != want {
			t.Fatalf("seq %d, want %d", got, want)
		}
	}
	d2, err := Open(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	if got := allocate(t, d2); got != first+3 {
		t.Fatalf("after reopening: %d, want %d", got, first+3)
	}
	// The counter file lost: numbering jumps forward, never back, for an
	// agent whose numbers have not run ahead of the clock (NextSeq: a few
	// dozen a day). This test took four in under a millisecond, so it
	// waits until the clock has passed them.
	for uint64(time.Now().UnixMilli()) <= first+3 {
		time.Sleep(time.Millisecond)
	}
	if err := os.Remove(d.File(SeqFile)); err != nil {
		t.Fatal(err)
	}
	if got := allocate(t, d2); got <= first+3 {
		t.Fatalf("after losing the counter: %d, want more than %d", got, first+3)
	}
}

func TestNextSeqRefusesADamagedCounter(t *testing.T) {
	d := openDir(t)
	if err := os.WriteFile(d.File(SeqFile), []byte("12x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := d.WithLock(func() error { _, err := d.NextSeq(); return err })
	if err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("damaged counter: %v; want an error, never a restart from 1 (the server would take new posts for repeats)", err)
	}
}

// Goroutines of one process, each taking the folder lock as separate
// processes do: every number handed out once, each caller's numbers
// strictly increasing.
func TestSeqAllocationConcurrentGoroutines(t *testing.T) {
	d := openDir(t)
	const workers, each = 8, 25
	got := make([][]uint64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				got[w] = append(got[w], allocate(t, d))
			}
		}()
	}
	wg.Wait()
	checkAllocations(t, got, workers*each)
}

// The same across processes: this test binary started again as several
// allocators on one data folder.
func TestSeqAllocationConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	d := openDir(t)
	const procs, each = 4, 40
	got := make([][]uint64, procs)
	var wg sync.WaitGroup
	errs := make(chan error, procs)
	for p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAllocate$")
			cmd.Env = append(os.Environ(), "TALLY_STATE_HELPER_DIR="+d.Path, "TALLY_STATE_HELPER_N="+strconv.Itoa(each))
			var out, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &stderr
			if err := cmd.Run(); err != nil {
				errs <- fmt.Errorf("allocator %d: %v\n%s%s", p, err, out.String(), stderr.String())
				return
			}
			sc := bufio.NewScanner(&out)
			for sc.Scan() {
				if s, ok := strings.CutPrefix(sc.Text(), "seq "); ok {
					n, err := strconv.ParseUint(s, 10, 64)
					if err != nil {
						errs <- err
						return
					}
					got[p] = append(got[p], n)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkAllocations(t, got, procs*each)
}

// TestHelperAllocate is not a test: TestSeqAllocationConcurrentProcesses
// runs it in child processes.
func TestHelperAllocate(t *testing.T) {
	path := os.Getenv("TALLY_STATE_HELPER_DIR")
	if path == "" {
		t.Skip("helper process only")
	}
	n, _ := strconv.Atoi(os.Getenv("TALLY_STATE_HELPER_N"))
	d := Dir{Path: path}
	for range n {
		fmt.Printf("seq %d\n", allocate(t, d))
	}
}

func checkAllocations(t *testing.T, got [][]uint64, total int) {
	t.Helper()
	var all []uint64
	for i, g := range got {
		for j := 1; j < len(g); j++ {
			if g[j] <= g[j-1] {
				t.Fatalf("allocator %d got %d after %d", i, g[j], g[j-1])
			}
		}
		all = append(all, g...)
	}
	slices.Sort(all)
	if len(all) != total {
		t.Fatalf("%d numbers handed out, want %d", len(all), total)
	}
	for i, s := range all {
		if s != all[0]+uint64(i) {
			t.Fatalf("numbers handed out %v…: want %d consecutive numbers, each once", all[:min(i+3, len(all))], total)
		}
	}
}

func TestEnrollment(t *testing.T) {
	d := openDir(t)
	if _, err := d.Enrollment(); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("fresh folder: %v, want ErrNotEnrolled", err)
	}
	e := Enrollment{Server: "tally.example.com:4433", Fingerprint: strings.Repeat("ab", 32), NodeID: "n", ComputerID: 7,
		EnrolledAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), MachineID: "golden"}
	if err := d.SaveEnrollment(e); err != nil {
		t.Fatal(err)
	}
	got, err := d.Enrollment()
	if err != nil || !reflect.DeepEqual(got, e) {
		t.Fatalf("enrollment %+v %v, want %+v", got, err, e)
	}
	if err := os.WriteFile(d.File(EnrollmentFile), []byte("{half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Enrollment(); err == nil || errors.Is(err, ErrNotEnrolled) || !strings.Contains(err.Error(), "enroll again") {
		t.Fatalf("damaged enrollment: %v", err)
	}
}

func TestKeyAndInstanceIDAreMadeOnceAndKept(t *testing.T) {
	d := openDir(t)
	k1, created, err := d.Key()
	if err != nil || !created {
		t.Fatalf("first key: created %v, %v", created, err)
	}
	k2, created, err := d.Key()
	if err != nil || created || !k1.Equal(k2) {
		t.Fatalf("second key: created %v, same %v, %v", created, k1.Equal(k2), err)
	}
	if runtime.GOOS != "windows" {
		if fi, err := os.Stat(d.File(KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("key file mode %v %v, want 0600", fi.Mode().Perm(), err)
		}
		if fi, _ := os.Stat(d.Path); fi.Mode().Perm() != 0o700 {
			t.Fatalf("data folder mode %v, want 0700", fi.Mode().Perm())
		}
	}
	id1, err := d.InstanceID()
	if err != nil || len(id1) != 36 || id1[14] != '4' {
		t.Fatalf("instance ID %q %v, want a version-4 UUID", id1, err)
	}
	id2, _ := d.InstanceID()
	if id1 != id2 {
		t.Fatalf("instance ID changed: %s then %s", id1, id2)
	}
	if other, _ := openDir(t).InstanceID(); other == id1 {
		t.Fatal("two data folders share an instance ID")
	}
}

func TestStatus(t *testing.T) {
	d := openDir(t)
	if st, err := d.LoadStatus(); err != nil || st.Transport != "" {
		t.Fatalf("no status yet: %+v %v", st, err)
	}
	st := Status{Transport: "quic", LastError: "x", Refused: "revoked",
		Products: map[string]ProductStatus{"patch": {Verdict: protocol.Verdict(1), Reason: "r", At: time.Unix(5, 0).UTC()}}}
	if err := d.SaveStatus(st); err != nil {
		t.Fatal(err)
	}
	got, err := d.LoadStatus()
	if err != nil || got.Transport != "quic" || got.Refused != "revoked" || got.Products["patch"].Reason != "r" {
		t.Fatalf("status %+v %v", got, err)
	}
	if err := os.WriteFile(d.File(StatusFile), []byte("\x00junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := d.LoadStatus(); err != nil || got.Transport != "" {
		t.Fatalf("a damaged status is only history and starts over: %+v %v", got, err)
	}
}

func TestOpenNeedsAPath(t *testing.T) {
	if _, err := Open(""); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
	d, err := Open(filepath.Join(t.TempDir(), "a", "b"))
	if err != nil || !filepath.IsAbs(d.Path) {
		t.Fatalf("nested folder: %+v %v", d, err)
	}
}

// An enrollment written before replicas (one address, no "servers") reads
// as a list of one; one with several keeps the first in "server", so that
// older agents read it too, and SetAddresses moves it to new addresses.
func TestEnrollmentAddresses(t *testing.T) {
	d := openDir(t)
	old := `{"server": "a.example.com:7443", "fingerprint": "` + strings.Repeat("ab", 32) + `", "node_id": "n", "computer_id": 7}`
	if err := os.WriteFile(d.File(EnrollmentFile), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := d.Enrollment()
	if err != nil || !reflect.DeepEqual(e.Addresses(), []string{"a.example.com:7443"}) || e.AddressList() != "a.example.com:7443" {
		t.Fatalf("old record: %q %v", e.Addresses(), err)
	}
	two := []string{"a.example.com:7443", "b.example.com:7443"}
	prev, changed, err := d.SetAddresses(two)
	if err != nil || !changed || !reflect.DeepEqual(prev, []string{"a.example.com:7443"}) {
		t.Fatalf("SetAddresses: %q %v %v", prev, changed, err)
	}
	if e, err = d.Enrollment(); err != nil || e.Server != two[0] || !reflect.DeepEqual(e.Addresses(), two) || e.NodeID != "n" || e.ComputerID != 7 {
		t.Fatalf("after SetAddresses: %+v %v", e, err)
	}
	if _, changed, err := d.SetAddresses(two); err != nil || changed {
		t.Fatalf("same addresses again: changed %v, %v", changed, err)
	}
	if _, changed, err := d.SetAddresses(two[1:]); err != nil || !changed {
		t.Fatalf("back to one: %v %v", changed, err)
	}
	b, err := os.ReadFile(d.File(EnrollmentFile))
	if err != nil || strings.Contains(string(b), `"servers"`) {
		t.Fatalf("a record of one address lists no servers: %s %v", b, err)
	}
}
