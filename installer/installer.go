// Package installer installs Tally's two binaries as services and removes
// them again: the service definitions (systemd units, a launchd job) are
// embedded here, and a Target writes files under a root folder ("/" for
// this system, another folder for tests and image builders), recording
// each in a manifest so that an uninstall removes exactly what the install
// wrote. See README.md in this folder.
package installer

import "embed"

// Files holds the service definitions, by path (systemd/…, launchd/…).
//
//go:embed systemd/*.service launchd/*.plist
var Files embed.FS
