package protocol

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"unicode/utf8"
)

// Field limits checked by Validate. They keep one node's record bounded.
const (
	maxShortString = 256  // names, versions, identifiers
	maxLongString  = 4096 // free text
	maxListItems   = 1024 // disks, interfaces, addresses, plug-ins
	maxSecretLen   = 128
)

// EnrollRequest is the only request an unknown key may send. The node's
// identity is the public key of the client certificate on the connection;
// the body proves the right to enroll and describes the machine.
type EnrollRequest struct {
	Secret       string `cbor:"1,keyasint" json:"-"`
	Hostname     string `cbor:"2,keyasint" json:"hostname"`
	Hints        Hints  `cbor:"3,keyasint" json:"hints"`
	AgentVersion string `cbor:"4,keyasint,omitempty" json:"agent_version,omitempty"`
	OS           string `cbor:"5,keyasint,omitempty" json:"os,omitempty"`
}

// Validate checks field sizes and presence.
func (r *EnrollRequest) Validate() error {
	if r.Secret == "" {
		return errors.New("enrollment secret is missing")
	}
	if len(r.Secret) > maxSecretLen {
		return errors.New("enrollment secret is too long")
	}
	if err := checkStrings(maxShortString, "hostname", r.Hostname, "agent_version", r.AgentVersion, "os", r.OS); err != nil {
		return err
	}
	return r.Hints.Validate()
}

// EnrollResponse tells the agent who it is on this server.
type EnrollResponse struct {
	NodeID     string `cbor:"1,keyasint" json:"node_id"`
	ComputerID int64  `cbor:"2,keyasint" json:"computer_id"`
	// Reenrolled is true when the hints matched an existing computer
	// (a re-imaged machine) and this key replaced that computer's old one.
	Reenrolled bool `cbor:"3,keyasint,omitempty" json:"reenrolled,omitempty"`
	// Existing is true when this key was already enrolled: enrolling is idempotent.
	Existing bool `cbor:"4,keyasint,omitempty" json:"existing,omitempty"`
}

// Hints are the machine identity hints of DESIGN §2. They are only hints:
// clones share them, and junk values are dropped before they are sent.
type Hints struct {
	InstanceID  string   `cbor:"1,keyasint" json:"instance_id"` // generated, kept in the agent's data folder
	ProductUUID string   `cbor:"2,keyasint,omitempty" json:"product_uuid,omitempty"`
	Serial      string   `cbor:"3,keyasint,omitempty" json:"serial,omitempty"`
	MachineID   string   `cbor:"4,keyasint,omitempty" json:"machine_id,omitempty"`
	MACs        []string `cbor:"5,keyasint,omitempty" json:"macs,omitempty" limit:"64"`
}

// Validate checks field sizes.
func (h *Hints) Validate() error {
	if h.InstanceID == "" {
		return errors.New("hints: instance_id is missing")
	}
	if err := checkStrings(maxShortString, "instance_id", h.InstanceID, "product_uuid", h.ProductUUID,
		"serial", h.Serial, "machine_id", h.MachineID); err != nil {
		return err
	}
	if len(h.MACs) > 64 {
		return errors.New("hints: too many MAC addresses")
	}
	for _, m := range h.MACs {
		if !macPattern.MatchString(m) {
			return fmt.Errorf("hints: %q is not a MAC address", truncate(m))
		}
	}
	return nil
}

var macPattern = regexp.MustCompile(`^[0-9a-f]{2}(:[0-9a-f]{2}){5,7}$`)

// InventoryRequest is a node's periodic post.
type InventoryRequest struct {
	// Basic is the basic inventory. It may be left out (zero) when it has
	// not changed since the one whose hash is BasicHash, which the server
	// acknowledged: an unchanged machine then posts a few dozen bytes.
	Basic     BasicInventory     `cbor:"1,keyasint,omitempty" json:"basic"`
	Software  *SoftwareInventory `cbor:"2,keyasint,omitempty" json:"software,omitempty"`
	BasicHash string             `cbor:"3,keyasint,omitempty" json:"basic_hash,omitempty"`
	// Backlog is how many posts waited in the agent's spool behind this
	// one when it was queued: the server reports it as a metric.
	Backlog uint32 `cbor:"4,keyasint,omitempty" json:"backlog,omitempty"`
}

// HasBasic reports whether the post carries a basic inventory.
func (r *InventoryRequest) HasBasic() bool { return !reflect.ValueOf(r.Basic).IsZero() }

