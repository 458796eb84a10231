package adminapi_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/admins"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/servertest"
	"github.com/tallyhq/tally/server/store"
)

// mutatingBodies holds, for every mutating route, a request that would
// succeed for an admin on the fixture of TestEveryRouteChecksItsRole, so
// that a missing role check would show as a change. A new mutating route
// without an entry fails the test.
var mutatingBodies = map[string]struct{ path, body string }{
	"POST /api/v1/blocked/{id}/unblock":                      {"/api/v1/blocked/1/unblock", ""},
	"POST /api/v1/secrets":                                   {"/api/v1/secrets", `{"name": "x"}`},
	"POST /api/v1/secrets/{id}/revoke":                       {"/api/v1/secrets/SECRET/revoke", ""},
	"POST /api/v1/products":                                  {"/api/v1/products", `{"name": "cad", "kinds": ["node-locked"]}`},
	"DELETE /api/v1/products/{name}":                         {"/api/v1/products/app", ""},
	"POST /api/v1/licenses":                                  {"/api/v1/licenses", `{"files": [{"name": "l.lic", "data": LICENSE}]}`},
	"DELETE /api/v1/licenses/{id}":                           {"/api/v1/licenses/L-1", ""},
	"POST /api/v1/licenses/{id}/allocations":                 {"/api/v1/licenses/L-1/allocations", `{"computer": 1}`},
	"DELETE /api/v1/licenses/{id}/allocations/{computer}":    {"/api/v1/licenses/L-1/allocations/1", ""},
	"POST /api/v1/computers/{id}/status":                     {"/api/v1/computers/1/status", `{"status": "Retired"}`},
	"DELETE /api/v1/computers/{id}":                          {"/api/v1/computers/1", ""},
	"POST /api/v1/computers/{id}/tasks":                      {"/api/v1/computers/1/tasks", `{"action": "collect-now", "force": true}`},
	"POST /api/v1/statuses":                                  {"/api/v1/statuses", `{"name": "Loaned"}`},
	"POST /api/v1/maintenance":                               {"/api/v1/maintenance", ""},
	"POST /api/v1/activations":                               {"/api/v1/activations", `{"product": "app", "quantity": 1}`},
	"POST /api/v1/activations/{id}/deactivate":               {"/api/v1/activations/ACT/deactivate", ""},
	"POST /api/v1/activations/{id}/return/{computer}":        {"/api/v1/activations/ACT/return/1", ""},
	"POST /api/v1/admins":                                    {"/api/v1/admins", `{"name": "eve", "role": "admin"}`},
	"DELETE /api/v1/admins/{name}":                           {"/api/v1/admins/eve", ""},
	"POST /api/v1/admins/{name}/password":                    {"/api/v1/admins/operator/password", `{"password": "a long new password"}`},
	"POST /api/v1/admins/{name}/tokens":                      {"/api/v1/admins/viewer/tokens", `{}`},
	"POST /api/v1/tokens/{id}/revoke":                        {"/api/v1/tokens/TOKEN/revoke", ""},
	"POST /api/v1/applications":                              {"/api/v1/applications", `[{"name": "office", "rules": [{"package": "office*"}]}, {"name": "spare", "rules": [{"package": "spare"}]}]`},
	"DELETE /api/v1/applications/{name}":                     {"/api/v1/applications/spare", ""},
	"POST /api/v1/swlicenses":                                {"/api/v1/swlicenses", `{"name": "office-2027", "type": "device", "duration": "perpetual", "applications": ["office"]}`},
	"PATCH /api/v1/swlicenses/{ref}":                         {"/api/v1/swlicenses/SW-1", `{"extra_entitlements": 5}`},
	"POST /api/v1/swlicenses/{ref}/applications":             {"/api/v1/swlicenses/SW-1/applications", `{"application": "office"}`},
	"POST /api/v1/purchases":                                 {"/api/v1/purchases", `[{"po": "PO-1", "item": "office seats", "quantity": 10, "type": "license", "links": [{"license": "SW-1", "quantity": 10}]}]`},
	"POST /api/v1/purchases/import":                          {"/api/v1/purchases/import", "po,item,quantity,type\nPO-2,office seats,5,license\n"},
	"POST /api/v1/purchases/{id}/links":                      {"/api/v1/purchases/2/links", `{"license": "SW-1", "quantity": 5}`},
	"DELETE /api/v1/purchases/{id}/links/{license}":          {"/api/v1/purchases/2/links/SW-1", ""},
	"POST /api/v1/users":                                     {"/api/v1/users", `{"name": "jdoe", "display": "J. Doe"}`},
	"POST /api/v1/users/{ref}/status":                        {"/api/v1/users/jdoe/status", `{"status": "Disabled"}`},
	"POST /api/v1/users/{ref}/credentials":                   {"/api/v1/users/jdoe/credentials", `{"product": "monitor", "kind": "token"}`},
	"POST /api/v1/credentials/{id}/revoke":                   {"/api/v1/credentials/1/revoke", ""},
	"POST /api/v1/directories":                               {"/api/v1/directories", `{"name": "corp", "url": "ldap://127.0.0.1:9", "base_dn": "dc=example,dc=org"}`},
	"POST /api/v1/directories/{name}/sync":                   {"/api/v1/directories/none/sync", ""},
	"POST /api/v1/housekeeping/{task}":                       {"/api/v1/housekeeping/clear-expired-tokens", `{}`},
	"POST /api/v1/alerts/webhooks":                           {"/api/v1/alerts/webhooks", `{"url": "http://127.0.0.1:9/hook", "secret": "a-long-enough-shared-secret"}`},
	"POST /api/v1/swlicenses/{ref}/allocations":              {"/api/v1/swlicenses/SW-1/allocations", `{"computer": 1}`},
	"DELETE /api/v1/swlicenses/{ref}/allocations/{computer}": {"/api/v1/swlicenses/SW-1/allocations/1", ""},
	"DELETE /api/v1/alerts/webhooks/{id}":                    {"/api/v1/alerts/webhooks/1", ""},
}

