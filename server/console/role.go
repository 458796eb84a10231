package console

import (
	"net/http"

	"github.com/tallyhq/tally/server/admins"
	"github.com/tallyhq/tally/server/store"
)

// What a mutating control changes, the unit a role is granted: the
// operator's share (computers, activations, leases, maintenance, users and
// their credentials, housekeeping, directory syncs) and the
// admin's (licenses, secrets, admins and their tokens, alert webhooks).
const (
	changeComputers   = "computers"
	changeActivations = "activations"
	changeMaintenance = "maintenance"
	changeUsers       = "users"
	changeLicenses    = "licenses"
	changeSecrets     = "secrets"
	changeAdmins      = "admins"
	changeAlerts      = "alerts"
)

// leastRole is the role each kind of change needs, as on the admin API.
var leastRole = map[string]admins.Role{
	changeComputers:   admins.Operator,
	changeActivations: admins.Operator,
	changeMaintenance: admins.Operator,
	changeUsers:       admins.Operator,
	changeLicenses:    admins.Admin,
	changeSecrets:     admins.Admin,
	changeAdmins:      admins.Admin,
	changeAlerts:      admins.Admin,
}

// canChange is the one permission decision of the console's pages: whether
// the admin signed in on r may change what. Views hide the controls it
// refuses and every mutating route checks it again.
func (c *Console) canChange(r *http.Request, what string) bool {
	p, ok := Viewer(r)
	if !ok {
		return false
	}
	need, known := leastRole[what]
	return known && p.Role.Allows(need)
}

// actor names the admin signed in on r in the audit records of what they do.
func (c *Console) actor(r *http.Request) string {
	if p, ok := Viewer(r); ok && p.Name != "" {
		return p.Name
	}
	return store.ActorOf(r.Context())
}
