package cli

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/common/cliusage"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/directory"
	"github.com/tallyhq/tally/server/housekeeping"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/users"
)

// usersCommand manages the users of per-user licenses (seed 003).
func (m *Main) usersCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "users", Aliases: []string{"user"}, Short: "Manage the users of per-user licenses (add, list, show, disable, enable, remove, token, credential)"}
	cmd.AddCommand(m.usersAdd(), m.usersList(), m.usersShow(),
		m.usersSetStatus("disable", users.Disabled, "Set a user's internal status to Disabled: its seats are freed, its credentials kept"),
		m.usersSetStatus("enable", users.Active, "Set a user's internal status to Active: it consumes again if it holds an active credential"),
		m.usersSetStatus("remove", users.Deleted, "Delete a user: its credentials end and its seats are freed; it stays listed by name"),
		m.usersToken(), m.usersCredential())
	return cmd
}

func (m *Main) usersAdd() *cobra.Command {
	var c conn
	var display string
	cmd := &cobra.Command{
		Use:   `add [DOMAIN\]NAME [--display NAME]`,
		Short: "Add a user by hand (directory users come from 'directory sync')",
		Args:  exactArgs(1, `users add [DOMAIN\]NAME`),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, n := users.SplitName(args[0])
			if err := users.CheckName("user name", n); err != nil {
				return cliusage.Error(cmd, err)
			}
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			u, err := cl.AddUser(cmd.Context(), store.NewUser{Domain: d, Name: n, Display: display})
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), u)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added user %s (key %s), internal status %s\n", nameOf(u), u.Key, u.Status)
			return nil
		},
	}
	cmd.Flags().StringVar(&display, "display", "", "display name")
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func nameOf(u store.User) string {
	if u.Domain == "" {
		return u.Name
	}
	return u.Domain + `\` + u.Name
}

func (m *Main) usersList() *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List users with their internal and external status side by side",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			us, err := cl.Users(cmd.Context())
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), us)
			}
			t := newTable(cmd.OutOrStdout(), "USER", "DISPLAY", "INTERNAL", "EXTERNAL", "DIRECTORY", "OU", "GROUPS")
			for _, u := range us {
				ext := dash(u.ExternalWhy)
				if u.External == "" {
					ext = "not in a directory"
				}
				t.row(nameOf(u), dash(u.Display), u.Status, ext, dash(u.Directory), dash(u.OU), dash(strings.Join(u.Groups, ",")))
			}
			return t.flush()
		},
	}
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func (m *Main) printCredentials(w io.Writer, cs []store.UserCredential) error {
	t := newTable(w, "ID", "PRODUCT", "KIND", "LABEL", "STATE", "ISSUED", "EXPIRES", "LAST USED")
	for _, c := range cs {
		state := "active"
		switch {
		case c.EndedAt != nil:
			state = "ended: " + c.EndReason
		case !c.Active:
			state = "expired (cleared at the next sweep)"
		}
		exp, used := "never", "never"
		if c.ExpiresAt != nil {
			exp = m.fmtTime(*c.ExpiresAt)
		}
		if c.LastUsedAt != nil {
			used = m.fmtTime(*c.LastUsedAt)
		}
		t.row(strconv.FormatInt(c.ID, 10), c.Product, c.Kind, dash(c.Label), state, m.fmtTime(c.IssuedAt), exp, used)
	}
	return t.flush()
}

func (m *Main) usersShow() *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use:   "show USER",
		Short: "Show a user, its statuses and its credentials",
		Args:  exactArgs(1, "users show USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			u, err := cl.User(cmd.Context(), args[0], "")
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), u)
			}
			w := cmd.OutOrStdout()
			ext := dash(u.ExternalWhy)
			if u.External == "" {
				ext = "not in a directory"
			}
			fmt.Fprintf(w, "user:      %s (%s)\nkey:       %s\ninternal:  %s\nexternal:  %s\ndirectory: %s\nDN:        %s\ngroups:    %s\n\n",
				nameOf(u.User), dash(u.Display), u.Key, u.Status, ext, dash(u.Directory), dash(u.DN), dash(strings.Join(u.Groups, ", ")))
			return m.printCredentials(w, u.Credentials)
		},
	}
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func (m *Main) usersSetStatus(verb, status, short string) *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use:   verb + " USER",
		Short: short,
		Args:  exactArgs(1, "users "+verb+" USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			a, err := cl.SetUserStatus(cmd.Context(), args[0], status)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), a)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s: internal status %s, %d seats freed\n", args[0], status, a.SeatsFreed)
			return nil
		},
	}
	m.addConnFlags(cmd, &c, true)
	return cmd
}

// parseExpires reads --expires: a time (RFC 3339), a day (its end, UTC),
// or a duration from now in days or hours (90d, 12h).
func parseExpires(s string, now time.Time) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return &t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		t = t.Add(24*time.Hour - time.Second)
		return &t, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n > 0 && n <= 36500 {
			t := now.Add(time.Duration(n) * 24 * time.Hour)
			return &t, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 && d <= 36500*24*time.Hour {
		t := now.Add(d)
		return &t, nil
	}
	return nil, fmt.Errorf("--expires %q: give a time (2027-01-31T18:00:00Z), a day (2027-01-31) or a duration from now (90d, 12h)", s)
}

func (m *Main) usersToken() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Issue, revoke and list a user's tokens for a product"}
	var ic conn
	var product, expires, label string
	issue := &cobra.Command{
		Use:   "issue USER --product P [--expires WHEN] [--label TEXT]",
		Short: "Issue a token: the user takes a seat of P if it holds none, or the token is refused",
		Args:  exactArgs(1, "users token issue USER --product P"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return m.addCredential(cmd, &ic, args[0], users.Token, product, label, expires)
		},
	}
	issue.Flags().StringVar(&product, "product", "", "the per-user product (required)")
	issue.Flags().StringVar(&expires, "expires", "", "expiry: a time, a day or a duration from now (90d); default never")
	issue.Flags().StringVar(&label, "label", "", "a note shown with the token")
	_ = issue.MarkFlagRequired("product")
	m.addConnFlags(issue, &ic, true)
	cmd.AddCommand(issue, m.credentialRevoke("revoke", "Revoke a token: the user's seat is freed with its last active credential"), m.credentialList("list", users.Token))
	return cmd
}

func (m *Main) addCredential(cmd *cobra.Command, c *conn, user, kind, product, label, expires string) error {
	exp, err := parseExpires(expires, m.now())
	if err != nil {
		return cliusage.Error(cmd, err)
	}
	cl, err := m.client(c)
	if err != nil {
		return err
	}
	cr, err := cl.AddCredential(cmd.Context(), user, adminapi.CredentialRequest{Product: product, Kind: kind, Label: label, Expires: exp})
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(cmd.OutOrStdout(), cr)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s %d for %s, product %s, expires %s\n", kind, cr.ID, cr.User, cr.Product, expiryText(cr.ExpiresAt))
	if cr.Secret != "" {
		fmt.Fprintf(cmd.OutOrStdout(), "token (shown once): %s\n", cr.Secret)
	}
	return nil
}

func (m *Main) credentialRevoke(use, short string) *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use:   use + " ID",
		Short: short,
		Args:  exactArgs(1, "users token "+use+" ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return cliusage.Error(cmd, fmt.Errorf("%q is not a credential ID (a positive number, as 'users token list USER' shows)", args[0]))
			}
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			a, err := cl.RevokeCredential(cmd.Context(), id)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), a)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "credential %d ended, %d seats freed\n", id, a.SeatsFreed)
			return nil
		},
	}
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func (m *Main) credentialList(use, kind string) *cobra.Command {
	var c conn
	var product string
	cmd := &cobra.Command{
		Use:   use + " USER [--product P]",
		Short: "List a user's " + kind + "s with expiry and last use",
		Args:  exactArgs(1, "users token "+use+" USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			u, err := cl.User(cmd.Context(), args[0], product)
			if err != nil {
				return err
			}
			var cs []store.UserCredential
			for _, x := range u.Credentials {
				if kind == "" || x.Kind == kind {
					cs = append(cs, x)
				}
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), cs)
			}
			return m.printCredentials(cmd.OutOrStdout(), cs)
		},
	}
	cmd.Flags().StringVar(&product, "product", "", "only this product's")
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func (m *Main) usersCredential() *cobra.Command {
	cmd := &cobra.Command{Use: "credential", Short: "Add and remove a user's certificates and security-question (Q&A) records"}
	var ac conn
	var product, expires, label, kind string
	add := &cobra.Command{
		Use:   "add USER --kind certificate|qa --product P [--expires WHEN] [--label TEXT]",
		Short: "Record a certificate or Q&A record: the user takes a seat of P if it holds none, or it is refused",
		Args:  exactArgs(1, "users credential add USER --kind certificate|qa --product P"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if kind != users.Certificate && kind != users.QA {
				return cliusage.Error(cmd, fmt.Errorf("--kind %q: give certificate or qa (tokens: 'users token issue')", kind))
			}
			return m.addCredential(cmd, &ac, args[0], kind, product, label, expires)
		},
	}
	add.Flags().StringVar(&kind, "kind", "", "certificate or qa (required)")
	add.Flags().StringVar(&product, "product", "", "the per-user product (required)")
	add.Flags().StringVar(&expires, "expires", "", "expiry: a time, a day or a duration from now (365d); default never")
	add.Flags().StringVar(&label, "label", "", "a note, e.g. the certificate's subject")
	_ = add.MarkFlagRequired("kind")
	_ = add.MarkFlagRequired("product")
	m.addConnFlags(add, &ac, true)
	cmd.AddCommand(add, m.credentialRevoke("remove", "Remove a certificate or Q&A record"), m.credentialList("list", ""))
	return cmd
}

// directoryCommand manages LDAP directories users are synced from.
func (m *Main) directoryCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "directory", Aliases: []string{"directories"}, Short: "Manage LDAP directories users are synced from (add, list, sync)"}
	var ac conn
	var d store.Directory
	add := &cobra.Command{
		Use:   "add NAME --url ldap://HOST --base-dn DN [--bind-dn DN --password-file FILE] [--filter F] [--group-filter F] [--domain D] [--start-tls] [--interval 1h]",
		Short: "Add a directory; it is synced at once by the server's scheduler and then on its interval",
		Long: `Add an LDAP directory (Microsoft AD, OpenLDAP, 389 DS). The password file is read by
the server, on its host, at each sync. Users are keyed by objectGUID (AD) or
entryUUID (OpenLDAP); accounts disabled there (userAccountControl,
pwdAccountLockedTime, nsAccountLock) show external status disabled; users gone
from the directory are deleted, and their seats freed, at the sync that finds
them gone. ldaps:// and --start-tls verify the directory's certificate and host
name against the CAs of the server's --ldap-ca-file (default: the system's).`,
		Args: exactArgs(1, "directory add NAME --url URL --base-dn DN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			d.Name = args[0]
			if err := directory.Check(&d); err != nil {
				return cliusage.Error(cmd, err)
			}
			cl, err := m.client(&ac)
			if err != nil {
				return err
			}
			out, err := cl.AddDirectory(cmd.Context(), d)
			if err != nil {
				return err
			}
			if ac.json {
				return printJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added directory %s (%s, base %s), synced every %s\n", out.Name, out.URL, out.BaseDN, out.Interval)
			return nil
		},
	}
	f := add.Flags()
	f.StringVar(&d.URL, "url", "", "ldap://host[:port] or ldaps://host[:port] (required)")
	f.StringVar(&d.BaseDN, "base-dn", "", "where users are searched, e.g. dc=example,dc=org (required)")
	f.StringVar(&d.BindDN, "bind-dn", "", "account to bind as (DN, or user@domain for AD)")
	f.StringVar(&d.PasswordFile, "password-file", "", "file on the server's host holding the bind password")
	f.StringVar(&d.Filter, "filter", "", "user filter (default "+directory.DefaultFilter+")")
	f.StringVar(&d.GroupFilter, "group-filter", "", "group filter (default "+directory.DefaultGroupFilter+")")
	f.StringVar(&d.Domain, "domain", "", "domain users are named in (DOMAIN\\name), e.g. CORP")
	f.BoolVar(&d.StartTLS, "start-tls", false, "upgrade an ldap:// connection with StartTLS")
	f.DurationVar(&d.Interval, "interval", directory.DefaultInterval, "how often the server syncs the directory")
	_ = add.MarkFlagRequired("url")
	_ = add.MarkFlagRequired("base-dn")
	m.addConnFlags(add, &ac, true)

	var lc conn
	list := &cobra.Command{
		Use:   "list",
		Short: "List directories and their last sync",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := m.client(&lc)
			if err != nil {
				return err
			}
			ds, err := cl.Directories(cmd.Context())
			if err != nil {
				return err
			}
			if lc.json {
				return printJSON(cmd.OutOrStdout(), ds)
			}
			t := newTable(cmd.OutOrStdout(), "NAME", "URL", "BASE", "DOMAIN", "EVERY", "LAST SYNC", "RESULT")
			for _, x := range ds {
				last := "never"
				if x.LastSyncAt != nil {
					last = m.fmtTime(*x.LastSyncAt)
				}
				t.row(x.Name, x.URL, x.BaseDN, dash(x.Domain), x.Interval.String(), last, dash(x.LastResult))
			}
			return t.flush()
		},
	}
	m.addConnFlags(list, &lc, true)

	var sc conn
	sync := &cobra.Command{
		Use:   "sync NAME",
		Short: "Sync a directory now: users gone from it are deleted and their seats freed in the same transaction",
		Args:  exactArgs(1, "directory sync NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := m.client(&sc)
			if err != nil {
				return err
			}
			r, err := cl.SyncDirectory(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if sc.json {
				return printJSON(cmd.OutOrStdout(), r)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "synced %s: %d users seen, %d added, %d updated, %d deleted from the directory, %d seats freed\n",
				args[0], r.Seen, r.Added, r.Updated, r.Deleted, r.SeatsFreed)
			return nil
		},
	}
	m.addConnFlags(sync, &sc, true)
	cmd.AddCommand(add, list, sync)
	return cmd
}

// housekeepingCommand runs seed 003's housekeeping tasks on demand.
func (m *Main) housekeepingCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "housekeeping", Short: "Run per-user housekeeping tasks on demand (they also run by themselves)"}
	var c conn
	var req adminapi.HousekeepingRequest
	run := &cobra.Command{
		Use:   "run [TASK] [--dry-run] [--days N] [--domain D] [--ou OU] [--group G] [--product P]",
		Short: "Run one task, or all in order; --dry-run reports exactly what a run would free and changes nothing",
		Long: "Tasks: " + strings.Join(housekeeping.Tasks, ", ") + `.
