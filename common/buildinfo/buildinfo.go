// Package buildinfo tells which build of Tally is running: the version set
// at link time, or the module and VCS information Go embeds.
package buildinfo

import (
	"runtime/debug"
	"sync"
)

// version is set with -ldflags "-X github.com/tallyhq/tally/common/buildinfo.version=…".
var version = ""

var fallback = sync.OnceValue(func() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "0.1.0-dev+" + s.Value[:12]
			}
		}
	}
	return "0.1.0-dev"
})

// Version returns the running build's version string.
func Version() string {
	if version != "" {
		return version
	}
	return fallback()
}
