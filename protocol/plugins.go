package protocol

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// SoftwareInventory is the software part of an inventory post: the whole
// set of installed packages (Full), or the changes since a generation the
// server acknowledged (Base). Hash and Count describe the resulting set, so
// the server can tell when its copy and the agent's have drifted and ask
// for a full post.
type SoftwareInventory struct {
	Full     bool      `cbor:"1,keyasint,omitempty" json:"full,omitempty"`
	Base     uint64    `cbor:"2,keyasint,omitempty" json:"base,omitempty"`
	Packages []Package `cbor:"3,keyasint,omitempty" json:"packages,omitempty" limit:"65536" group:"packages"`
	Added    []Package `cbor:"4,keyasint,omitempty" json:"added,omitempty" limit:"65536" group:"packages"`
	Removed  []Package `cbor:"5,keyasint,omitempty" json:"removed,omitempty" limit:"65536" group:"packages"`
	Hash     string    `cbor:"6,keyasint" json:"hash"`
	Count    uint32    `cbor:"7,keyasint" json:"count"`
}

// Validate checks sizes and the full/delta shape.
func (s *SoftwareInventory) Validate() error {
	if s.Full && (s.Base != 0 || len(s.Added) > 0 || len(s.Removed) > 0) {
		return errors.New("software: a full inventory carries packages only")
	}
	if !s.Full && len(s.Packages) > 0 {
		return errors.New("software: a delta carries added and removed packages, not a full list")
	}
	if s.Full && int(s.Count) != len(s.Packages) {
		return fmt.Errorf("software: count %d but %d packages", s.Count, len(s.Packages))
	}
	if len(s.Hash) > 64 {
		return errors.New("software: hash too long")
	}
	if len(s.Packages)+len(s.Added)+len(s.Removed) > MaxPackagesPerPost {
		return fmt.Errorf("software: more than %d packages in one post", MaxPackagesPerPost)
	}
	for _, list := range [][]Package{s.Packages, s.Added, s.Removed} {
		for i := range list {
			if err := list[i].Validate(); err != nil {
				return fmt.Errorf("software: %w", err)
			}
		}
	}
	return nil
}

// Validate checks one package's fields.
func (p *Package) Validate() error {
	if p.Name == "" {
		return errors.New("package without a name")
	}
	if err := checkStrings(maxShortString, "package name", p.Name, "package version", p.Version, "package arch", p.Arch,
		"package publisher", p.Publisher, "package source", p.Source); err != nil {
		return err
	}
	if p.Source == "" {
		return fmt.Errorf("package %s: source is missing", truncate(p.Name))
	}
	return nil
}

// ItemHash is one package's contribution to a software set's hash: 64
// bits of the SHA-256 of its identity (source, name, version, arch,
// publisher). The install date is not part of the identity.
func ItemHash(p *Package) uint64 {
	h := sha256.New()
	for _, f := range []string{p.Source, p.Name, p.Version, p.Arch, p.Publisher} {
		var n [binary.MaxVarintLen64]byte
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(f)))])
		h.Write([]byte(f))
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return binary.BigEndian.Uint64(sum[:8])
}

// SetHash is an order-independent hash of a set of packages that can be
// updated one package at a time: the sum and the xor of the item hashes.
type SetHash struct {
	Sum, Xor uint64
}

// Add includes a package.
func (h *SetHash) Add(item uint64) { h.Sum += item; h.Xor ^= item }

// Remove takes a package out.
func (h *SetHash) Remove(item uint64) { h.Sum -= item; h.Xor ^= item }

// String is the hash as carried on the wire.
func (h SetHash) String() string {
	return fmt.Sprintf("%016x%016x", h.Sum, h.Xor)
}

// ParseSetHash reads a hash written by String.
func ParseSetHash(s string) (SetHash, error) {
	if len(s) != 32 {
		return SetHash{}, fmt.Errorf("software hash %q: want 32 hex digits", s)
	}
	a, err1 := strconv.ParseUint(s[:16], 16, 64)
	b, err2 := strconv.ParseUint(s[16:], 16, 64)
	if err1 != nil || err2 != nil {
		return SetHash{}, fmt.Errorf("software hash %q: not hexadecimal", s)
	}
	return SetHash{Sum: a, Xor: b}, nil
}

// HashPackages hashes a whole set.
func HashPackages(ps []Package) SetHash {
	var h SetHash
	for i := range ps {
		h.Add(ItemHash(&ps[i]))
	}
	return h
}