clear-expired-tokens and clear-deleted-directory-users also happen by
themselves (at each token's expiry; at the sync that finds a user gone);
run them here to see that nothing is left. disable-unused-tokens takes --days
(default 90); release-disabled-accounts takes --domain, --ou and --group.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.Days < 1 {
				return cliusage.Error(cmd, fmt.Errorf("--days %d: give a number of days from 1 to %d", req.Days, housekeeping.MaxDays))
			}
			tasks := housekeeping.Tasks
			if len(args) == 1 {
				tasks = []string{args[0]}
			}
			for _, t := range tasks {
				r := store.HousekeepingRun{Task: t, Days: req.Days, Domain: req.Domain, OU: req.OU, Group: req.Group, Product: req.Product}
				if err := housekeeping.Check(&r); err != nil {
					return cliusage.Error(cmd, err)
				}
			}
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			var results []store.HousekeepingResult
			for _, t := range tasks {
				r, err := cl.Housekeeping(cmd.Context(), t, req)
				if err != nil {
					return err
				}
				results = append(results, r)
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), results)
			}
			w := cmd.OutOrStdout()
			for _, r := range results {
				verb := "freed"
				if r.DryRun {
					verb = "would free (dry run, nothing changed)"
				}
				fmt.Fprintf(w, "%s: %d users, %s %d seats\n", r.Task, len(r.Items), verb, r.SeatsFreed)
				for _, it := range r.Items {
					freed := ""
					if it.SeatFreed {
						freed = " (seat freed)"
					}
					fmt.Fprintf(w, "  %s %s: %s%s\n", it.User, it.Product, it.Action, freed)
				}
			}
			return nil
		},
	}
	f := run.Flags()
	f.BoolVar(&req.DryRun, "dry-run", false, "report what the run would free; change nothing")
	f.IntVar(&req.Days, "days", housekeeping.DefaultDays, "disable-unused-tokens: tokens unused this many days")
	f.StringVar(&req.Domain, "domain", "", "release-disabled-accounts: only this domain")
	f.StringVar(&req.OU, "ou", "", "release-disabled-accounts: only this organisational unit (e.g. ou=sales,dc=example,dc=org)")
	f.StringVar(&req.Group, "group", "", "release-disabled-accounts: only members of this group")
	f.StringVar(&req.Product, "product", "", "token tasks: only this product's credentials")
	m.addConnFlags(run, &c, true)
	cmd.AddCommand(run)
	return cmd
}

