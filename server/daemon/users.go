package daemon

import (
	"net/http"

	"github.com/tallyhq/tally/server/adminapi"
)

// extraRoutes are the admin API routes mounted beside adminapi's own: the
// metrics, and the per-user license routes.
func (d *Daemon) extraRoutes() map[string]http.Handler {
	routes := adminapi.UsersRoutes(adminapi.UsersConfig{Store: d.db, Logger: d.log})
	routes["GET /metrics"] = d.metrics.Handler()
	return routes
}
