package adminapi

import (
	"net/http"
	"time"

	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/recognize"
	"github.com/tallyhq/tally/server/store"
)

// Examples of the document: one machine, one license, one admin.
var (
	exAt      = time.Date(2026, 12, 6, 9, 30, 0, 0, time.UTC)
	exEarlier = time.Date(2026, 11, 2, 8, 15, 0, 0, time.UTC)
	exEnd     = time.Date(2027, 6, 30, 21, 59, 59, 0, time.UTC)
	exDays    = 206
	exSeat    = store.HeldSeat{Product: "inventory", Kind: "node", License: "L-7kq2m4xw9c1p", Since: exEarlier, Reason: "first qualifying post (plugin-presence)"}
	exComp    = store.Computer{ID: 12, Hostname: "web-01", OS: "linux", Platform: "debian", PlatformVersion: "12.8", Arch: "amd64", Status: "Active",
		FirstSeen: exEarlier, LastSeen: exAt, NodeID: "b5tq3xk2m7…", Seats: []store.HeldSeat{exSeat}}
	exListed  = store.Computer{ID: 12, Hostname: "web-01", OS: "linux", Platform: "debian", PlatformVersion: "12.8", Arch: "amd64", Status: "Active", FirstSeen: exEarlier, LastSeen: exAt}
	exFreed   = store.Change{Seats: []store.SeatChange{{Change: "freed", ComputerID: 12, Hostname: "web-01", Product: "inventory", License: "L-7kq2m4xw9c1p", Reason: "status Retired"}}}
	exSecret  = store.Secret{ID: "s-q3v7xk2a", Name: "site-b", Value: "k2m7q3v7xk2ab5tq3xk2m7q3v7xk2ab5", CreatedAt: exAt, Uses: 0}
	exLicense = store.License{ID: "L-7kq2m4xw9c1p", Product: "inventory", Kind: "node", Duration: "subscription", Seats: 500, Held: 212, IssuedAt: exEarlier,
		ExpiresAt: &exEnd, Issuer: "46ee8dee625c1f65", ImportedAt: exEarlier, EndDates: store.EndDates{ExpiryState: "valid", DaysLeft: &exDays, Expiry: "expires in 206 days"}}
	exAct = store.Activation{ID: "ACT-F6333I3S-RQEXRTTO-6AGNBWED-KJDWMY6I", Product: "cad", License: "L-nnxrp5gcrirpb3ir", Quantity: 5, InUse: 1, Status: "active", CreatedAt: exEarlier,
		Holders: []store.ActivationHolder{{ComputerID: 12, Hostname: "web-01", NodeID: "b5tq3xk2m7…", ActivatedAt: exAt}}}
	exAdmin = store.AdminAccount{Name: "olga", Role: "operator", HasPassword: true, CreatedAt: exEarlier, Tokens: 1, LastSeen: &exAt}
	exToken = store.AdminToken{ID: "t-uzmirq2g", Admin: "olga", Label: "nightly report script", CreatedAt: exAt}
	exEvent = store.Event{ID: 4711, At: exAt, Actor: "olga", Kind: store.EventStatus, ComputerID: 12, Reason: "Active -> Retired"}
	exAll   = [][2]string{{"after", "the next_after of the previous page"}, {"limit", "items a page: 1 to 1000 (default 500)"}}
	exBad   = []int{http.StatusBadRequest}
)