// SoftwareAck is the server's answer to the software part of a post.
type SoftwareAck struct {
	// Generation is the server's generation of this computer's software
	// set after the post; the next delta is based on it.
	Generation uint64 `cbor:"1,keyasint,omitempty" json:"generation,omitempty"`
	// SendFull asks the agent for a full inventory: the delta's base or
	// hash did not match the server's copy. Nothing of the delta was stored.
	SendFull bool `cbor:"2,keyasint,omitempty" json:"send_full,omitempty"`
	// Stored is false when the software inventory was discarded (see the
	// verdicts): the agent should not advance its acknowledged state.
	Stored bool `cbor:"3,keyasint,omitempty" json:"stored,omitempty"`
}

// Metrics is the monitor plug-in's payload.
type Metrics struct {
	CPUPercent    float64      `cbor:"1,keyasint" json:"cpu_percent"`
	Load1         float64      `cbor:"2,keyasint,omitempty" json:"load1,omitempty"`
	MemUsedBytes  uint64       `cbor:"3,keyasint" json:"mem_used_bytes"`
	MemTotalBytes uint64       `cbor:"4,keyasint" json:"mem_total_bytes"`
	Disks         []DiskUsage  `cbor:"5,keyasint,omitempty" json:"disks,omitempty" limit:"1024"`
	Net           []NetCounter `cbor:"6,keyasint,omitempty" json:"net,omitempty" limit:"1024"`
	Uptime        uint64       `cbor:"7,keyasint,omitempty" json:"uptime,omitempty"`
}

// DiskUsage is one file system's use.
type DiskUsage struct {
	Mountpoint string  `cbor:"1,keyasint" json:"mountpoint"`
	UsedBytes  uint64  `cbor:"2,keyasint" json:"used_bytes"`
	TotalBytes uint64  `cbor:"3,keyasint" json:"total_bytes"`
	UsedPct    float64 `cbor:"4,keyasint" json:"used_pct"`
}

// NetCounter is one interface's traffic since boot.
type NetCounter struct {
	Name      string `cbor:"1,keyasint" json:"name"`
	BytesSent uint64 `cbor:"2,keyasint" json:"bytes_sent"`
	BytesRecv uint64 `cbor:"3,keyasint" json:"bytes_recv"`
}

// PatchScan is the patch plug-in's payload: installed packages below the
// minimum versions the server publishes.
type PatchScan struct {
	CatalogVersion string         `cbor:"1,keyasint,omitempty" json:"catalog_version,omitempty"`
	Scanned        uint32         `cbor:"2,keyasint" json:"scanned"`
	Missing        []PatchFinding `cbor:"3,keyasint,omitempty" json:"missing,omitempty" limit:"65536"`
}

// PatchFinding is one package below its minimum version.
type PatchFinding struct {
	Name      string `cbor:"1,keyasint" json:"name"`
	Installed string `cbor:"2,keyasint" json:"installed"`
	Minimum   string `cbor:"3,keyasint" json:"minimum"`
}

// PluginDataRequest carries one plug-in's product payload.
type PluginDataRequest struct {
	Plugin    Plugin     `cbor:"1,keyasint" json:"plugin"`
	Metrics   *Metrics   `cbor:"2,keyasint,omitempty" json:"metrics,omitempty"`
	PatchScan *PatchScan `cbor:"3,keyasint,omitempty" json:"patch_scan,omitempty"`
}

// Validate checks the plug-in and that exactly one payload is present.
func (r *PluginDataRequest) Validate() error {
	if err := r.Plugin.Validate(); err != nil {
		return err
	}
	if (r.Metrics == nil) == (r.PatchScan == nil) {
		return errors.New("plug-in data carries exactly one payload (metrics or patch scan)")
	}
	if m := r.Metrics; m != nil {
		if len(m.Disks) > maxListItems || len(m.Net) > maxListItems {
			return errors.New("metrics: too many disks or interfaces")
		}
		for _, f := range []float64{m.CPUPercent, m.Load1} {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return errors.New("metrics: not a number")
			}
		}
		for _, d := range m.Disks {
			if err := checkStrings(maxLongString, "disk mountpoint", d.Mountpoint); err != nil {
				return err
			}
			if math.IsNaN(d.UsedPct) || math.IsInf(d.UsedPct, 0) {
				return errors.New("metrics: not a number")
			}
		}
		for _, n := range m.Net {
			if err := checkStrings(maxShortString, "interface name", n.Name); err != nil {
				return err
			}
		}
	}
	if s := r.PatchScan; s != nil {
		if len(s.Missing) > MaxArrayElements {
			return errors.New("patch scan: too many findings")
		}
		for _, f := range s.Missing {
			if err := checkStrings(maxShortString, "package name", f.Name, "installed version", f.Installed, "minimum version", f.Minimum); err != nil {
				return err
			}
		}
	}
	return nil
}

