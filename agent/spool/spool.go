// Package spool is the agent's durable outbox. Every post is written here,
// and fsynced, before it is sent; it is removed only when the server has
// acknowledged it. Records carry their sequence number, so a post sent
// twice (agent killed after sending, before removing) is applied once.
//
// One file per record, named by sequence number: records are sent in
// order, removed one by one, and a record damaged by power loss (short or
// failing its checksum) is moved aside into bad/ and reported while the
// others are sent. The spool is bounded in bytes and age; when it must
// drop, it drops superseded snapshots (an inventory post that a later
// inventory post replaces) oldest first, and never an event record
// (a goodbye, an activation change).
package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally/common/atomicfile"
	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/protocol"
)

// Class says whether a record may be dropped when the spool is full.
type Class uint8

// Record classes.
const (
	// Snapshot records describe the state at a moment (inventory). A later
	// snapshot with the same Key supersedes an earlier one, which may then
	// be dropped.
	Snapshot Class = 1
	// Event records must reach the server (goodbye, activation changes):
	// never dropped.
	Event Class = 2
)

// Record is one queued request.
type Record struct {
	Seq     uint64
	Kind    protocol.Kind
	Class   Class
	Key     string // snapshots with the same key supersede each other
	Created time.Time
	Body    []byte // the encoded request body
}

// Problem is a damaged record moved aside.
type Problem struct {
	File   string
	Reason string
}

func (p Problem) String() string { return p.File + ": " + p.Reason }

// Options bound the spool. Zero values take the defaults.
type Options struct {
	MaxBytes int64         // default 64 MiB
	MaxAge   time.Duration // snapshots older than this are dropped once superseded (default 30 days)
	Logger   *slog.Logger
	Clock    clock.Clock
}

// Spool is a durable outbox in a folder.
type Spool struct {
	dir  string
	opts Options
	log  *slog.Logger
}

const (
	magic      = "TSP1"
	headerSize = 4 + 1 + 1 + 2 + 8 + 8 + 2 + 4 // magic, version, class, kind, seq, created, key length, body length
	maxBody    = protocol.MaxRequestSize
	suffix     = ".rec"
	badDir     = "bad"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrTooLarge is returned by Put for a body the server would refuse anyway.
var ErrTooLarge = errors.New("spool: record larger than the protocol allows")

// Open opens (creating) the spool folder.
func Open(dir string, opts Options) (*Spool, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 64 << 20
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 30 * 24 * time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	return &Spool{dir: dir, opts: opts, log: opts.Logger}, nil
}

func fileName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, suffix) }

// Encode serialises a record with its checksum.
func Encode(r Record) ([]byte, error) {
	if len(r.Body) > maxBody {
		return nil, ErrTooLarge
	}
	if len(r.Key) > 1024 {
		return nil, errors.New("spool: key too long")
	}
	b := make([]byte, headerSize, headerSize+len(r.Key)+len(r.Body)+4)
	copy(b, magic)
	b[4] = 1
	b[5] = byte(r.Class)
	binary.BigEndian.PutUint16(b[6:], uint16(r.Kind))
	binary.BigEndian.PutUint64(b[8:], r.Seq)
	binary.BigEndian.PutUint64(b[16:], uint64(r.Created.UnixMilli()))
	binary.BigEndian.PutUint16(b[24:], uint16(len(r.Key)))
	binary.BigEndian.PutUint32(b[26:], uint32(len(r.Body)))
	b = append(b, r.Key...)
	b = append(b, r.Body...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// Decode parses a record written by Encode, checking its length and checksum.
func Decode(b []byte) (Record, error) {
	var r Record
	if len(b) < headerSize+4 {
		return r, fmt.Errorf("truncated: %d bytes, shorter than a header", len(b))
	}
	if string(b[:4]) != magic {
		return r, errors.New("not a spool record (bad magic)")
	}
	if b[4] != 1 {
		return r, fmt.Errorf("unknown record version %d", b[4])
	}
	keyLen := int(binary.BigEndian.Uint16(b[24:]))
	bodyLen := int(binary.BigEndian.Uint32(b[26:]))
	if bodyLen > maxBody {
		return r, fmt.Errorf("body length %d exceeds the limit", bodyLen)
	}
	want := headerSize + keyLen + bodyLen + 4
	if len(b) != want {
		return r, fmt.Errorf("truncated or padded: %d bytes, header says %d", len(b), want)
	}
	sum := binary.BigEndian.Uint32(b[want-4:])
	if crc32.Checksum(b[:want-4], castagnoli) != sum {
		return r, errors.New("checksum mismatch")
	}
	r.Class = Class(b[5])
	if r.Class != Snapshot && r.Class != Event {
		return r, fmt.Errorf("unknown record class %d", b[5])
	}
	r.Kind = protocol.Kind(binary.BigEndian.Uint16(b[6:]))
	r.Seq = binary.BigEndian.Uint64(b[8:])
	r.Created = time.UnixMilli(int64(binary.BigEndian.Uint64(b[16:])))
	r.Key = string(b[headerSize : headerSize+keyLen])
	r.Body = append([]byte(nil), b[headerSize+keyLen:want-4]...)
	return r, nil
}

// Put stores r durably: when Put returns nil the record survives a crash
// or power loss. It then enforces the spool's bounds.
func (s *Spool) Put(r Record) error {
	if r.Seq == 0 {
		return errors.New("spool: record without a sequence number")
	}
	if r.Created.IsZero() {
		r.Created = s.opts.Clock.Now()
	}
	b, err := Encode(r)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(s.dir, fileName(r.Seq)), b, 0o600); err != nil {
		return fmt.Errorf("spool record %d: %w", r.Seq, err)
	}
	_, err = s.enforce()
	return err
}

type entry struct {
	seq  uint64
	path string
	size int64
	rec  Record
}

// scan reads every record, moving damaged ones aside.
func (s *Spool) scan() ([]entry, []Problem, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("read spool: %w", err)
	}
	var out []entry
	var problems []Problem
	for _, de := range des {
		name := de.Name()
		if de.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, suffix) {
			continue
		}
		p := filepath.Join(s.dir, name)
		seq, perr := strconv.ParseUint(strings.TrimSuffix(name, suffix), 10, 64)
		b, rerr := os.ReadFile(p)
		if rerr != nil {
			if errors.Is(rerr, os.ErrNotExist) {
				continue // removed by a concurrent sender
			}
			return nil, problems, fmt.Errorf("read spool record %s: %w", name, rerr)
		}
		rec, derr := Decode(b)
		if derr == nil && (perr != nil || rec.Seq != seq) {
			derr = fmt.Errorf("file name does not match sequence number %d", rec.Seq)
		}
		if derr != nil {
			problems = append(problems, s.setAside(name, derr))
			continue
		}
		out = append(out, entry{seq: seq, path: p, size: int64(len(b)), rec: rec})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out, problems, nil
}

