package spool_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/agent/spool"
	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/protocol"
)

// name is a record's file name: the sequence number, zero-padded to 20
// digits, so that names sort in sequence order. Tests spell it out on
// purpose: it is the on-disk format.
func name(seq uint64) string { return fmt.Sprintf("%020d.rec", seq) }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// open opens a spool in a fresh folder; its clock stands at t0 unless o
// says otherwise, so that the records made here are young.
func open(t *testing.T, o spool.Options) (*spool.Spool, string) {
	t.Helper()
	if o.Clock == nil {
		o.Clock = clock.NewManual(t0)
	}
	dir := filepath.Join(t.TempDir(), "spool")
	sp, err := spool.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return sp, dir
}

func snapshot(seq uint64, key string, body string) spool.Record {
	return spool.Record{Seq: seq, Kind: protocol.KindInventory, Class: spool.Snapshot, Key: key, Created: t0, Body: []byte(body)}
}

func event(seq uint64, body string) spool.Record {
	return spool.Record{Seq: seq, Kind: protocol.KindInventory, Class: spool.Event, Key: "e", Created: t0, Body: []byte(body)}
}

func put(t *testing.T, sp *spool.Spool, recs ...spool.Record) {
	t.Helper()
	for _, r := range recs {
		if err := sp.Put(r); err != nil {
			t.Fatalf("put %d: %v", r.Seq, err)
		}
	}
}

func pendingSeqs(t *testing.T, sp *spool.Spool) ([]uint64, []spool.Problem) {
	t.Helper()
	recs, problems, err := sp.Pending()
	if err != nil {
		t.Fatal(err)
	}
	seqs := []uint64{}
	for _, r := range recs {
		seqs = append(seqs, r.Seq)
	}
	return seqs, problems
}

func TestPendingInSequenceOrderWhateverThePutOrder(t *testing.T) {
	sp, _ := open(t, spool.Options{})
	for _, seq := range []uint64{5, 1, 3, 10, 2, 1 << 40} {
		put(t, sp, snapshot(seq, "inventory", fmt.Sprintf("body of %d", seq)))
	}
	recs, problems, err := sp.Pending()
	if err != nil || len(problems) != 0 {
		t.Fatalf("pending: %v %v", problems, err)
	}
	var got []uint64
	for _, r := range recs {
		got = append(got, r.Seq)
		want := snapshot(r.Seq, "inventory", fmt.Sprintf("body of %d", r.Seq))
		if r.Kind != want.Kind || r.Class != want.Class || r.Key != want.Key || !r.Created.Equal(want.Created) || !bytes.Equal(r.Body, want.Body) {
			t.Errorf("record %d came back as %+v, want %+v", r.Seq, r, want)
		}
	}
	if want := []uint64{1, 2, 3, 5, 10, 1 << 40}; !slices.Equal(got, want) {
		t.Fatalf("pending order %v, want %v", got, want)
	}
}

func TestPutRefusesWhatCannotBeSent(t *testing.T) {
	sp, dir := open(t, spool.Options{})
	cases := map[string]spool.Record{
		"no sequence number": snapshot(0, "k", "b"),
		"body too large":     {Seq: 1, Class: spool.Event, Body: make([]byte, protocol.MaxRequestSize+1)},
		"key too long":       {Seq: 2, Class: spool.Snapshot, Key: strings.Repeat("k", 1025)},
		"no class":           {Seq: 3, Body: []byte("x")},
	}
	for what, r := range cases {
		if err := sp.Put(r); err == nil {
			t.Errorf("%s: Put accepted it", what)
		}
	}
	if err := sp.Put(cases["body too large"]); !errors.Is(err, spool.ErrTooLarge) {
		t.Errorf("body too large: err = %v, want ErrTooLarge", err)
	}
	if des, _ := os.ReadDir(dir); len(des) != 0 {
		t.Fatalf("refused records left files: %v", des)
	}
}

// The sequence counter going back must not overwrite a queued post.
func TestPutRefusesASequenceNumberStillQueued(t *testing.T) {
	sp, _ := open(t, spool.Options{})
	put(t, sp, snapshot(7, "k", "first"))
	if err := sp.Put(snapshot(7, "k", "second")); !errors.Is(err, spool.ErrExists) {
		t.Fatalf("second put of 7: err = %v, want ErrExists", err)
	}
	recs, _, _ := sp.Pending()
	if len(recs) != 1 || string(recs[0].Body) != "first" {
		t.Fatalf("pending %+v, want the first record of 7", recs)
	}
}