// VerdictResponse answers a request with verdicts only.
type VerdictResponse struct {
	Verdicts []ProductVerdict `cbor:"1,keyasint,omitempty" json:"verdicts,omitempty"`
}

// PluginRequest is the body of the plug-in requests that carry no payload:
// TaskRequest, CheckIn, CatalogRequest.
type PluginRequest struct {
	Plugin Plugin `cbor:"1,keyasint" json:"plugin"`
}

// Validate checks the plug-in.
func (r *PluginRequest) Validate() error { return r.Plugin.Validate() }

// Task is an action the server asks an agent to take. Tasks are limited to
// agent actions: the agent never runs commands it is sent.
type Task struct {
	ID     string `cbor:"1,keyasint" json:"id"`
	Action string `cbor:"2,keyasint" json:"action"` // see TaskActions
}

// Task actions an agent understands.
const (
	TaskCollectNow     = "collect-now"     // collect and post inventory now
	TaskRefreshPlugins = "refresh-plugins" // re-read the installed plug-ins and post them
)

// TaskResponse answers a TaskRequest. Tasks are empty when withheld.
type TaskResponse struct {
	Verdicts []ProductVerdict `cbor:"1,keyasint,omitempty" json:"verdicts,omitempty"`
	Tasks    []Task           `cbor:"2,keyasint,omitempty" json:"tasks,omitempty"`
}

// CheckInResponse answers a CheckIn; Message says why it was denied.
type CheckInResponse struct {
	Verdicts []ProductVerdict `cbor:"1,keyasint,omitempty" json:"verdicts,omitempty"`
	Message  string           `cbor:"2,keyasint,omitempty" json:"message,omitempty"`
}

// GoodbyeRequest says the agent (Plugin empty) or one plug-in was uninstalled.
type GoodbyeRequest struct {
	Plugin string `cbor:"1,keyasint,omitempty" json:"plugin,omitempty"`
	Reason string `cbor:"2,keyasint,omitempty" json:"reason,omitempty"`
}

// Validate checks the plug-in name.
func (r *GoodbyeRequest) Validate() error {
	if r.Plugin != "" && !ValidName(r.Plugin) {
		return fmt.Errorf("goodbye: %q is not a plug-in name", truncate(r.Plugin))
	}
	return checkStrings(maxLongString, "reason", r.Reason)
}

// GoodbyeResponse lists the products whose seats were freed.
type GoodbyeResponse struct {
	Freed []string `cbor:"1,keyasint,omitempty" json:"freed,omitempty"`
}

// PackageRequest asks for the update packages of the named packages.
type PackageRequest struct {
	Plugin Plugin   `cbor:"1,keyasint" json:"plugin"`
	Names  []string `cbor:"2,keyasint,omitempty" json:"names,omitempty" limit:"8192"`
}

// Validate checks the plug-in and names.
func (r *PackageRequest) Validate() error {
	if err := r.Plugin.Validate(); err != nil {
		return err
	}
	if len(r.Names) > maxListItems*8 {
		return errors.New("package request: too many names")
	}
	for _, n := range r.Names {
		if err := checkStrings(maxShortString, "package name", n); err != nil {
			return err
		}
	}
	return nil
}

// MinimumVersion is one entry of the patch catalog the server publishes.
type MinimumVersion struct {
	Name    string `cbor:"1,keyasint" json:"name"`
	Version string `cbor:"2,keyasint" json:"version"`
	Source  string `cbor:"3,keyasint,omitempty" json:"source,omitempty"`
}

// PackageResponse lists the updates for the packages asked about.
type PackageResponse struct {
	Verdicts []ProductVerdict `cbor:"1,keyasint,omitempty" json:"verdicts,omitempty"`
	Packages []MinimumVersion `cbor:"2,keyasint,omitempty" json:"packages,omitempty"`
}

// CatalogResponse carries the patch catalog; empty when refused.
type CatalogResponse struct {
	Verdicts []ProductVerdict `cbor:"1,keyasint,omitempty" json:"verdicts,omitempty"`
	Version  string           `cbor:"2,keyasint,omitempty" json:"version,omitempty"`
	Minimums []MinimumVersion `cbor:"3,keyasint,omitempty" json:"minimums,omitempty"`
}
