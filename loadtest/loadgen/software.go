package loadgen

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/tallyhq/tally/protocol"
)

// Pool is the fleet's software catalogue: every package any simulated
// machine may have, ranked by popularity. Machines draw from it with
// Zipf-like weights, so most packages are shared across the fleet (the base
// system, common libraries) and a long tail is rare, as in real fleets.
type Pool struct {
	Packages []protocol.Package
	hashes   []uint64 // protocol.ItemHash of each package
	weights  []float64
}

// Word stems for package names: synthetic, but shaped like a Debian archive.
var (
	stems    = []string{"ssl", "curl", "xml", "gtk", "qt", "python", "perl", "ruby", "node", "java", "boost", "glib", "pango", "cairo", "x11", "wayland", "mesa", "drm", "audit", "pam", "krb5", "ldap", "sasl", "nss", "dbus", "udev", "systemd", "zstd", "lzma", "bz2", "png", "jpeg", "tiff", "webp", "freetype", "fontconfig", "harfbuzz", "icu", "sqlite", "pq", "mysql", "redis", "nginx", "apache", "php", "go", "rust", "llvm", "gcc", "binutils", "make", "cmake", "git", "svn", "vim", "emacs", "bash", "zsh", "tmux", "rsync", "openssh", "gnupg", "ca", "tz", "locales", "cups", "avahi", "pulse", "alsa", "gstreamer", "ffmpeg", "vlc", "office", "chrome", "firefox", "thunderbird", "zoom", "teams", "slack", "docker", "containerd", "kube", "helm", "terraform", "ansible", "salt", "puppet", "chef", "zabbix", "nagios", "prometheus", "grafana", "elastic", "kibana", "mongo", "kafka", "rabbitmq", "zookeeper", "hadoop", "spark"}
	prefixes = []string{"", "lib", "python3-", "golang-", "ruby-", "node-", "libjs-", "fonts-", "gir1.2-", "r-cran-"}
	suffixes = []string{"", "-common", "-dev", "-doc", "-utils", "-data", "-bin", "-tools", "1", "2", "3", "6", "-plugins", "-dbg", "-l10n", "-core"}
	archs    = []string{"amd64", "amd64", "amd64", "all"}
)

// NewPool builds a deterministic pool of size packages from seed.
func NewPool(size int, seed uint64) *Pool {
	r := rand.New(rand.NewPCG(seed, 0x7a11e))
	p := &Pool{}
	seen := make(map[string]bool, size)
	for len(p.Packages) < size {
		name := prefixes[r.IntN(len(prefixes))] + stems[r.IntN(len(stems))] + suffixes[r.IntN(len(suffixes))]
		if seen[name] {
			name = fmt.Sprintf("%s-%d", name, r.IntN(100))
			if seen[name] {
				continue
			}
		}
		seen[name] = true
		v := fmt.Sprintf("%d.%d.%d-%d", r.IntN(12), r.IntN(30), r.IntN(20), 1+r.IntN(5))
		if r.IntN(3) == 0 {
			v += fmt.Sprintf("+deb12u%d", 1+r.IntN(6))
		}
		p.Packages = append(p.Packages, protocol.Package{Name: name, Version: v, Arch: archs[r.IntN(len(archs))],
			Source: "dpkg", InstallDate: 1_700_000_000 + int64(r.IntN(40_000_000))})
	}
	p.hashes = make([]uint64, size)
	p.weights = make([]float64, size)
	for i := range p.Packages {
		p.hashes[i] = protocol.ItemHash(&p.Packages[i])
		// Zipf-like popularity with a flat head: the first few hundred
		// ranks are on nearly every machine.
		p.weights[i] = 1 / math.Pow(float64(i+50), 1.2)
	}
	return p
}

// Draw picks a machine's set: a size between min and max (skewed towards
// min), then that many distinct packages weighted by popularity
// (Efraimidis–Spirakis sampling without replacement). The result is
// deterministic for (seed, machine) and sorted.
func (p *Pool) Draw(seed uint64, machine int, min, max int) []int32 {
	r := rand.New(rand.NewPCG(seed, uint64(machine)+1))
	if max > len(p.Packages) {
		max = len(p.Packages)
	}
	if min > max {
		min = max
	}
	u := r.Float64()
	k := min + int(float64(max-min)*u*u)
	type keyed struct {
		key float64
		i   int32
	}
	keys := make([]keyed, len(p.Packages))
	for i, w := range p.weights {
		// log(u)/w orders like u^(1/w): the k largest keys are the sample.
		keys[i] = keyed{math.Log(1-r.Float64()) / w, int32(i)}
	}
	slices.SortFunc(keys, func(a, b keyed) int { return cmp.Compare(b.key, a.key) })
	out := make([]int32, k)
	for i := range out {
		out[i] = keys[i].i
	}
	slices.Sort(out)
	return out
}
