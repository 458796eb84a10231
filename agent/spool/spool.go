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
//
// Bounds are enforced on every Put from the records' file names, sizes and
// headers only: a Spool remembers the header of each file it has seen
// (files never change once written, so name, size and modification time
// identify one), so a Put reads one header, not every queued body, even
// with thousands of records queued.
package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
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

// Default bounds of a spool.
const (
	DefaultMaxBytes = 64 << 20
	DefaultMaxAge   = 30 * 24 * time.Hour
)

// Options bound the spool. Zero values take the defaults.
type Options struct {
	MaxBytes int64         // default DefaultMaxBytes
	MaxAge   time.Duration // snapshots older than this are dropped once superseded (default DefaultMaxAge)
	Logger   *slog.Logger
	Clock    clock.Clock
}

// Spool is a durable outbox in a folder. Several processes may use one
// folder; callers serialise Put (the agent holds its folder lock) and
// sending (the send lock).
type Spool struct {
	dir  string
	opts Options
	log  *slog.Logger

	mu    sync.Mutex
	known map[string]entry // headers read by index, by file name
}

const (
	magic      = "TSP1"
	headerSize = 4 + 1 + 1 + 2 + 8 + 8 + 2 + 4 // magic, version, class, kind, seq, created, key length, body length
	maxBody    = protocol.MaxRequestSize
	maxKey     = 1024
	suffix     = ".rec"
	badDir     = "bad"
	// staleTemp is the age after which a temporary file left by a Put that
	// never finished (the agent was killed while writing) is removed.
	staleTemp = time.Hour
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrTooLarge is returned by Put for a body the server would refuse anyway.
var ErrTooLarge = errors.New("spool: record larger than the protocol allows")

// Open opens (creating) the spool folder.
func Open(dir string, opts Options) (*Spool, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
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
	return &Spool{dir: dir, opts: opts, log: opts.Logger, known: map[string]entry{}}, nil
}

func fileName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, suffix) }

