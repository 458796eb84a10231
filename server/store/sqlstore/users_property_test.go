package sqlstore_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/housekeeping"
	"github.com/tallyhq/tally/server/store"
)

// Over random syncs, directory deletions and disables, admin status
// changes, credential issue, expiry and revocation, housekeeping runs, and
// machines' posts naming their primary users (devices), their status
// changes (retirements) and deletions, user seats held never exceed those
// granted; every holder is an Active user with a live credential or a
// device that counts; an Active user with a live credential holds a seat;
// and one with devices alone goes without only while every seat is held.
func TestUserSeatsProperty(t *testing.T) {
	const granted = 3
	outer := t
	var e *userEnv
	var machines []*machine
	round := 0
	rapid.Check(t, func(t *rapid.T) {
		// Each round starts with every user of the last one deleted from
		// the directory and names of its own, so that it sees the same
		// store whatever ran before (a failure shrinks and replays alike);
		// a new database every 10 rounds keeps the users the checks read
		// few.
		if round%10 == 0 {
			if e != nil {
				e.db.Close()
			}
			e = openUsers(outer)
			machines = nil // the last database's
			e.userLicense(t, "U-P", granted)
			if _, err := e.db.AddDirectory(e.ctx, store.Directory{Name: "corp", URL: "ldap://x", BaseDN: "dc=corp", Domain: "CORP", Interval: time.Hour}, "t"); err != nil {
				t.Fatal(err)
			}
		}
		round++
		if _, err := e.db.SyncDirectory(e.ctx, "corp", nil, "t"); err != nil {
			t.Fatal(err)
		}
		// The last round's machines go too, with the users agents added.
		for _, m := range machines {
			if _, err := e.db.DeleteComputer(e.ctx, m.computer, false, "t"); err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Fatal(err)
			}
		}
		// and the users agents added, which no directory lists.
		all, err := e.db.Users(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range all {
			if u.Status != "Deleted" {
				if _, err := e.db.SetUserStatus(e.ctx, u.Key, "Deleted", "t"); err != nil {
					t.Fatal(err)
				}
			}
		}
		if e.held(t) != 0 {
			t.Fatalf("seats held after every user and machine was deleted: %d", e.held(t))
		}
		machines = machines[:0]
		for i := range 3 {
			machines = append(machines, e.machine(t, fmt.Sprintf("r%d-pc%d", round, i)))
		}
		deleted := map[*machine]bool{}
		var names []string
		for i := range 6 {
			names = append(names, fmt.Sprintf("r%d-u%d", round, i))
		}
		dir := map[string]string{} // name → external status (the in-memory directory)
		users := func(t *rapid.T) string {
			return fmt.Sprintf(`CORP\%s`, rapid.SampledFrom(names).Draw(t, "user"))
		}
		sync := func(t *rapid.T) {
			var es []store.DirectoryEntry
			for n, ext := range dir {
				es = append(es, store.DirectoryEntry{GUID: "guid-" + n, Name: n, OU: "ou=staff,dc=corp", External: ext, ExternalWhy: ext})
			}
			if _, err := e.db.SyncDirectory(e.ctx, "corp", es, "t"); err != nil {
				t.Fatal(err)
			}
		}
		t.Repeat(map[string]func(*rapid.T){
			"dir add": func(t *rapid.T) {
				dir[rapid.SampledFrom(names).Draw(t, "name")] = "active"
				sync(t)
			},
			"dir delete": func(t *rapid.T) {
				delete(dir, rapid.SampledFrom(names).Draw(t, "name"))
				sync(t)
			},
			"dir disable": func(t *rapid.T) {
				n := rapid.SampledFrom(names).Draw(t, "name")
				if _, ok := dir[n]; ok {
					dir[n] = "disabled"
				}
				sync(t)
			},
			"issue": func(t *rapid.T) {
				var exp *time.Time
				if rapid.Bool().Draw(t, "expires") {
					x := e.clk.Now().Add(time.Duration(rapid.IntRange(1, 48).Draw(t, "hours")) * time.Hour)
					exp = &x
				}
				kind := rapid.SampledFrom([]string{"token", "qa", "certificate"}).Draw(t, "kind")
				_, err := e.db.AddCredential(e.ctx, store.NewCredential{User: users(t), Product: "inventory", Kind: kind, Expires: exp}, "t")
				if err != nil && !errors.Is(err, store.ErrNoUserSeat) && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
					t.Fatal(err)
				}
			},
			"revoke": func(t *rapid.T) {
				cs, err := e.db.Credentials(e.ctx, users(t), "")
				if err != nil || len(cs) == 0 {
					return
				}
				c := rapid.SampledFrom(cs).Draw(t, "cred")
				if _, err := e.db.EndCredential(e.ctx, c.ID, "revoked", "t"); err != nil && !errors.Is(err, store.ErrConflict) {
					t.Fatal(err)
				}
			},
			"status": func(t *rapid.T) {
				st := rapid.SampledFrom([]string{"Active", "Disabled"}).Draw(t, "status")
				if _, err := e.db.SetUserStatus(e.ctx, users(t), st, "t"); err != nil && !errors.Is(err, store.ErrNoUserSeat) && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
					t.Fatal(err)
				}
			},
			"device post": func(t *rapid.T) {
				m := rapid.SampledFrom(machines).Draw(t, "machine")
				if deleted[m] {
					return
				}
				var primary *protocol.User
				if rapid.IntRange(0, 4).Draw(t, "primary") > 0 {
					primary = &protocol.User{Domain: "CORP", Name: rapid.SampledFrom(names).Draw(t, "user")}
				}
				e.post(t, m, primary, rapid.IntRange(0, 4).Draw(t, "plug-in") == 0)
			},
			"device status": func(t *rapid.T) {
				m := rapid.SampledFrom(machines).Draw(t, "machine")
				st := rapid.SampledFrom([]string{"Retired", "Active", "In Stock"}).Draw(t, "status")
				if _, err := e.db.SetStatus(e.ctx, m.computer, st, "t"); err != nil && !(deleted[m] && errors.Is(err, store.ErrNotFound)) {
					t.Fatal(err)
				}
			},
			"device deleted": func(t *rapid.T) {
				m := rapid.SampledFrom(machines).Draw(t, "machine")
				if _, err := e.db.DeleteComputer(e.ctx, m.computer, false, "t"); err != nil && !(deleted[m] && errors.Is(err, store.ErrNotFound)) {
					t.Fatal(err)
				}
				deleted[m] = true
			},
			"time passes, the sweep runs": func(t *rapid.T) {
				e.clk.Advance(time.Duration(rapid.IntRange(1, 30).Draw(t, "hours")) * time.Hour)
				if _, err := e.db.SweepUsers(e.ctx); err != nil {
					t.Fatal(err)
				}
			},
			"housekeeping": func(t *rapid.T) {
				run := store.HousekeepingRun{Task: rapid.SampledFrom(housekeeping.Tasks).Draw(t, "task"), DryRun: rapid.Bool().Draw(t, "dry"), Days: rapid.IntRange(1, 3).Draw(t, "days")}
				if _, err := e.db.Housekeeping(e.ctx, run, "t"); err != nil {
					t.Fatal(err)
				}
			},
			"": func(t *rapid.T) {
				u, err := e.db.UserSeatUsage(e.ctx)
				if err != nil || len(u) != 1 {
					t.Fatal(u, err)
				}
				if u[0].Held > u[0].Granted || u[0].Granted != granted {
					t.Fatalf("held %d of %d granted", u[0].Held, u[0].Granted)
				}
				rep, err := e.db.UsersUseLicense(e.ctx, "inventory")
				if err != nil {
					t.Fatal(err)
				}
				holders := 0
				for _, r := range rep {
					creds := r.Tokens + r.QA + r.Certificates
					should := r.Status == "Active" && creds+r.Devices > 0
					waits := should && !r.Consumes && creds == 0 && u[0].Held == granted
					if r.Consumes != should && !waits {
						t.Fatalf("%s: holds a seat %v, but status %s with %d tokens, %d Q&A, %d certificates, %d devices; %d of %d seats held",
							r.User, r.Consumes, r.Status, r.Tokens, r.QA, r.Certificates, r.Devices, u[0].Held, granted)
					}
					if r.Consumes {
						holders++
					}
				}
				if holders != u[0].Held {
					t.Fatalf("%d holders, %d held", holders, u[0].Held)
				}
			},
		})
	})
}
