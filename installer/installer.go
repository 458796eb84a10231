// Package installer holds the service definitions that run Tally's two
// binaries as services: systemd units for Linux and a launchd job for
// macOS, embedded so that a packaging step or an install command can write
// them out. See README.md in this folder for installing and uninstalling.
package installer

import "embed"

// Files holds the service definitions, by path (systemd/…, launchd/…).
//
//go:embed systemd/*.service launchd/*.plist
var Files embed.FS