// reportUsersUseLicense is seed 003's report, under 'report'.
func (m *Main) reportUsersUseLicense() *cobra.Command {
	var c conn
	var product string
	var asCSV bool
	uul := &cobra.Command{
		Use:   "users-use-license [--product P] [--json|--csv]",
		Short: "Each user with token, Q&A, certificate and device counts, statuses, and whether and why they consume",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asCSV && c.json {
				return cliusage.Error(cmd, fmt.Errorf("give --json or --csv, not both"))
			}
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			rows, err := cl.UsersUseLicense(cmd.Context(), product)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), rows)
			}
			header := []string{"USER", "PRODUCT", "INTERNAL", "EXTERNAL", "TOKENS", "Q&A", "CERTIFICATES", "DEVICES", "CONSUMES", "REASON", "HOUSEKEEPING"}
			line := func(r store.UserUse) []string {
				return []string{r.User, dash(r.Product), r.Status, r.External, strconv.Itoa(r.Tokens), strconv.Itoa(r.QA), strconv.Itoa(r.Certificates),
					strconv.Itoa(r.Devices), yesNo(r.Consumes), r.Reason, dash(r.Housekeeping)}
			}
			if asCSV {
				w := csv.NewWriter(cmd.OutOrStdout())
				_ = w.Write(header)
				for _, r := range rows {
					_ = w.Write(line(r))
				}
				w.Flush()
				return w.Error()
			}
			seats, err := cl.UserSeats(cmd.Context())
			if err != nil {
				return err
			}
			for _, s := range seats {
				if product == "" || s.Product == product {
					fmt.Fprintf(cmd.OutOrStdout(), "%s: %d of %d user seats held\n", s.Product, s.Held, s.Granted)
				}
			}
			t := newTable(cmd.OutOrStdout(), header...)
			for _, r := range rows {
				t.row(line(r)...)
			}
			return t.flush()
		},
	}
	uul.Flags().StringVar(&product, "product", "", "only this product")
	uul.Flags().BoolVar(&asCSV, "csv", false, "print CSV")
	m.addConnFlags(uul, &c, true)
	return uul
}