// Must hold: without a token every endpoint answers 401 and changes
// nothing; a viewer's token changes nothing (403 on every mutating route);
// an operator's token is refused (403) on every admin-only route. The
// routes come from the server's own registration table, so a new route
// cannot be left out.
func TestEveryRouteChecksItsRole(t *testing.T) {
	srv := servertest.New(t)
	ctx := context.Background()
	db := srv.Store()
	fx := roleFixture(t, srv)

	routes := srv.AdminRoutes()
	if len(routes) < 40 {
		t.Fatalf("only %d routes registered", len(routes))
	}
	before := snapshot(t, db)
	do := func(method, path, body, token string) (int, adminapi.ErrorBody) {
		t.Helper()
		path = strings.NewReplacer("SECRET", fx.secret, "L-1", fx.license, "ACT", fx.activation, "TOKEN", fx.tokenID).Replace(path)
		body = strings.ReplaceAll(body, "LICENSE", fx.licenseJSON)
		req, _ := http.NewRequestWithContext(ctx, method, srv.Addresses().AdminURL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb adminapi.ErrorBody
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &eb)
		return resp.StatusCode, eb
	}
	for _, r := range routes {
		path, body := concrete(r)
		if r.Mutating() {
			mb, ok := mutatingBodies[r.Pattern()]
			if !ok {
				t.Errorf("%s: mutating route without a request in mutatingBodies", r.Pattern())
				continue
			}
			path, body = mb.path, mb.body
			if r.Role <= admins.Viewer {
				t.Errorf("%s: a mutating route open to viewers", r.Pattern())
			}
		}
		if code, eb := do(r.Method, path, body, ""); code != http.StatusUnauthorized || eb.Code != "unauthorized" || eb.Error == "" {
			t.Errorf("%s without a token: %d %+v, want 401 unauthorized", r.Pattern(), code, eb)
		}
		code, eb := do(r.Method, path, body, fx.viewer)
		switch {
		case r.Role > admins.Viewer && (code != http.StatusForbidden || eb.Code != "forbidden" || !strings.Contains(eb.Error, "viewer")):
			t.Errorf("%s as a viewer: %d %+v, want 403 naming the role", r.Pattern(), code, eb)
		case r.Role == admins.Viewer && (code == http.StatusUnauthorized || code == http.StatusForbidden):
			t.Errorf("%s as a viewer: %d, want it allowed", r.Pattern(), code)
		}
		if r.Mutating() && r.Role <= admins.Operator {
			continue // allowed: it would change something (checked at the end)
		}
		code, eb = do(r.Method, path, body, fx.operator)
		switch {
		case r.Role > admins.Operator && code != http.StatusForbidden:
			t.Errorf("%s as an operator: %d %+v, want 403", r.Pattern(), code, eb)
		case r.Role <= admins.Operator && !r.Mutating() && (code == http.StatusUnauthorized || code == http.StatusForbidden):
			t.Errorf("%s as an operator: %d, want it allowed", r.Pattern(), code)
		}
	}
	if code, _ := do("GET", "/api/v1/computers", "", "wrong-token"); code != http.StatusUnauthorized {
		t.Errorf("a wrong token: %d", code)
	}
	if after := snapshot(t, db); !reflect.DeepEqual(before, after) {
		t.Fatalf("refused requests changed something:\nbefore %+v\nafter  %+v", before, after)
	}
	// The same requests succeed for a role high enough (so the refusals
	// above were refusals, not bad requests), each naming its admin in
	// the audit log.
	done := 0
	for _, r := range routes {
		if !r.Mutating() {
			continue
		}
		tok, who := fx.admin, "alice"
		if r.Role == admins.Operator {
			tok, who = fx.operator, "operator"
		}
		mb := mutatingBodies[r.Pattern()]
		last := snapshot(t, db).LastEvent
		code, eb := do(r.Method, mb.path, mb.body, tok)
		if code == http.StatusUnauthorized || code == http.StatusForbidden {
			t.Errorf("%s as %s: %d %+v, want it allowed", r.Pattern(), who, code, eb)
		}
		if code >= 300 {
			// Allowed, but the state left by earlier routes (a computer
			// deleted, a license removed) refuses it: a 404 or 409
			// sentence, as the API answers anyone.
			if code != http.StatusNotFound && code != http.StatusConflict {
				t.Errorf("%s as %s: %d %+v", r.Pattern(), who, code, eb)
			}
			continue
		}
		done++
		ev, err := db.EventPage(ctx, store.EventFilter{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		var actors []string
		for _, e := range ev {
			if e.ID > last {
				actors = append(actors, e.Actor)
			}
		}
		if len(actors) == 0 || !slices.Contains(actors, who) {
			t.Errorf("%s as %s: audit records by %v, want %s among them", r.Pattern(), who, actors, who)
		}
		for _, a := range actors {
			if a != who && a != store.ActorSystem {
				t.Errorf("%s as %s: an audit record by %q", r.Pattern(), who, a)
			}
		}
	}
	if done < len(mutatingBodies)*2/3 {
		t.Errorf("only %d of %d mutating requests succeeded for a role allowed to make them", done, len(mutatingBodies))
	}
}

type fixture struct {
	viewer, operator, admin              string // tokens
	secret, license, activation, tokenID string
	licenseJSON                          string
}

func roleFixture(t *testing.T, srv *servertest.Server) fixture {
	t.Helper()
	ctx := context.Background()
	db := srv.Store()
	var fx fixture
	for _, a := range []struct{ name, role string }{{"viewer", "viewer"}, {"operator", "operator"}, {"alice", "admin"}} {
		if _, err := srv.Admin.AddAdmin(ctx, adminapi.AddAdminRequest{Name: a.name, Role: a.role}); err != nil {
			t.Fatal(err)
		}
		tok, err := srv.Admin.IssueToken(ctx, a.name, "test")
		if err != nil {
			t.Fatal(err)
		}
		switch a.role {
		case "viewer":
			fx.viewer, fx.tokenID = tok.Token, tok.ID
		case "operator":
			fx.operator = tok.Token
		default:
			fx.admin = tok.Token
		}
	}
	sec, err := srv.Admin.CreateSecret(ctx, adminapi.CreateSecretRequest{Name: "s"})
	if err != nil {
		t.Fatal(err)
	}
	fx.secret = sec.ID
	key, _ := identity.NewKey()
	pub := key.Public().(ed25519.PublicKey)
	if _, err := db.Enroll(ctx, store.EnrollParams{NodeID: identity.NodeID(pub), PublicKey: pub, Request: protocol.EnrollRequest{
		Secret: sec.Value, Hostname: "pc-1", Hints: protocol.Hints{InstanceID: "i-1"}}}); err != nil {
		t.Fatal(err)
	}
	iss := srv.TrustNewIssuer(t)
	fx.license = srv.ImportLicense(t, iss, license.Payload{Product: "inventory", Seats: 5}).ID
	lic, _ := json.Marshal(string(iss.Mint(t, license.Payload{Product: "monitor", Seats: 5})))
	fx.licenseJSON = string(lic)
	if _, err := srv.Admin.AddProduct(ctx, store.ApplicationProduct{Name: "app", Kinds: []string{"node-locked"}}); err != nil {
		t.Fatal(err)
	}
	srv.ImportLicense(t, iss, license.Payload{Product: "app", Seats: 5, Kind: license.KindNodeLocked})
	act, err := srv.Admin.CreateActivation(ctx, adminapi.CreateActivationRequest{Product: "app", Quantity: 2})
	if err != nil {
		t.Fatal(err)
	}
	fx.activation = act.ID
	return fx
}

// concrete fills a route's path parameters for a read.
func concrete(r adminapi.Route) (string, string) {
	return strings.NewReplacer("{id}", "1", "{computer}", "1", "{name}", "inventory", "{product}", "inventory").Replace(r.Path), ""
}

type state struct {
	LastEvent   int64
	Admins      []store.AdminAccount
	Tokens      []string
	Secrets     []store.Secret
	Licenses    []store.License
	Activations []store.Activation
	Statuses    []store.Status
	Computers   []store.Computer
}

// snapshot reads what an admin action could change, leaving out the times
// of last use that reading through the API itself moves.
func snapshot(t *testing.T, db interface {
	store.Store
	store.Admins
	store.AuditPages
}) state {
	t.Helper()
	ctx := context.Background()
	var s state
	var err error
	ev, err := db.EventPage(ctx, store.EventFilter{Limit: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) > 0 {
		s.LastEvent = ev[0].ID
	}
	if s.Admins, err = db.ListAdmins(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range s.Admins {
		s.Admins[i].LastSeen = nil
	}
	ts, err := db.AdminTokens(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range ts {
		s.Tokens = append(s.Tokens, fmt.Sprint(tk.ID, tk.Admin, tk.RevokedAt))
	}
	if s.Secrets, err = db.ListSecrets(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Licenses, err = db.Licenses(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Activations, err = db.ActivationList(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Statuses, err = db.Statuses(ctx); err != nil {
		t.Fatal(err)
	}
	page, err := db.ListComputers(ctx, store.ComputerFilter{})
	if err != nil {
		t.Fatal(err)
	}
	s.Computers = page.Computers
	return s
}
