// Package all links every plug-in of this build into the registry: import
// it for its side effect, as Caddy's standard modules are.
package all

import (
	_ "github.com/tallyhq/tally/agent/plugins/deployment"         // check-ins
	_ "github.com/tallyhq/tally/agent/plugins/inventory"          // software inventory
	_ "github.com/tallyhq/tally/agent/plugins/monitor"            // metrics
	_ "github.com/tallyhq/tally/agent/plugins/patch"              // patch scans
	_ "github.com/tallyhq/tally/agent/plugins/softwaremanagement" // tasks
)