func TestPutStampsCreatedWithTheClock(t *testing.T) {
	sp, _ := open(t, spool.Options{Clock: clock.NewManual(t0)})
	put(t, sp, spool.Record{Seq: 1, Class: spool.Event})
	recs, _, _ := sp.Pending()
	if len(recs) != 1 || !recs[0].Created.Equal(t0) {
		t.Fatalf("created %v, want %v", recs[0].Created, t0)
	}
}

func TestRemove(t *testing.T) {
	sp, _ := open(t, spool.Options{})
	put(t, sp, event(1, "a"), event(2, "b"), event(3, "c"))
	if err := sp.Remove(2); err != nil {
		t.Fatal(err)
	}
	if err := sp.Remove(2); err != nil {
		t.Fatalf("removing a record that is gone: %v", err)
	}
	if err := sp.Remove(99); err != nil {
		t.Fatalf("removing a record never queued: %v", err)
	}
	if got, _ := pendingSeqs(t, sp); !slices.Equal(got, []uint64{1, 3}) {
		t.Fatalf("pending %v, want [1 3]", got)
	}
}

func encode(t *testing.T, r spool.Record) []byte {
	t.Helper()
	b, err := spool.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A record damaged on disk (power loss, a bad sector, a person) is moved
// into bad/ and reported; the intact records around it are still returned.
func TestDamagedRecordsAreSetAsideAndReported(t *testing.T) {
	good := encode(t, snapshot(2, "inventory", "the body of record two, long enough to be cut"))
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		what   string
		file   string
		data   []byte
		reason string
	}{
		{"truncated mid-record", name(2), good[:len(good)/2], "truncated"},
		{"truncated inside the header", name(2), good[:10], "truncated"},
		{"zero-length", name(2), nil, "truncated"},
		{"flipped byte in the body", name(2), edit(func(b []byte) []byte { b[len(b)-10] ^= 0x01; return b }), "checksum"},
		{"flipped byte in the sequence number", name(2), edit(func(b []byte) []byte { b[15] ^= 0x01; return b }), "checksum"},
		{"flipped checksum", name(2), edit(func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }), "checksum"},
		{"bad magic", name(2), edit(func(b []byte) []byte { b[0] = 'X'; return b }), "bad magic"},
		{"unknown version", name(2), edit(func(b []byte) []byte { b[4] = 9; return b }), "version"},
		{"unknown class", name(2), edit(func(b []byte) []byte { b[5] = 7; return b }), "class"},
		{"padded", name(2), append(append([]byte(nil), good...), 0), "padded"},
		{"body length past the limit", name(2), edit(func(b []byte) []byte { b[26] = 0xff; return b }), "exceeds the limit"},
		{"file name is another sequence number", name(5), good, "does not match"},
		{"file name is not a number", "x2.rec", good, "does not match"},
	}
	for _, c := range cases {
		t.Run(c.what, func(t *testing.T) {
			sp, dir := open(t, spool.Options{})
			put(t, sp, snapshot(1, "inventory", "one"), event(3, "three"))
			if err := os.WriteFile(filepath.Join(dir, c.file), c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			seqs, problems := pendingSeqs(t, sp)
			if !slices.Equal(seqs, []uint64{1, 3}) {
				t.Errorf("pending %v, want the intact [1 3]", seqs)
			}
			if len(problems) != 1 || problems[0].File != c.file || !strings.Contains(problems[0].Reason, c.reason) {
				t.Fatalf("problems %v, want one for %s saying %q", problems, c.file, c.reason)
			}
			if _, err := os.Stat(filepath.Join(dir, c.file)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("damaged record still in the spool: %v", err)
			}
			moved, err := os.ReadFile(filepath.Join(dir, "bad", c.file))
			if err != nil || !bytes.Equal(moved, c.data) {
				t.Errorf("damaged record not moved intact into bad/: %v", err)
			}
			st, err := sp.Stats()
			if err != nil || st.Records != 2 || st.Damaged != 1 {
				t.Errorf("stats %+v %v, want 2 records and 1 damaged", st, err)
			}
			// Reported once: the next look finds nothing new.
			if seqs, problems := pendingSeqs(t, sp); len(problems) != 0 || len(seqs) != 2 {
				t.Errorf("second look: %v %v", seqs, problems)
			}
		})
	}
}