// routeDocs describes every route of the route table; a route missing
// here is missing from the document, which TestEveryRouteIsDocumented
// refuses.
var routeDocs = map[string]Doc{
	"GET /api/v1/users": {Summary: "List users (seed 003): from directories, agents and admins, with internal and external status.",
		Response: []store.User{exUser}},
	"POST /api/v1/users": {Summary: "Add a user by hand (domain and name).",
		Request: store.NewUser{Domain: "CORP", Name: "jdoe", Display: "Jane Doe"}, Status: http.StatusCreated, Response: exUser, Errors: []int{http.StatusBadRequest, http.StatusConflict}},
	"GET /api/v1/users/{ref}": {Summary: "Show a user (by key or domain\\name) with their credentials.",
		Query: [][2]string{{"product", "only this product's credentials"}}, Response: UserDetail{User: exUser, Credentials: []store.UserCredential{}}, Errors: []int{http.StatusNotFound}},
	"POST /api/v1/users/{ref}/status": {Summary: "Set a user's internal status (Active, Disabled, Deleted); the seats it frees are counted.",
		Request: UserStatusRequest{Status: "Disabled"}, Response: FreedAnswer{SeatsFreed: 1}, Errors: []int{http.StatusBadRequest, http.StatusNotFound}},
	"POST /api/v1/users/{ref}/credentials": {Summary: "Issue a token, certificate or security-question record for a product; refused whole when no user seat is free.",
		Request: CredentialRequest{Product: "vpn", Kind: "token", Label: "hardware token 1"}, Status: http.StatusCreated, Response: store.UserCredential{ID: 1, User: exUser.Key, Product: "vpn", Kind: "token"},
		Errors: []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict}},
	"POST /api/v1/credentials/{id}/revoke": {Summary: "Revoke a credential; a user left with none frees their seat at once.",
		Response: FreedAnswer{SeatsFreed: 1}, Errors: []int{http.StatusBadRequest, http.StatusNotFound}},
	"GET /api/v1/directories": {Summary: "List the LDAP directories users are synced from, with their last sync.",
		Response: []store.Directory{exDirectory}},
	"POST /api/v1/directories": {Summary: "Add an LDAP directory (URL, base DN, bind DN and a password file on the server host).",
		Request: exDirectory, Status: http.StatusCreated, Response: exDirectory, Errors: []int{http.StatusBadRequest, http.StatusConflict}},
	"POST /api/v1/directories/{name}/sync": {Summary: "Sync a directory now: users added, changed, disabled or deleted, and the seats freed.",
		Response: store.SyncResult{}, Errors: []int{http.StatusNotFound, http.StatusBadGateway}},
	"POST /api/v1/housekeeping/{task}": {Summary: "Run one of seed 003's housekeeping tasks now (dry_run: report what it would free).",
		Request: HousekeepingRequest{DryRun: true, Days: 90}, Response: store.HousekeepingResult{}, Errors: []int{http.StatusBadRequest}},
	"GET /api/v1/reports/users-use-license": {Summary: "The users-use-license report: each user, credentials and devices, statuses, whether and why they consume.",
		Query: [][2]string{{"product", "only this product"}}, Response: []store.UserUse{}},
	"GET /api/v1/reports/users-use-license/seats": {Summary: "Per-user seats held and granted per product.",
		Response: []store.UserSeatUsage{}},
	"GET /api/v1/applications": {Summary: "List applications with the rules that recognise them in software inventory and where they are installed.",
		Response: []store.Application{exApp}},
	"POST /api/v1/applications": {Summary: "Add applications, all or none; each is recognised at once in every stored software set.",
		Request: []store.Application{{Name: exApp.Name, Publisher: exApp.Publisher, Rules: exApp.Rules}}, Status: http.StatusCreated,
		Response: []store.Application{exApp}, Errors: []int{http.StatusBadRequest, http.StatusConflict}},
	"GET /api/v1/applications/{name}": {Summary: "Show an application and the computers where it is installed.",
		Response: exApp, Errors: []int{http.StatusNotFound}},
	"DELETE /api/v1/applications/{name}": {Summary: "Remove an application and its recognitions.", Status: http.StatusNoContent,
		Errors: []int{http.StatusNotFound, http.StatusConflict}},
	"GET /api/v1/swlicenses": {Summary: "List software licenses with their consumption, computed live from inventory.",
		Response: []store.SoftwareLicense{exSWLicense}},
	"POST /api/v1/swlicenses": {Summary: "Add a software license of one or more applications.",
		Request: exSWLicense, Status: http.StatusCreated, Response: exSWLicense, Errors: []int{http.StatusBadRequest, http.StatusConflict}},
	"GET /api/v1/swlicenses/{ref}": {Summary: "Show a software license (by ID or name) with its purchases.",
		Response: exSWLicense, Errors: []int{http.StatusNotFound}},
	"PATCH /api/v1/swlicenses/{ref}": {Summary: "Change a software license's terms (the fields given).",
		Request: store.SoftwareLicenseChange{}, Response: exSWLicense, Errors: []int{http.StatusBadRequest, http.StatusNotFound}},
	"POST /api/v1/swlicenses/{ref}/applications": {Summary: "Link one more application to a software license.",
		Request: LinkApplicationRequest{Application: exApp.Name}, Response: exSWLicense, Errors: []int{http.StatusBadRequest, http.StatusNotFound}},
	"POST /api/v1/swlicenses/{ref}/allocations": {Summary: "Allocate a software license to a computer: it consumes an entitlement even before the application is recognised there.",
		Request: AllocateRequest{Computer: 12}, Response: exSWLicense, Errors: []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict}},
	"DELETE /api/v1/swlicenses/{ref}/allocations/{computer}": {Summary: "End a software license's allocation to a computer.",
		Response: exSWLicense, Errors: []int{http.StatusBadRequest, http.StatusNotFound}},
	"GET /api/v1/purchases": {Summary: "List purchases with their links to licenses.",
		Response: []store.PurchaseView{exPurchase}},
	"POST /api/v1/purchases": {Summary: "Add purchases, all or none, each optionally split across licenses.",
		Request: []store.NewPurchase{{Purchase: exPurchase.Purchase, Links: exPurchase.Links}}, Status: http.StatusCreated,
		Response: []store.PurchaseView{exPurchase}, Errors: []int{http.StatusBadRequest, http.StatusNotFound}},
	"POST /api/v1/purchases/import": {Summary: "Import purchases from a CSV body (text/csv), all or none; a bad row names its line.",
		Status: http.StatusCreated, Response: []store.PurchaseView{exPurchase}, Errors: []int{http.StatusBadRequest, http.StatusNotFound}},
	"GET /api/v1/purchases/{id}": {Summary: "Show a purchase and its links.",
		Response: exPurchase, Errors: []int{http.StatusBadRequest, http.StatusNotFound}},
	"POST /api/v1/purchases/{id}/links": {Summary: "Give part of a purchase to a license (never more than the purchase's quantity in all).",
		Request: LinkPurchaseRequest{License: "SW-1", Quantity: 50}, Response: exPurchase, Errors: []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict}},
	"DELETE /api/v1/purchases/{id}/links/{license}": {Summary: "Take a purchase's part back from a license.",
		Response: exPurchase, Errors: []int{http.StatusBadRequest, http.StatusNotFound}},
	"GET /api/v1/reports/expiry": {Summary: "The expiry listing of seed 004: licenses and subscription or maintenance purchases expiring in a window, or overdue.",
		Query:    [][2]string{{"within", "a window such as 7d, 30d, 90d (default 30d)"}, {"overdue", "true: only what has already expired"}, {"format", "json (default) or csv"}},
		Response: ExpiryReport{}, Errors: exBad},
	"GET /api/v1/reports/compliance": {Summary: "The compliance report: per license, purchased, consumed, shortfall, maintenance and status, with totals.",
		Query:    [][2]string{{"over_percent", "unused entitlements above this percent are over-licensed (default 5)"}, {"format", "json (default) or csv"}},
		Response: positions.ComplianceReport{}, Errors: exBad},
	"GET /api/v1/alerts/webhooks": {Summary: "List the receivers of alerts (their secrets are not shown).",
		Response: []store.Webhook{{ID: 1, URL: "https://hooks.example.com/tally"}}},
	"POST /api/v1/alerts/webhooks": {Summary: "Add a receiver of alerts; bodies are signed with HMAC-SHA256 of the secret (shown once).",
		Request: AddWebhookRequest{URL: "https://hooks.example.com/tally", Secret: "a-long-shared-secret"}, Status: http.StatusCreated,
		Response: store.Webhook{ID: 1, URL: "https://hooks.example.com/tally", Secret: "a-long-shared-secret"}, Errors: []int{http.StatusBadRequest}},
	"DELETE /api/v1/alerts/webhooks/{id}": {Summary: "Remove a receiver of alerts: its pending deliveries are given up, its delivery log stays.",
		Response: store.Webhook{ID: 1, URL: "https://hooks.example.com/tally"}, Errors: []int{http.StatusBadRequest, http.StatusNotFound}},
	"GET /api/v1/alerts/deliveries": {Summary: "The delivery log of alerts: each try, its answer and the next retry.",
		Query: [][2]string{{"limit", "entries: 1 to 10000"}}, Response: []store.AlertDelivery{}, Errors: exBad},
	"GET /api/v1/whoami": {Summary: "Tell which admin the token belongs to, and its role.",
		Response: Principal{Name: "olga", RoleName: "operator", Via: "token", TokenID: "t-uzmirq2g"}},
	"GET /api/v1/computers": {Summary: "List live computers, a page at a time, by ID.",
		Query: [][2]string{{"hostname", "substring or glob (web-*), case-insensitive"}, {"status", "a status name"}, {"product", "holds a seat of this product"},
			{"plugin", "has this plug-in"}, {"not_seen_since", "a duration (720h, 30d) or a date"}, {"flag", "duplicate-hints or agent-uninstalled"},
			{"after", "the next_after of the previous page"}, {"limit", "computers a page: 1 to 10000 (default 500)"}},
		Response: store.ComputerPage{Computers: []store.Computer{exListed}, Next: 12}, Errors: exBad},
	"GET /api/v1/computers/{id}": {Summary: "Show a computer (by ID, hostname or machine ID): its basic inventory and seats.",
		Response: exComp, Errors: []int{http.StatusNotFound, http.StatusConflict}},
	"GET /api/v1/blocked": {Summary: "List the machines deleted with block.",
		Response: []store.Blocked{{ComputerID: 9, Hostname: "stolen-laptop", At: exAt, By: "alice", Hints: []store.BlockedHint{{Kind: "serial", Value: "PF3K2M7Q"}}}}},
	"POST /api/v1/blocked/{id}/unblock": {Summary: "Let a blocked machine enroll again, as a new computer.",
		Response: store.Blocked{ComputerID: 9, Hostname: "stolen-laptop", At: exAt, By: "alice", Hints: []store.BlockedHint{{Kind: "serial", Value: "PF3K2M7Q"}}}, Errors: []int{http.StatusNotFound}},
	"GET /api/v1/enroll-info": {Summary: "The line that enrolls an agent: server address, fingerprint and an enrollment secret.",
		Query:    [][2]string{{"secret", "the ID or name of the secret to hand out (default: the newest active one)"}},
		Response: EnrollInfo{Server: "tally.example.com:4433", Fingerprint: "8c7b…f69e", Secret: exSecret.Value, SecretID: exSecret.ID, Command: "tally-agent enroll --server tally.example.com:4433 --fingerprint 8c7b…f69e --secret " + exSecret.Value},
		Errors:   []int{http.StatusNotFound, http.StatusConflict}},
	"GET /api/v1/secrets": {Summary: "List enrollment secrets with their values and use counts.", Query: exAll,
		Response: SecretPage{Secrets: []store.Secret{exSecret}}, Errors: exBad},
	"POST /api/v1/secrets": {Summary: "Create an enrollment secret (random unless a value is given).",
		Request: CreateSecretRequest{Name: "site-b", Expires: "30d"}, Status: http.StatusCreated, Response: exSecret, Errors: []int{http.StatusBadRequest, http.StatusConflict}},
	"POST /api/v1/secrets/{id}/revoke": {Summary: "Revoke an enrollment secret: it enrolls no more machines.",
		Response: store.Secret{ID: exSecret.ID, Name: "site-b", Value: exSecret.Value, CreatedAt: exEarlier, RevokedAt: &exAt, Uses: 14}, Errors: []int{http.StatusNotFound}},
	"GET /api/v1/events": {Summary: "Read the audit log, newest page first; each page is oldest first.",
		Query: [][2]string{{"since", "a time (RFC 3339), a day (2026-11-25) or a duration back (24h, 7d)"}, {"computer", "a computer ID"}, {"product", "a product"},
			{"kind", "an event kind (seat.consumed)"}, {"before", "the next_before of the previous page"}, {"limit", "events a page: 1 to 1000 (default 500)"}},
		Response: EventPage{Events: []store.Event{exEvent}, NextBefore: 4711}, Errors: exBad},
	"GET /api/v1/products": {Summary: "List the product catalog.",
		Response: []Product{{Name: "inventory", Title: "Inventory 7.x", Plugin: "inventory", Qualifying: []string{"plugin-presence"}, OverCount: []string{"discard-data"},
			FreedBy: "any-non-active", PluginRemovalFrees: true, Source: "builtin"}}},
	"GET /api/v1/products/{name}": {Summary: "Show one product's rules.",
		Response: Product{Name: "inventory", Title: "Inventory 7.x", Plugin: "inventory", Qualifying: []string{"plugin-presence"}, OverCount: []string{"discard-data"},
			FreedBy: "any-non-active", PluginRemovalFrees: true, Source: "builtin"}, Errors: []int{http.StatusNotFound}},
	"POST /api/v1/products": {Summary: "Add an application product (licensed by Activation IDs or leases, no plug-in).",
		Request: store.ApplicationProduct{Name: "cad", Title: "CAD Suite", Kinds: []string{"node-locked", "concurrent"}}, Status: http.StatusCreated,
		Response: AddedProduct{Product: Product{Name: "cad", Title: "CAD Suite", Application: true, Kinds: []string{"node-locked", "concurrent"}, FreedBy: "none", Source: "admin"}},
		Errors:   []int{http.StatusBadRequest, http.StatusConflict}},
	"DELETE /api/v1/products/{name}": {Summary: "Remove an application product that no license names.", Status: http.StatusNoContent,
		Errors: []int{http.StatusNotFound, http.StatusConflict}},
	"GET /api/v1/licenses": {Summary: "List licenses with the seats each grants and carries.", Query: exAll,
		Response: LicensePage{Licenses: []store.License{exLicense}}, Errors: exBad},
	"POST /api/v1/licenses": {Summary: "Import signed license files, all or none.",
		Request:  ImportRequest{Files: []LicenseFile{{Name: "inventory-2027.lic", Data: "-----BEGIN TALLY LICENSE-----\n…\n-----END TALLY LICENSE-----\n"}}},
		Response: ImportResponse{Imported: []store.License{exLicense}}, Errors: []int{http.StatusBadRequest, http.StatusUnprocessableEntity}},
	"DELETE /api/v1/licenses/{id}": {Summary: "Remove a license: its seats move to other licenses of the product with room, or are freed.",
		Response: store.Change{Seats: []store.SeatChange{{Change: "moved", ComputerID: 12, Hostname: "web-01", Product: "inventory", License: "L-2b8d0c4e6f1a", From: "L-7kq2m4xw9c1p", Reason: "license removed"}}},
		Errors:   []int{http.StatusNotFound}},
	"POST /api/v1/licenses/{id}/allocations": {Summary: "Reserve a seat of a license for a computer.",
		Request: AllocateRequest{Computer: 12}, Response: store.Change{Seats: []store.SeatChange{}, Message: "allocated a seat of L-7kq2m4xw9c1p to computer 12"},
		Errors: []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict}},
	"DELETE /api/v1/licenses/{id}/allocations/{computer}": {Summary: "End a reservation.",
		Response: store.Change{Seats: []store.SeatChange{}, Message: "computer 12 no longer has a seat reserved on L-7kq2m4xw9c1p"}, Errors: []int{http.StatusBadRequest, http.StatusNotFound}},
	"POST /api/v1/computers/{id}/status": {Summary: "Set a computer's status; the seats its products' rules name are freed at once.",
		Request: StatusRequest{Status: "Retired"}, Response: exFreed, Errors: []int{http.StatusBadRequest, http.StatusNotFound}},
	"DELETE /api/v1/computers/{id}": {Summary: "Delete a computer: every seat freed, its key revoked; block=true refuses the machine for good.",
		Query: [][2]string{{"block", "true: refuse this machine's keys and hints at any later enrollment"}}, Response: exFreed, Errors: []int{http.StatusBadRequest, http.StatusNotFound}},
	"GET /api/v1/computers/{id}/why/{product}": {Summary: "Explain why a computer holds, or lacks, a product's seat.",
		Response: store.Why{ComputerID: 12, Hostname: "web-01", Product: "inventory", Holds: true, Status: "Active", Plugin: "inventory 7.2.1",
			Seat:   &store.Holder{ComputerID: 12, Hostname: "web-01", License: "L-7kq2m4xw9c1p", Since: exEarlier, Reason: "first qualifying post (plugin-presence)"},
			Answer: "web-01 holds a seat of inventory on L-7kq2m4xw9c1p since 2026-11-02: its first post listing the inventory plug-in.", Events: []store.Event{}},
		Errors: []int{http.StatusBadRequest, http.StatusNotFound}},
	"GET /api/v1/computers/{id}/software": {Summary: "List a computer's software inventory.",
		Response: []Package{{Name: "openssl", Version: "3.0.15-1~deb12u1", Arch: "amd64", Source: "dpkg"}}, Errors: []int{http.StatusBadRequest, http.StatusNotFound}},
	"POST /api/v1/computers/{id}/tasks": {Summary: "Queue an agent action for a computer.",
		Request: TaskRequest{Action: "collect-now"}, Status: http.StatusCreated, Response: TaskResponse{ID: "task-3f9a"},
		Errors: []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict}},
	"GET /api/v1/statuses": {Summary: "List computer statuses and how many computers have each.",
		Response: []store.Status{{Name: "Active", Description: "in service; the only status in which a computer consumes licenses", Builtin: true, Computers: 212}}},
	"POST /api/v1/statuses": {Summary: "Add a computer status.",
		Request: AddStatusRequest{Name: "Loaned", Description: "lent to a partner"}, Status: http.StatusCreated,
		Response: store.Status{Name: "Loaned", Description: "lent to a partner"}, Errors: []int{http.StatusBadRequest, http.StatusConflict}},
	"POST /api/v1/maintenance": {Summary: "Run the maintenance job now: expiry, stale-node policy, drift repair, purge.",
		Response: store.MaintenanceReport{At: exAt, Drift: []string{}, Repaired: []string{}, Expired: []store.SeatChange{}, Missing: []int64{}, Freed: []store.SeatChange{},
			Duration: "41ms", Expiring: []store.Expiring{}}},
	"GET /api/v1/usage": {Summary: "License usage per product and kind: granted, consumed, waiting, compliance, holders.",
		Query: [][2]string{{"product", "only this product"}},
		Response: []store.Usage{{Product: "inventory", Title: "Inventory 7.x", Kind: "node", Granted: 500, Consumed: 212, Available: 288, Compliant: true,
			Discards: map[string]int64{}, Licenses: []store.LicenseUsage{{License: exLicense, Available: 288}}, Holders: []store.Holder{}}}},
	"GET /api/v1/activations": {Summary: "List Activation IDs with their holders.", Query: exAll,
		Response: ActivationPage{Activations: []store.Activation{exAct}}, Errors: exBad},
	"POST /api/v1/activations": {Summary: "Create an Activation ID on a node-locked license with room.",
		Request: CreateActivationRequest{Product: "cad", Quantity: 5, Expires: "2027-06-30"}, Status: http.StatusCreated, Response: exAct,
		Errors: []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict}},
	"GET /api/v1/activations/{id}": {Summary: "Show an Activation ID.", Response: exAct, Errors: []int{http.StatusNotFound}},
	"POST /api/v1/activations/{id}/deactivate": {Summary: "Deactivate an Activation ID: no new activations, every seat returned.",
		Response: store.Change{Seats: []store.SeatChange{{Change: "freed", Kind: "node-locked", ComputerID: 12, Hostname: "web-01", Product: "cad", License: "L-nnxrp5gcrirpb3ir", Reason: "activation deactivated"}}},
		Errors:   []int{http.StatusNotFound}},
	"POST /api/v1/activations/{id}/return/{computer}": {Summary: "Return the seat a (lost) computer holds on an Activation ID.",
		Response: store.Change{Seats: []store.SeatChange{{Change: "freed", Kind: "node-locked", ComputerID: 12, Hostname: "web-01", Product: "cad", License: "L-nnxrp5gcrirpb3ir", Reason: "returned by an admin"}}},
		Errors:   []int{http.StatusBadRequest, http.StatusNotFound}},
	"GET /api/v1/leases": {Summary: "List the concurrent leases held, and when each runs out.", Query: exAll,
		Response: LeasePage{Leases: []store.Lease{{Product: "cad", License: "L-c0ncurr3nt", ComputerID: 12, Hostname: "web-01", GrantedAt: exAt, ExpiresAt: exAt.Add(5 * time.Minute)}}},
		Errors:   exBad},
	"GET /api/v1/admins": {Summary: "List named admins: role, password set, tokens, last use.", Query: exAll,
		Response: AdminPage{Admins: []store.AdminAccount{exAdmin}}, Errors: exBad},
	"POST /api/v1/admins": {Summary: "Add a named admin, with a console password if given.",
		Request: AddAdminRequest{Name: "olga", Role: "operator", Password: "correct horse battery staple"}, Status: http.StatusCreated,
		Response: store.AdminAccount{Name: "olga", Role: "operator", HasPassword: true, CreatedAt: exAt}, Errors: []int{http.StatusBadRequest, http.StatusConflict}},
	"DELETE /api/v1/admins/{name}": {Summary: "Remove an admin: its tokens stop working and its console sessions end.", Status: http.StatusNoContent,
		Errors: []int{http.StatusNotFound, http.StatusConflict}},
	"POST /api/v1/admins/{name}/password": {Summary: "Set an admin's console password; its console sessions end.",
		Request: PasswordRequest{Password: "correct horse battery staple"}, Status: http.StatusNoContent, Errors: []int{http.StatusBadRequest, http.StatusNotFound}},
	"POST /api/v1/admins/{name}/tokens": {Summary: "Issue an API token for an admin; the token is in this answer only.",
		Request: IssueTokenRequest{Label: "nightly report script"}, Status: http.StatusCreated,
		Response: IssuedToken{AdminToken: exToken, Token: "tly_Zk3…"}, Errors: []int{http.StatusBadRequest, http.StatusNotFound}},
	"GET /api/v1/tokens": {Summary: "List API tokens (never the tokens themselves), of one admin or all.",
		Query:    append([][2]string{{"admin", "only this admin's"}}, exAll...),
		Response: TokenPage{Tokens: []store.AdminToken{exToken}}, Errors: exBad},
	"POST /api/v1/tokens/{id}/revoke": {Summary: "Revoke an API token.",
		Response: store.AdminToken{ID: exToken.ID, Admin: "olga", Label: exToken.Label, CreatedAt: exEarlier, RevokedAt: &exAt}, Errors: []int{http.StatusNotFound}},
	"GET /metrics": {Summary: "Prometheus metrics of the server.",
		RawResponse: "# HELP tally_seats_held Seats held per product.\n# TYPE tally_seats_held gauge\ntally_seats_held{product=\"inventory\"} 212\n"},
}