// Validate checks the basic and software inventory.
func (r *InventoryRequest) Validate() error {
	if len(r.BasicHash) > 64 {
		return errors.New("basic inventory hash too long")
	}
	if r.HasBasic() || r.BasicHash == "" {
		if err := r.Basic.Validate(); err != nil {
			return err
		}
	}
	if r.Software != nil {
		return r.Software.Validate()
	}
	return nil
}

// InventoryResponse answers an inventory post with a verdict per product
// the post touched, and the fate of its software inventory.
type InventoryResponse struct {
	Verdicts []ProductVerdict `cbor:"1,keyasint,omitempty" json:"verdicts,omitempty"`
	Software *SoftwareAck     `cbor:"2,keyasint,omitempty" json:"software,omitempty"`
	// SendBasic asks for the whole basic inventory: the post left it out,
	// but the server does not hold one with that hash.
	SendBasic bool `cbor:"3,keyasint,omitempty" json:"send_basic,omitempty"`
}

// BasicInventory is what every enrolled node posts, licensed or not.
type BasicInventory struct {
	CollectedAt     int64    `cbor:"1,keyasint" json:"collected_at"` // unix seconds
	Hostname        string   `cbor:"2,keyasint" json:"hostname"`
	OS              string   `cbor:"3,keyasint,omitempty" json:"os,omitempty"`
	Platform        string   `cbor:"4,keyasint,omitempty" json:"platform,omitempty"`
	PlatformFamily  string   `cbor:"5,keyasint,omitempty" json:"platform_family,omitempty"`
	PlatformVersion string   `cbor:"6,keyasint,omitempty" json:"platform_version,omitempty"`
	KernelVersion   string   `cbor:"7,keyasint,omitempty" json:"kernel_version,omitempty"`
	Arch            string   `cbor:"8,keyasint,omitempty" json:"arch,omitempty"`
	Virtualization  string   `cbor:"9,keyasint,omitempty" json:"virtualization,omitempty"`
	CPUModel        string   `cbor:"10,keyasint,omitempty" json:"cpu_model,omitempty"`
	CPUCores        uint32   `cbor:"11,keyasint,omitempty" json:"cpu_cores,omitempty"`
	CPUThreads      uint32   `cbor:"12,keyasint,omitempty" json:"cpu_threads,omitempty"`
	MemoryBytes     uint64   `cbor:"13,keyasint,omitempty" json:"memory_bytes,omitempty"`
	Disks           []Disk   `cbor:"14,keyasint,omitempty" json:"disks,omitempty" limit:"1024"`
	NICs            []NIC    `cbor:"15,keyasint,omitempty" json:"nics,omitempty" limit:"1024"`
	Hints           Hints    `cbor:"16,keyasint" json:"hints"`
	BootTime        int64    `cbor:"17,keyasint,omitempty" json:"boot_time,omitempty"` // unix seconds
	AgentVersion    string   `cbor:"18,keyasint,omitempty" json:"agent_version,omitempty"`
	Plugins         []Plugin `cbor:"19,keyasint,omitempty" json:"plugins" limit:"1024"`
	// PrimaryUser is the person the machine is mostly used by: the
	// server registers the machine as that user's device (revision 7).
	PrimaryUser *User `cbor:"20,keyasint,omitempty" json:"primary_user,omitempty"`
	// Users are the users logged in when the inventory was collected.
	Users []User `cbor:"21,keyasint,omitempty" json:"users,omitempty" limit:"64"`
}

// Hash identifies a basic inventory's content for the "unchanged" check:
// 32 hex digits of the SHA-256 of its deterministic encoding, leaving out
// the collection time and the disks' free bytes, which change on every
// collection without changing the machine.
func (b *BasicInventory) Hash() string {
	c := *b
	c.CollectedAt = 0
	c.Disks = append([]Disk(nil), b.Disks...)
	for i := range c.Disks {
		c.Disks[i].FreeBytes = 0
	}
	enc, err := MarshalCanonical(&c)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(enc)
	return hex.EncodeToString(sum[:16])
}

