// Package collect gathers the basic inventory every enrolled node posts:
// host and OS, CPU, memory, disks, network interfaces, boot time, the
// machine identity hints of DESIGN §2 (through gopsutil), and who uses the
// machine (package logins). A part that
// cannot be read is left empty and named in the returned problems, so one
// unreadable file never costs the whole post.
package collect

import (
	"context"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v3/cpu"
	"github.com/shirou/gopsutil/v3/disk"
	"github.com/shirou/gopsutil/v3/mem"
	gnet "github.com/shirou/gopsutil/v3/net"

	"github.com/tallyhq/tally/agent/collect/logins"
	"github.com/tallyhq/tally/common/machineid"
	"github.com/tallyhq/tally/protocol"
)

// Options say what the collector cannot find out by itself.
type Options struct {
	InstanceID   string
	AgentVersion string
	// MachineID, when set, replaces every hardware hint: for cloned images
	// whose hardware hints are shared, and for tests that run many agents
	// on one machine.
	MachineID string
	Plugins   []protocol.Plugin
	Now       time.Time
	// Users says who uses the machine (default: logins.System); tests
	// set it to report a primary user of their choosing.
	Users logins.Source
}

// pseudoFS lists file system types that are not disks.
var pseudoFS = map[string]bool{
	"tmpfs": true, "devtmpfs": true, "proc": true, "sysfs": true, "cgroup": true, "cgroup2": true, "overlay": true,
	"squashfs": true, "devpts": true, "mqueue": true, "debugfs": true, "tracefs": true, "securityfs": true,
	"pstore": true, "bpf": true, "autofs": true, "hugetlbfs": true, "fusectl": true, "configfs": true,
	"binfmt_misc": true, "nsfs": true, "rpc_pipefs": true, "efivarfs": true, "ramfs": true, "fuse.lxcfs": true,
}

// Basic collects the basic inventory.
func Basic(ctx context.Context, o Options) (protocol.BasicInventory, []string) {
	var problems []string
	note := func(what string, err error) {
		if err != nil {
			problems = append(problems, what+": "+err.Error())
		}
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	b := protocol.BasicInventory{CollectedAt: now.Unix(), AgentVersion: o.AgentVersion, Plugins: o.Plugins}
	if b.Plugins == nil {
		b.Plugins = []protocol.Plugin{}
	}
	note("host", hostInfo(ctx, &b))
	if b.Hostname == "" {
		b.Hostname, _ = os.Hostname()
	}
	if b.Hostname == "" {
		b.Hostname = "unknown"
	}
	if ci, err := cpu.InfoWithContext(ctx); err == nil && len(ci) > 0 {
		b.CPUModel = strings.TrimSpace(ci[0].ModelName)
	} else {
		note("cpu model", err)
	}
	if n, err := cpu.CountsWithContext(ctx, false); err == nil {
		b.CPUCores = uint32(n)
	}
	if n, err := cpu.CountsWithContext(ctx, true); err == nil {
		b.CPUThreads = uint32(n)
	}
	if vm, err := mem.VirtualMemoryWithContext(ctx); err == nil {
		b.MemoryBytes = vm.Total
	} else {
		note("memory", err)
	}
	var err error
	b.Disks, err = disks(ctx)
	note("disks", err)
	var macs []string
	b.NICs, macs, err = nics(ctx)
	note("network interfaces", err)

	h := protocol.Hints{InstanceID: o.InstanceID}
	if o.MachineID != "" {
		h.MachineID = o.MachineID
	} else {
		h = hardwareHints(ctx, h)
		h.MACs = macs
	}
	users := o.Users
	if users == nil {
		users = logins.System
	}
	b.PrimaryUser, b.Users, err = users(ctx)
	note("users", err)

	b.Hints = machineid.Clean(h)
	if o.MachineID != "" {
		b.Hints.MachineID = strings.TrimSpace(o.MachineID) // an explicit override is used as given
	}
	return b, problems
}

// Disks lists the mounted disk file systems (pseudo file systems and snap
// images left out) with their size and free bytes, as basic inventory
// reports them; the monitor plug-in reads their use from it.
func Disks(ctx context.Context) ([]protocol.Disk, error) { return disks(ctx) }

func disks(ctx context.Context) ([]protocol.Disk, error) {
	parts, err := disk.PartitionsWithContext(ctx, false)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []protocol.Disk
	for _, p := range parts {
		if pseudoFS[p.Fstype] || seen[p.Mountpoint] || strings.HasPrefix(p.Mountpoint, "/snap/") {
			continue
		}
		seen[p.Mountpoint] = true
		d := protocol.Disk{Device: p.Device, Mountpoint: p.Mountpoint, FSType: p.Fstype}
		if u, err := disk.UsageWithContext(ctx, p.Mountpoint); err == nil {
			d.TotalBytes, d.FreeBytes = u.Total, u.Free
		}
		out = append(out, d)
		if len(out) >= 256 {
			break
		}
	}
	return out, nil
}

func nics(ctx context.Context) ([]protocol.NIC, []string, error) {
	ifs, err := gnet.InterfacesWithContext(ctx)
	if err != nil {
		return nil, nil, err
	}
	var out []protocol.NIC
	var macs []string
	for _, i := range ifs {
		loop := false
		for _, f := range i.Flags {
			if f == "loopback" {
				loop = true
			}
		}
		if loop {
			continue
		}
		n := protocol.NIC{Name: i.Name, MAC: strings.ToLower(i.HardwareAddr)}
		for _, a := range i.Addrs {
			n.Addrs = append(n.Addrs, a.Addr)
		}
		if len(n.Addrs) > 64 {
			n.Addrs = n.Addrs[:64]
		}
		if _, ok := machineid.PrimaryMAC(n.MAC); ok && !isVirtualNIC(i.Name) {
			macs = append(macs, n.MAC)
		}
		out = append(out, n)
		if len(out) >= 256 {
			break
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, macs, nil
}

// isVirtualNIC recognises interfaces of bridges, containers and VPNs by
// name, which can carry globally administered MACs copied from real ones.
func isVirtualNIC(name string) bool {
	for _, p := range []string{"docker", "br-", "veth", "virbr", "vnet", "tun", "tap", "wg", "zt", "cni", "flannel", "cali", "vmnet", "vboxnet"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