// Examples of the license-position routes (seed 004).
var (
	exApp = store.Application{ID: 1, Name: "office", Publisher: "Example Corp",
		Rules: []recognize.Rule{{Package: "office-suite*", Versions: ">=7, <8", Source: "dpkg"}}, Installed: 412, Consuming: 409}
	exSWLicense = store.SoftwareLicense{License: positions.License{ID: "SW-1", Kind: "software", Name: "office-2027", Product: "office",
		Publisher: "Example Corp", Type: "device", Duration: "subscription"}, Applications: []string{"office"}, Allocations: []int64{12}}
	exPurchase = store.PurchaseView{Purchase: positions.Purchase{ID: 7, PO: "PO-2026-118", Item: "Office subscription", Vendor: "Example Reseller",
		Quantity: 450, Type: "subscription"}, Links: []positions.Link{}}
)

// Examples of the per-user license routes (seed 003).
var (
	exUser      = store.User{ID: 3, Key: "entryUUID:7f1c…", Domain: "CORP", Name: "jdoe", Display: "Jane Doe", Directory: "corp", Source: "directory", Status: "Active", External: "active", CreatedAt: exEarlier, UpdatedAt: exAt}
	exDirectory = store.Directory{ID: 1, Name: "corp", URL: "ldaps://dc1.corp.example.com", BaseDN: "dc=corp,dc=example,dc=com",
		BindDN: "cn=tally,ou=services,dc=corp,dc=example,dc=com", PasswordFile: "/etc/tally/ldap.pw", Domain: "CORP", Interval: time.Hour}
)