// Validate checks field sizes and list lengths.
func (b *BasicInventory) Validate() error {
	if b.Hostname == "" {
		return errors.New("basic inventory: hostname is missing")
	}
	if err := checkStrings(maxShortString, "hostname", b.Hostname, "os", b.OS, "platform", b.Platform,
		"platform_family", b.PlatformFamily, "platform_version", b.PlatformVersion,
		"kernel_version", b.KernelVersion, "arch", b.Arch, "virtualization", b.Virtualization,
		"cpu_model", b.CPUModel, "agent_version", b.AgentVersion); err != nil {
		return fmt.Errorf("basic inventory: %w", err)
	}
	if len(b.Disks) > maxListItems || len(b.NICs) > maxListItems || len(b.Plugins) > maxListItems {
		return errors.New("basic inventory: too many disks, interfaces or plug-ins")
	}
	for i := range b.Disks {
		d := &b.Disks[i]
		if err := checkStrings(maxLongString, "disk device", d.Device, "disk mountpoint", d.Mountpoint, "disk fstype", d.FSType); err != nil {
			return fmt.Errorf("basic inventory: %w", err)
		}
	}
	addrs := 0
	for i := range b.NICs {
		n := &b.NICs[i]
		if addrs += len(n.Addrs); addrs > MaxAddressesPerPost {
			return fmt.Errorf("basic inventory: more than %d interface addresses", MaxAddressesPerPost)
		}
		if err := checkStrings(maxShortString, "interface name", n.Name, "interface mac", n.MAC); err != nil {
			return fmt.Errorf("basic inventory: %w", err)
		}
		if len(n.Addrs) > maxListItems {
			return errors.New("basic inventory: too many addresses on one interface")
		}
		for _, a := range n.Addrs {
			if err := checkStrings(maxShortString, "interface address", a); err != nil {
				return fmt.Errorf("basic inventory: %w", err)
			}
		}
	}
	seen := make(map[string]bool, len(b.Plugins))
	for i := range b.Plugins {
		p := &b.Plugins[i]
		if err := p.Validate(); err != nil {
			return fmt.Errorf("basic inventory: %w", err)
		}
		if seen[p.Name] {
			return fmt.Errorf("basic inventory: plug-in %q listed twice", p.Name)
		}
		seen[p.Name] = true
	}
	if err := validateUsers(b.PrimaryUser, b.Users); err != nil {
		return fmt.Errorf("basic inventory: %w", err)
	}
	return b.Hints.Validate()
}

// Disk is one mounted file system.
type Disk struct {
	Device     string `cbor:"1,keyasint" json:"device"`
	Mountpoint string `cbor:"2,keyasint" json:"mountpoint"`
	FSType     string `cbor:"3,keyasint,omitempty" json:"fstype,omitempty"`
	TotalBytes uint64 `cbor:"4,keyasint,omitempty" json:"total_bytes,omitempty"`
	FreeBytes  uint64 `cbor:"5,keyasint,omitempty" json:"free_bytes,omitempty"`
}

// NIC is one network interface.
type NIC struct {
	Name  string   `cbor:"1,keyasint" json:"name"`
	MAC   string   `cbor:"2,keyasint,omitempty" json:"mac,omitempty"`
	Addrs []string `cbor:"3,keyasint,omitempty" json:"addrs,omitempty" limit:"1024" group:"interface addresses"`
}

// Plugin is a licensed plug-in installed on the node.
type Plugin struct {
	Name      string `cbor:"1,keyasint" json:"name"`
	Version   string `cbor:"2,keyasint" json:"version"`
	BuildDate string `cbor:"3,keyasint,omitempty" json:"build_date,omitempty"` // YYYY-MM-DD
}

// Validate checks the plug-in's name, version and build date.
func (p *Plugin) Validate() error {
	if !ValidName(p.Name) {
		return fmt.Errorf("plug-in name %q is not valid (lower-case letters, digits and dashes)", truncate(p.Name))
	}
	if err := checkStrings(maxShortString, "plug-in version", p.Version); err != nil {
		return err
	}
	if p.BuildDate != "" && !ValidDate(p.BuildDate) {
		return fmt.Errorf("plug-in %s: build date %q is not YYYY-MM-DD", p.Name, truncate(p.BuildDate))
	}
	return nil
}

// checkStrings takes name, value pairs and checks each value's length and
// encoding.
func checkStrings(max int, pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		v := pairs[i+1]
		if len(v) > max {
			return fmt.Errorf("%s is longer than %d bytes", pairs[i], max)
		}
		if !utf8.ValidString(v) {
			return fmt.Errorf("%s is not valid UTF-8", pairs[i])
		}
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