// Encode serialises a record with its checksum.
func Encode(r Record) ([]byte, error) {
	if r.Seq == 0 {
		return nil, errors.New("spool: record without a sequence number")
	}
	if len(r.Body) > maxBody {
		return nil, ErrTooLarge
	}
	if len(r.Key) > maxKey {
		return nil, fmt.Errorf("spool: key longer than %d bytes", maxKey)
	}
	if r.Class != Snapshot && r.Class != Event {
		return nil, fmt.Errorf("spool: unknown record class %d", r.Class)
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

// header is what a record says of itself before its key and body.
type header struct {
	class   Class
	kind    protocol.Kind
	seq     uint64
	created time.Time
	key     string
	size    int64 // of the whole record, checksum included
}

// parseHeader reads a record's header and key from the start of b, which
// may hold the rest of the record or not.
func parseHeader(b []byte) (header, error) {
	var h header
	if len(b) < headerSize+4 {
		return h, fmt.Errorf("truncated: %d bytes, shorter than a header", len(b))
	}
	if string(b[:4]) != magic {
		return h, errors.New("not a spool record (bad magic)")
	}
	if b[4] != 1 {
		return h, fmt.Errorf("unknown record version %d", b[4])
	}
	h.class = Class(b[5])
	if h.class != Snapshot && h.class != Event {
		return h, fmt.Errorf("unknown record class %d", b[5])
	}
	keyLen := int(binary.BigEndian.Uint16(b[24:]))
	bodyLen := int(binary.BigEndian.Uint32(b[26:]))
	if keyLen > maxKey {
		return h, fmt.Errorf("key length %d exceeds the limit", keyLen)
	}
	if bodyLen > maxBody {
		return h, fmt.Errorf("body length %d exceeds the limit", bodyLen)
	}
	h.size = int64(headerSize + keyLen + bodyLen + 4)
	if len(b) < headerSize+keyLen {
		return h, fmt.Errorf("truncated: %d bytes, header says %d", len(b), h.size)
	}
	h.kind = protocol.Kind(binary.BigEndian.Uint16(b[6:]))
	h.seq = binary.BigEndian.Uint64(b[8:])
	if h.seq == 0 {
		return h, errors.New("sequence number 0")
	}
	h.created = time.UnixMilli(int64(binary.BigEndian.Uint64(b[16:])))
	h.key = string(b[headerSize : headerSize+keyLen])
	return h, nil
}

// Decode parses a record written by Encode, checking its length and checksum.
func Decode(b []byte) (Record, error) {
	h, err := parseHeader(b)
	if err != nil {
		return Record{}, err
	}
	if int64(len(b)) != h.size {
		return Record{}, fmt.Errorf("truncated or padded: %d bytes, header says %d", len(b), h.size)
	}
	end := len(b) - 4
	if crc32.Checksum(b[:end], castagnoli) != binary.BigEndian.Uint32(b[end:]) {
		return Record{}, errors.New("checksum mismatch")
	}
	return Record{Seq: h.seq, Kind: h.kind, Class: h.class, Key: h.key, Created: h.created,
		Body: append([]byte(nil), b[headerSize+len(h.key):end]...)}, nil
}

// Put stores r durably: when Put returns nil the record survives a crash
// or power loss. It then enforces the spool's bounds. A record with the
// sequence number of one still queued is refused: the sequence counter went
// back, and overwriting would lose a post.
func (s *Spool) Put(r Record) error {
	if r.Created.IsZero() {
		r.Created = s.opts.Clock.Now()
	}
	b, err := Encode(r)
	if err != nil {
		return err
	}
	p := filepath.Join(s.dir, fileName(r.Seq))
	if _, err := os.Lstat(p); err == nil {
		return fmt.Errorf("spool record %d: %w", r.Seq, ErrExists)
	}
	if err := atomicfile.Write(p, b, 0o600); err != nil {
		return fmt.Errorf("spool record %d: %w", r.Seq, err)
	}
	_, err = s.enforce()
	return err
}

// ErrExists is returned by Put for a sequence number already queued.
var ErrExists = errors.New("spool: a record with this sequence number is already queued")

// entry is one record file as index sees it, without its body.
type entry struct {
	name string
	size int64
	mod  time.Time
	hdr  header
	ok   bool // the header is readable and agrees with the file's name and size
}

// index lists the record files with their headers, in sequence order,
// reading only the headers of files it has not seen before. Damaged files
// are listed (their size counts) but not judged: Pending does that.
func (s *Spool) index() ([]entry, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("read spool: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := make(map[string]bool, len(des))
	var out []entry
	for _, de := range des {
		name := de.Name()
		if !isRecordFile(de) {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue // removed meanwhile
		}
		seen[name] = true
		if e, ok := s.known[name]; ok && e.size == fi.Size() && e.mod.Equal(fi.ModTime()) {
			out = append(out, e)
			continue
		}
		e := entry{name: name, size: fi.Size(), mod: fi.ModTime()}
		if h, err := readHeader(filepath.Join(s.dir, name)); err == nil {
			seq, perr := parseName(name)
			e.hdr, e.ok = h, perr == nil && seq == h.seq && h.size == e.size
		} else if errors.Is(err, os.ErrNotExist) {
			continue
		}
		s.known[name] = e
		out = append(out, e)
	}
	for name := range s.known {
		if !seen[name] {
			delete(s.known, name)
		}
	}
	// Names are zero-padded sequence numbers, so name order is sequence
	// order; a misnamed file sorts anywhere, which is harmless.
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func readHeader(path string) (header, error) {
	f, err := os.Open(path)
	if err != nil {
		return header{}, err
	}
	defer f.Close()
	b := make([]byte, headerSize+maxKey)
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return header{}, err
	}
	return parseHeader(b[:n])
}

func isRecordFile(de os.DirEntry) bool {
	name := de.Name()
	return !de.IsDir() && !strings.HasPrefix(name, ".") && strings.HasSuffix(name, suffix)
}

func parseName(name string) (uint64, error) {
	return strconv.ParseUint(strings.TrimSuffix(name, suffix), 10, 64)
}

// Pending returns the queued records in sequence order. Damaged records
// found on the way are moved into bad/ and returned as problems; the
// intact ones are returned all the same.
func (s *Spool) Pending() ([]Record, []Problem, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("read spool: %w", err)
	}
	var out []Record
	var problems []Problem
	for _, de := range des {
		name := de.Name()
		if isStaleTemp(de) {
			_ = os.Remove(filepath.Join(s.dir, name))
			continue
		}
		if !isRecordFile(de) {
			continue
		}
		seq, perr := parseName(name)
		b, rerr := os.ReadFile(filepath.Join(s.dir, name))
		if errors.Is(rerr, os.ErrNotExist) {
			continue // removed by a concurrent sender
		}
		if rerr != nil {
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
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, problems, nil
}

// isStaleTemp reports whether de is a temporary file that a Put killed
// half-way left behind long enough ago that no Put is still writing it.
func isStaleTemp(de os.DirEntry) bool {
	if de.IsDir() || !strings.HasPrefix(de.Name(), ".") || !strings.Contains(de.Name(), suffix+".tmp-") {
		return false
	}
	fi, err := de.Info()
	return err == nil && time.Since(fi.ModTime()) > staleTemp // file times are real time, whatever Options.Clock says
}

// setAside moves a damaged record into bad/, under a new name if a record
// of that name was set aside before, so that nothing is overwritten.
func (s *Spool) setAside(name string, why error) Problem {
	bad := filepath.Join(s.dir, badDir)
	pr := Problem{File: name, Reason: why.Error()}
	err := os.MkdirAll(bad, 0o700)
	if err == nil {
		dst := filepath.Join(bad, name)
		for i := 1; ; i++ {
			if _, serr := os.Lstat(dst); errors.Is(serr, os.ErrNotExist) {
				break
			}
			dst = filepath.Join(bad, fmt.Sprintf("%s.%d", name, i))
		}
		err = os.Rename(filepath.Join(s.dir, name), dst)
	}
	if err != nil {
		pr.Reason += "; could not move it aside: " + err.Error()
	}
	s.log.Error("damaged spool record set aside; the other records will be sent", "file", name, "reason", why, "moved_to", bad)
	return pr
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
		if !isRecordFile(de) {
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
// of each key and every event record are kept, and so is every file whose
// header cannot be read (Pending sets those aside and reports them).
func (s *Spool) enforce() ([]Dropped, error) {
	es, err := s.index()
	if err != nil {
		return nil, err
	}
	var total int64
	newest := map[string]uint64{}
	for _, e := range es {
		total += e.size
		if e.ok && e.hdr.class == Snapshot && e.hdr.seq > newest[e.hdr.key] {
			newest[e.hdr.key] = e.hdr.seq
		}
	}
	superseded := func(e entry) bool {
		return e.ok && e.hdr.class == Snapshot && e.hdr.seq != newest[e.hdr.key]
	}
	now := s.opts.Clock.Now()
	var dropped []Dropped
	drop := func(e entry, why string) error {
		if err := os.Remove(filepath.Join(s.dir, e.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("drop spool record %d: %w", e.hdr.seq, err)
		}
		total -= e.size
		dropped = append(dropped, Dropped{Seq: e.hdr.seq, Kind: e.hdr.kind, Reason: why})
		s.log.Warn("spool record dropped", "seq", e.hdr.seq, "kind", e.hdr.kind, "created", e.hdr.created, "reason", why)
		return nil
	}
	kept := es[:0]
	for _, e := range es {
		if superseded(e) && now.Sub(e.hdr.created) > s.opts.MaxAge {
			if err := drop(e, fmt.Sprintf("older than %s and superseded by a later %s post", s.opts.MaxAge, e.hdr.kind)); err != nil {
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
		if superseded(e) {
			if err := drop(e, fmt.Sprintf("spool over its %d-byte limit; superseded by a later %s post", s.opts.MaxBytes, e.hdr.kind)); err != nil {
				return dropped, err
			}
		}
	}
	if total > s.opts.MaxBytes {
		s.log.Warn("spool is over its size limit with nothing left that may be dropped", "bytes", total, "limit", s.opts.MaxBytes)
	}
	return dropped, nil
}