// A Put made after a record was damaged must not hide the damage: the
// next Pending still reports it (a sender learns of it, and says so).
func TestPutLeavesDamageForPendingToReport(t *testing.T) {
	sp, dir := open(t, spool.Options{MaxBytes: 1})
	put(t, sp, snapshot(1, "inventory", "one"), snapshot(2, "inventory", "two"))
	b := encode(t, snapshot(3, "inventory", "three"))
	if err := os.WriteFile(filepath.Join(dir, name(3)), b[:len(b)-3], 0o600); err != nil {
		t.Fatal(err)
	}
	put(t, sp, snapshot(4, "inventory", "four")) // over the limit: drops what it may
	seqs, problems := pendingSeqs(t, sp)
	if !slices.Equal(seqs, []uint64{4}) {
		t.Errorf("pending %v, want [4]", seqs)
	}
	if len(problems) != 1 || problems[0].File != name(3) {
		t.Fatalf("problems %v, want the truncated record 3", problems)
	}
}

func TestSetAsideNeverOverwritesAnEarlierBadRecord(t *testing.T) {
	sp, dir := open(t, spool.Options{})
	for i, junk := range []string{"first junk", "second junk"} {
		if err := os.WriteFile(filepath.Join(dir, name(4)), []byte(junk), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, problems := pendingSeqs(t, sp); len(problems) != 1 {
			t.Fatalf("round %d: problems %v", i, problems)
		}
	}
	des, err := os.ReadDir(filepath.Join(dir, "bad"))
	if err != nil || len(des) != 2 {
		t.Fatalf("bad/ holds %v (%v), want both damaged files", des, err)
	}
}

func TestForeignAndTemporaryFilesAreLeftAloneUntilStale(t *testing.T) {
	sp, dir := open(t, spool.Options{})
	put(t, sp, event(1, "x"))
	fresh := filepath.Join(dir, "."+name(2)+".tmp-123")
	stale := filepath.Join(dir, "."+name(3)+".tmp-456")
	foreign := filepath.Join(dir, "README")
	for _, p := range []string{fresh, stale, foreign} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.rec"), 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	seqs, problems := pendingSeqs(t, sp)
	if !slices.Equal(seqs, []uint64{1}) || len(problems) != 0 {
		t.Fatalf("pending %v, problems %v", seqs, problems)
	}
	for p, want := range map[string]bool{fresh: true, stale: false, foreign: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
	if st, _ := sp.Stats(); st.Records != 1 {
		t.Errorf("stats count %d records, want 1", st.Records)
	}
}

// Over its size limit, the spool drops superseded snapshots oldest first;
// never an event, never the newest snapshot of a key, even if it stays
// over the limit.
func TestSizeLimitDropsSupersededSnapshotsOldestFirst(t *testing.T) {
	body := strings.Repeat("x", 1000)
	size := int64(len(encode(t, snapshot(1, "a", body))))
	sp, _ := open(t, spool.Options{MaxBytes: 4 * size})
	steps := []struct {
		r    spool.Record
		want []uint64
	}{
		{snapshot(1, "a", body), []uint64{1}},
		{event(2, body), []uint64{1, 2}},
		{snapshot(3, "a", body), []uint64{1, 2, 3}},
		{snapshot(4, "b", body), []uint64{1, 2, 3, 4}},
		{snapshot(5, "a", body), []uint64{2, 3, 4, 5}},    // 1 is the oldest superseded
		{event(6, body), []uint64{2, 4, 5, 6}},            // then 3
		{event(7, body), []uint64{2, 4, 5, 6, 7}},         // nothing may go: over the limit, all kept
		{snapshot(8, "b", body), []uint64{2, 5, 6, 7, 8}}, // 4 is superseded now
		{event(9, body), []uint64{2, 5, 6, 7, 8, 9}},
	}
	for _, s := range steps {
		put(t, sp, s.r)
		if got, _ := pendingSeqs(t, sp); !slices.Equal(got, s.want) {
			t.Fatalf("after put %d: pending %v, want %v", s.r.Seq, got, s.want)
		}
	}
	st, err := sp.Stats()
	if err != nil || st.Records != 6 || st.Bytes != 6*size {
		t.Fatalf("stats %+v %v, want 6 records of %d bytes", st, err, size)
	}
}

func TestAgeLimitDropsOldSupersededSnapshotsOnly(t *testing.T) {
	clk := clock.NewManual(t0)
	sp, _ := open(t, spool.Options{MaxAge: 24 * time.Hour, Clock: clk})
	at := func(r spool.Record, d time.Duration) spool.Record { r.Created = t0.Add(-d); return r }
	put(t, sp,
		at(snapshot(1, "a", "old a"), 48*time.Hour),   // superseded by 4, too old: dropped
		at(event(2, "old event"), 48*time.Hour),       // an event: kept
		at(snapshot(3, "b", "old b"), 48*time.Hour),   // the newest of b: kept
		at(snapshot(4, "a", "young a"), time.Hour),    // superseded by 5 but young: kept
		at(snapshot(5, "a", "newest a"), time.Minute), // newest of a
	)
	if got, _ := pendingSeqs(t, sp); !slices.Equal(got, []uint64{2, 3, 4, 5}) {
		t.Fatalf("pending %v, want [2 3 4 5]", got)
	}
	// Time passes: 4 is now too old as well, once something is put.
	clk.Advance(24 * time.Hour)
	put(t, sp, event(6, "later"))
	if got, _ := pendingSeqs(t, sp); !slices.Equal(got, []uint64{2, 3, 5, 6}) {
		t.Fatalf("pending %v, want [2 3 5 6]", got)
	}
}

// A file whose header cannot be read is never dropped by the bounds
// (Pending reports it), but its bytes count.
func TestBoundsCountButKeepUnreadableFiles(t *testing.T) {
	body := strings.Repeat("x", 500)
	size := int64(len(encode(t, snapshot(1, "a", body))))
	sp, dir := open(t, spool.Options{MaxBytes: 3 * size})
	if err := os.WriteFile(filepath.Join(dir, name(1)), bytes.Repeat([]byte{0xee}, int(size)), 0o600); err != nil {
		t.Fatal(err)
	}
	put(t, sp, snapshot(2, "a", body), snapshot(3, "a", body), snapshot(4, "a", body))
	if _, err := os.Stat(filepath.Join(dir, name(1))); err != nil {
		t.Fatalf("unreadable record dropped by the bounds: %v", err)
	}
	seqs, problems := pendingSeqs(t, sp)
	if !slices.Equal(seqs, []uint64{3, 4}) || len(problems) != 1 {
		t.Fatalf("pending %v problems %v; want [3 4] and record 1 reported", seqs, problems)
	}
}

// A file changed under the same name (a person, a restore) is read again.
func TestBoundsNoticeAFileReplacedUnderTheSameName(t *testing.T) {
	body := strings.Repeat("x", 500)
	size := int64(len(encode(t, snapshot(1, "a", body))))
	sp, dir := open(t, spool.Options{MaxBytes: 3 * size})
	put(t, sp, event(1, body), snapshot(2, "a", body))
	// Record 1 becomes a superseded snapshot of a.
	b := encode(t, snapshot(1, "a", body+"!"))
	if err := os.WriteFile(filepath.Join(dir, name(1)), b, 0o600); err != nil {
		t.Fatal(err)
	}
	put(t, sp, snapshot(3, "a", body), event(4, body))
	if got, _ := pendingSeqs(t, sp); !slices.Equal(got, []uint64{2, 3, 4}) {
		t.Fatalf("pending %v, want [2 3 4]: record 1 is now a superseded snapshot", got)
	}
}

func TestStats(t *testing.T) {
	sp, dir := open(t, spool.Options{})
	st, err := sp.Stats()
	if err != nil || st != (spool.Stats{}) {
		t.Fatalf("empty spool: %+v %v", st, err)
	}
	put(t, sp, event(1, "a"), snapshot(2, "k", "bb"))
	want := int64(len(encode(t, event(1, "a"))) + len(encode(t, snapshot(2, "k", "bb"))))
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(filepath.Join(dir, name(1)), old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name(3)), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err = sp.Stats()
	if err != nil || st.Records != 3 || st.Bytes != want+4 || !st.Oldest.Equal(old) || st.Damaged != 0 {
		t.Fatalf("stats %+v %v, want 3 records, %d bytes, oldest %v, nothing damaged yet (Stats moves nothing)", st, err, want+4, old)
	}
	sp.Pending()
	st, _ = sp.Stats()
	if st.Records != 2 || st.Bytes != want || st.Damaged != 1 {
		t.Fatalf("stats after Pending %+v, want 2 records, %d bytes, 1 damaged", st, want)
	}
}

// Records put while others are sent and removed: nothing lost, nothing
// sent twice, always in order.
func TestConcurrentPutAndDrain(t *testing.T) {
	sp, _ := open(t, spool.Options{MaxBytes: 1 << 20})
	const n = 200
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := uint64(1); i <= n; i++ {
			if err := sp.Put(event(i, "payload")); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var sent []uint64
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		recs, problems, err := sp.Pending()
		if err != nil || len(problems) != 0 {
			t.Fatalf("pending: %v %v", problems, err)
		}
		for _, r := range recs {
			sent = append(sent, r.Seq)
			if err := sp.Remove(r.Seq); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(sent) != n || !slices.IsSorted(sent) || sent[0] != 1 || sent[n-1] != n {
		t.Fatalf("sent %d records (%v…), want 1..%d once each in order", len(sent), sent[:min(len(sent), 5)], n)
	}
}