func (s *Spool) setAside(name string, why error) Problem {
	bad := filepath.Join(s.dir, badDir)
	pr := Problem{File: name, Reason: why.Error()}
	if err := os.MkdirAll(bad, 0o700); err == nil {
		if err := os.Rename(filepath.Join(s.dir, name), filepath.Join(bad, name)); err != nil {
			pr.Reason += "; could not move it aside: " + err.Error()
		}
	}
	s.log.Error("damaged spool record set aside; the other records will be sent", "file", name, "reason", why, "moved_to", bad)
	return pr
}

// Pending returns the queued records in sequence order. Damaged records
// found on the way are moved into bad/ and returned as problems.
func (s *Spool) Pending() ([]Record, []Problem, error) {
	es, problems, err := s.scan()
	if err != nil {
		return nil, problems, err
	}
	out := make([]Record, len(es))
	for i, e := range es {
		out[i] = e.rec
	}
	return out, problems, nil
}

// Remove deletes an acknowledged record. Removing a record that is gone
// is not an error.
func (s *Spool) Remove(seq uint64) error {
	err := os.Remove(filepath.Join(s.dir, fileName(seq)))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove spool record %d: %w", seq, err)
	}
	return nil
}

// Stats describes the queue.
type Stats struct {
	Records int       `json:"records"`
	Bytes   int64     `json:"bytes"`
	Oldest  time.Time `json:"oldest,omitempty"`
	Damaged int       `json:"damaged"` // records set aside in bad/
}

// Stats returns the queue's size without moving anything.
func (s *Spool) Stats() (Stats, error) {
	var st Stats
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return st, fmt.Errorf("read spool: %w", err)
	}
	for _, de := range des {
		if de.IsDir() || !strings.HasSuffix(de.Name(), suffix) || strings.HasPrefix(de.Name(), ".") {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue
		}
		st.Records++
		st.Bytes += fi.Size()
		if st.Oldest.IsZero() || fi.ModTime().Before(st.Oldest) {
			st.Oldest = fi.ModTime()
		}
	}
	if bad, err := os.ReadDir(filepath.Join(s.dir, badDir)); err == nil {
		st.Damaged = len(bad)
	}
	return st, nil
}

// Dropped describes a record dropped to keep the spool within bounds.
type Dropped struct {
	Seq    uint64
	Kind   protocol.Kind
	Reason string
}

// enforce drops superseded snapshots past the age limit, then, while over
// the size limit, superseded snapshots oldest first. The newest snapshot
// of each key and every event record are kept.
func (s *Spool) enforce() ([]Dropped, error) {
	es, _, err := s.scan()
	if err != nil {
		return nil, err
	}
	var total int64
	newest := map[string]uint64{}
	for _, e := range es {
		total += e.size
		if e.rec.Class == Snapshot && e.seq > newest[e.rec.Key] {
			newest[e.rec.Key] = e.seq
		}
	}
	now := s.opts.Clock.Now()
	var dropped []Dropped
	drop := func(e entry, why string) error {
		if err := os.Remove(e.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("drop spool record %d: %w", e.seq, err)
		}
		total -= e.size
		d := Dropped{Seq: e.seq, Kind: e.rec.Kind, Reason: why}
		dropped = append(dropped, d)
		s.log.Warn("spool record dropped", "seq", e.seq, "kind", e.rec.Kind, "created", e.rec.Created, "reason", why)
		return nil
	}
	var kept []entry
	for _, e := range es {
		superseded := e.rec.Class == Snapshot && e.seq != newest[e.rec.Key]
		if superseded && now.Sub(e.rec.Created) > s.opts.MaxAge {
			if err := drop(e, fmt.Sprintf("older than %s and superseded by a later %s post", s.opts.MaxAge, e.rec.Kind)); err != nil {
				return dropped, err
			}
			continue
		}
		kept = append(kept, e)
	}
	for _, e := range kept {
		if total <= s.opts.MaxBytes {
			break
		}
		if e.rec.Class == Snapshot && e.seq != newest[e.rec.Key] {
			if err := drop(e, fmt.Sprintf("spool over its %d-byte limit; superseded by a later %s post", s.opts.MaxBytes, e.rec.Kind)); err != nil {
				return dropped, err
			}
		}
	}
	if total > s.opts.MaxBytes {
		s.log.Warn("spool is over its size limit with nothing left that may be dropped", "bytes", total, "limit", s.opts.MaxBytes)
	}
	return dropped, nil
}
