package cli

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/common/atomicfile"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
)

func (m *Main) productsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "products", Aliases: []string{"product"}, Short: "Show the product catalog: what consumes, what frees, for each product"}
	var lc conn
	list := &cobra.Command{
		Use:   "list",
		Short: "List products with their licensing rules",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := m.client(&lc)
			if err != nil {
				return err
			}
			ps, err := c.Products(cmd.Context())
			if err != nil {
				return err
			}
			if lc.json {
				return printJSON(cmd.OutOrStdout(), ps)
			}
			t := newTable(cmd.OutOrStdout(), "PRODUCT", "PLUG-IN", "QUALIFYING POST", "OVER THE COUNT", "FREED BY STATUS", "REMOVAL FREES", "SOURCE")
			for _, p := range ps {
				t.row(p.Name, p.Plugin+" "+p.PluginVersions, strings.Join(p.Qualifying, "+"), strings.Join(p.OverCount, ","), p.FreedBy,
					yesNo(p.PluginRemovalFrees), p.Source)
			}
			return t.flush()
		},
	}
	m.addConnFlags(list, &lc, true)
	var sc conn
	show := &cobra.Command{
		Use:   "show PRODUCT",
		Short: "Show one product's rules",
		Args:  exactArgs(1, "products show PRODUCT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := m.client(&sc)
			if err != nil {
				return err
			}
			p, err := c.Product(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if sc.json {
				return printJSON(cmd.OutOrStdout(), p)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s: %s\n", p.Name, p.Title)
			fmt.Fprintf(w, "  plug-in:              %s, versions %s\n", p.Plugin, p.PluginVersions)
			fmt.Fprintf(w, "  consumes on:          %s%s\n", strings.Join(p.Qualifying, " or "), map[bool]string{true: " (with the plug-in installed)"}[p.RequiresPlugin])
			fmt.Fprintf(w, "  over the count:       %s\n", strings.Join(p.OverCount, ", "))
			fmt.Fprintf(w, "  freed by status:      %s (deletion and agent uninstall always free)\n", p.FreedBy)
			fmt.Fprintf(w, "  plug-in removal:      %s\n", map[bool]string{true: "frees the seat", false: "does not free the seat"}[p.PluginRemovalFrees])
			purge := "never"
			if p.PurgeAfterDays >= 0 {
				purge = fmt.Sprintf("%d days after the seat is freed", p.PurgeAfterDays)
			}
			fmt.Fprintf(w, "  product data purged:  %s\n  defined in:           %s\n", purge, p.Source)
			return nil
		},
	}
	m.addConnFlags(show, &sc, true)
	cmd.AddCommand(list, show)
	return cmd
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (m *Main) issuerCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "issuer", Short: "Make an issuer key pair, and trust issuers' public keys on this server"}
	var out string
	initCmd := &cobra.Command{
		Use:   "init --out DIR",
		Short: "Make an Ed25519 issuer key pair: DIR/issuer.key (keep it secret) and DIR/issuer.pub",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("issuer init needs --out DIR")
			}
			if err := os.MkdirAll(out, 0o700); err != nil {
				return err
			}
			keyPath := filepath.Join(out, "issuer.key")
			if _, err := os.Stat(keyPath); err == nil {
				return fmt.Errorf("%s already exists: refusing to replace an issuer key (licenses signed with it would no longer match)", keyPath)
			}
			key, err := license.NewIssuerKey()
			if err != nil {
				return err
			}
			priv, err := license.EncodePrivateKey(key)
			if err != nil {
				return err
			}
			pub, err := license.EncodePublicKey(key.Public().(ed25519.PublicKey))
			if err != nil {
				return err
			}
			if err := atomicfile.Write(keyPath, priv, 0o600); err != nil {
				return err
			}
			if err := atomicfile.Write(filepath.Join(out, "issuer.pub"), pub, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Issuer %s: private key %s, public key %s\nTrust it on a server with: tally-server issuer trust %s --data DIR\n",
				license.IssuerID(key.Public().(ed25519.PublicKey)), keyPath, filepath.Join(out, "issuer.pub"), filepath.Join(out, "issuer.pub"))
			return nil
		},
	}
	initCmd.Flags().StringVar(&out, "out", "", "folder for issuer.key and issuer.pub")
	var trustData string
	trust := &cobra.Command{
		Use:   "trust FILE",
		Short: "Trust an issuer's public key (issuer.pub) for license imports on the server whose data folder is --data",
		Long: `Trust an issuer's public key for license imports. Trust lives in the server's data
folder (DATA/trusted-issuers), so it needs access to the server host, not just the
admin token. A running server uses it at the next import.`,
		Args: exactArgs(1, "issuer trust FILE --data DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			dir := datadir.Dir{Path: firstNonEmpty(trustData, m.Getenv("TALLY_DATA"), DefaultDataDir)}
			if _, err := os.Stat(dir.Path); err != nil {
				return fmt.Errorf("data folder %s: %w (pass --data DIR)", dir.Path, err)
			}
			id, err := daemon.TrustIssuer(dir, data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Trusted issuer %s in %s\n", id, dir.File(datadir.IssuersFile))
			return nil
		},
	}
	trust.Flags().StringVar(&trustData, "data", "", "the server's data folder (default $TALLY_DATA or "+DefaultDataDir+")")
	var listData string
	list := &cobra.Command{
		Use:   "list",
		Short: "List the issuers this server trusts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ids, err := daemon.TrustedIssuerIDs(datadir.Dir{Path: firstNonEmpty(listData, m.Getenv("TALLY_DATA"), DefaultDataDir)})
			if err != nil {
				return err
			}
			if len(ids) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "No trusted issuers: add one with 'tally-server issuer trust FILE'.")
			}
			for _, id := range ids {
				fmt.Fprintln(cmd.OutOrStdout(), id)
			}
			return nil
		},
	}
	list.Flags().StringVar(&listData, "data", "", "the server's data folder")
	cmd.AddCommand(initCmd, trust, list)
	return cmd
}

func (m *Main) licenseCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "license", Aliases: []string{"licenses"}, Short: "Mint, import, list, remove and allocate licenses"}
	cmd.AddCommand(m.licenseIssue(), m.licenseImport(), m.licenseList(), m.licenseRemove(), m.licenseAllocate())
	return cmd
}

func (m *Main) licenseIssue() *cobra.Command {
	var keyPath, product, kind, duration, expires, upgrade, customer, id, out string
	var seats int
	cmd := &cobra.Command{
		Use:   "issue --key KEY --product P --seats N --out FILE",
		Short: "Mint a signed license file with an issuer key (no server needed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyPath == "" || product == "" || seats <= 0 || out == "" {
				return errors.New("license issue needs --key, --product, --seats (a positive number) and --out")
			}
			data, err := os.ReadFile(keyPath)
			if err != nil {
				return err
			}
			key, err := license.DecodePrivateKey(data)
			if err != nil {
				return fmt.Errorf("%s: %w", keyPath, err)
			}
			p := license.Payload{ID: id, Product: product, Seats: uint32(seats), Kind: kind, Duration: duration, IssuedAt: time.Now().Unix(), Customer: customer}
			if expires != "" {
				t, err := parseDate(expires)
				if err != nil {
					return fmt.Errorf("--expires: %w", err)
				}
				p.Expires = t.Unix()
			}
			if upgrade != "" {
				t, err := parseDate(upgrade)
				if err != nil {
					return fmt.Errorf("--upgrade-until: %w", err)
				}
				p.UpgradeUntil = t.Unix()
			}
			if duration == "" {
				p.Duration = license.Perpetual
				if p.Expires != 0 {
					p.Duration = license.Subscription
				}
			}
			file, err := license.Issue(key, p)
			if err != nil {
				return err
			}
			if err := atomicfile.Write(out, file, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Wrote %s:\n%s", out, firstLines(string(file), 3))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyPath, "key", "", "issuer private key (issuer.key from 'issuer init')")
	f.StringVar(&product, "product", "", "product name (see 'products list')")
	f.IntVar(&seats, "seats", 0, "number of seats")
	f.StringVar(&kind, "kind", license.KindNode, "node, node-locked or concurrent")
	f.StringVar(&duration, "duration", "", "perpetual, subscription or time-limited (default: perpetual, or subscription with --expires)")
	f.StringVar(&expires, "expires", "", "expiry date (YYYY-MM-DD, or RFC 3339)")
	f.StringVar(&upgrade, "upgrade-until", "", "end of upgrade protection: plug-in builds released later are not covered")
	f.StringVar(&customer, "customer", "", "customer name, shown in the file")
	f.StringVar(&id, "id", "", "license ID (default: a random L-… ID)")
	f.StringVar(&out, "out", "", "file to write")
	return cmd
}

func parseDate(s string) (time.Time, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date like 2027-01-31 (or RFC 3339)", s)
}

func firstLines(s string, n int) string {
	lines := strings.SplitAfterN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "")
}

func (m *Main) licenseImport() *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use:   "import FILE...",
		Short: "Import license files: all or none; a file that does not verify is rejected with the reason",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return errors.New("usage: tally-server license import FILE [FILE]")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var files []adminapi.LicenseFile
			for _, a := range args {
				data, err := os.ReadFile(a)
				if err != nil {
					return err
				}
				if len(data) > 256<<10 {
					return fmt.Errorf("%s: %d bytes is too large for a license file", a, len(data))
				}
				files = append(files, adminapi.LicenseFile{Name: filepath.Base(a), Data: string(data)})
			}
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			res, err := cl.ImportLicenses(cmd.Context(), files)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			for _, l := range res.Imported {
				fmt.Fprintf(w, "Imported license %s: %d %s seats of %s, %s%s\n", l.ID, l.Seats, l.Kind, l.Product, l.Duration, expiryText(l.ExpiresAt))
			}
			for _, u := range res.Unchanged {
				fmt.Fprintf(w, "Unchanged: %s\n", u)
			}
			return nil
		},
	}
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func expiryText(t *time.Time) string {
	if t == nil {
		return ""
	}
	return ", expires " + t.Local().Format("2006-01-02")
}

func (m *Main) licenseList() *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List licenses with seats held and allocated",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			ls, err := cl.Licenses(cmd.Context())
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), ls)
			}
			if len(ls) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "No licenses. Import one with 'tally-server license import FILE'.")
				return nil
			}
			t := newTable(cmd.OutOrStdout(), "ID", "PRODUCT", "KIND", "SEATS", "HELD", "ALLOCATED", "DURATION", "EXPIRES", "UPGRADES UNTIL", "STATE")
			for _, l := range ls {
				state := "valid"
				if l.Expired {
					state = "EXPIRED"
				}
				t.row(l.ID, l.Product, l.Kind, strconv.Itoa(l.Seats), strconv.Itoa(l.Held), strconv.Itoa(l.Allocated), l.Duration,
					dateOrDash(l.ExpiresAt), dateOrDash(l.UpgradeUntil), state)
			}
			return t.flush()
		},
	}
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func dateOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format("2006-01-02")
}

func (m *Main) licenseRemove() *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a license: its seats move to other licenses of the product with room, or are freed",
		Args:  exactArgs(1, "license remove ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			ch, err := cl.RemoveLicense(cmd.Context(), args[0])
			return m.printChange(cmd.OutOrStdout(), c.json, ch, err)
		},
	}
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func (m *Main) licenseAllocate() *cobra.Command {
	var c conn
	var computer string
	var remove bool
	cmd := &cobra.Command{
		Use:   "allocate ID --computer C",
		Short: "Reserve a seat of a license for a computer (it takes priority and nobody else can take it); --remove ends it",
		Args:  exactArgs(1, "license allocate ID --computer C [--remove]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseComputerID(computer)
			if err != nil {
				return err
			}
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			var ch store.Change
			if remove {
				ch, err = cl.Deallocate(cmd.Context(), args[0], id)
			} else {
				ch, err = cl.Allocate(cmd.Context(), args[0], id)
			}
			return m.printChange(cmd.OutOrStdout(), c.json, ch, err)
		},
	}
	cmd.Flags().StringVar(&computer, "computer", "", "computer ID")
	_ = cmd.MarkFlagRequired("computer")
	cmd.Flags().BoolVar(&remove, "remove", false, "end the allocation instead (a seat the computer holds stays)")
	m.addConnFlags(cmd, &c, true)
	return cmd
}

// printChange prints what an action did to seats: every command that can
// free a seat says which.
func (m *Main) printChange(w io.Writer, asJSON bool, ch store.Change, err error) error {
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(w, ch)
	}
	if ch.Message != "" {
		fmt.Fprintln(w, ch.Message)
	}
	if len(ch.Seats) == 0 {
		fmt.Fprintln(w, "No seat changed.")
		return nil
	}
	for _, s := range ch.Seats {
		switch s.Change {
		case "moved":
			fmt.Fprintf(w, "  moved  %-20s computer %d (%s): license %s → %s (%s)\n", s.Product, s.ComputerID, s.Hostname, s.From, s.License, s.Reason)
		default:
			fmt.Fprintf(w, "  %-6s %-20s computer %d (%s), license %s (%s)\n", s.Change, s.Product, s.ComputerID, s.Hostname, s.License, s.Reason)
		}
	}
	return nil
}

func (m *Main) computerAdminCommands() []*cobra.Command {
	var sc conn
	setStatus := &cobra.Command{
		Use:   "set-status ID STATUS",
		Short: "Set a computer's status; frees exactly the seats whose product rule names that status",
		Args:  exactArgs(2, "computers set-status ID STATUS"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseComputerID(args[0])
			if err != nil {
				return err
			}
			cl, err := m.client(&sc)
			if err != nil {
				return err
			}
			ch, err := cl.SetStatus(cmd.Context(), id, args[1])
			return m.printChange(cmd.OutOrStdout(), sc.json, ch, err)
		},
	}
	m.addConnFlags(setStatus, &sc, true)
	var rc conn
	retire := &cobra.Command{
		Use:   "retire ID",
		Short: "Set a computer's status to Retired (it stays Retired if it posts again)",
		Args:  exactArgs(1, "computers retire ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseComputerID(args[0])
			if err != nil {
				return err
			}
			cl, err := m.client(&rc)
			if err != nil {
				return err
			}
			ch, err := cl.SetStatus(cmd.Context(), id, "Retired")
			return m.printChange(cmd.OutOrStdout(), rc.json, ch, err)
		},
	}
	m.addConnFlags(retire, &rc, true)
	var dc conn
	var block bool
	del := &cobra.Command{
		Use:   "delete ID [--block]",
		Short: "Delete a computer: frees every seat and revokes its keys; --block refuses it at any later enrollment",
		Args:  exactArgs(1, "computers delete ID [--block]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseComputerID(args[0])
			if err != nil {
				return err
			}
			cl, err := m.client(&dc)
			if err != nil {
				return err
			}
			ch, err := cl.DeleteComputer(cmd.Context(), id, block)
			return m.printChange(cmd.OutOrStdout(), dc.json, ch, err)
		},
	}
	del.Flags().BoolVar(&block, "block", false, "never let this machine enroll again (its keys and identity hints are refused)")
	m.addConnFlags(del, &dc, true)
	var wc conn
	why := &cobra.Command{
		Use:   "why ID PRODUCT",
		Short: "Explain why a computer holds (or lacks) a product's seat",
		Args:  exactArgs(2, "computers why ID PRODUCT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseComputerID(args[0])
			if err != nil {
				return err
			}
			cl, err := m.client(&wc)
			if err != nil {
				return err
			}
			ans, err := cl.Why(cmd.Context(), id, args[1])
			if err != nil {
				return err
			}
			if wc.json {
				return printJSON(cmd.OutOrStdout(), ans)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Computer %d (%s), %s, status %s:\n  %s\n", ans.ComputerID, ans.Hostname, ans.Product, ans.Status, ans.Answer)
			if len(ans.Events) > 0 {
				fmt.Fprintln(w, "History:")
				for _, e := range ans.Events {
					count := ""
					if e.Count > 1 {
						count = fmt.Sprintf(" (×%d)", e.Count)
					}
					fmt.Fprintf(w, "  %s  %-16s %s%s\n", fmtTime(e.At), e.Kind, e.Reason, count)
				}
			}
			return nil
		},
	}
	m.addConnFlags(why, &wc, true)
	var swc conn
	software := &cobra.Command{
		Use:   "software ID",
		Short: "List a computer's stored software inventory",
		Args:  exactArgs(1, "computers software ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseComputerID(args[0])
			if err != nil {
				return err
			}
			cl, err := m.client(&swc)
			if err != nil {
				return err
			}
			ps, err := cl.Software(cmd.Context(), id)
			if err != nil {
				return err
			}
			if swc.json {
				return printJSON(cmd.OutOrStdout(), ps)
			}
			t := newTable(cmd.OutOrStdout(), "SOURCE", "NAME", "VERSION", "ARCH", "PUBLISHER")
			for _, p := range ps {
				t.row(p.Source, p.Name, p.Version, p.Arch, p.Publisher)
			}
			return t.flush()
		},
	}
	m.addConnFlags(software, &swc, true)
	var tc conn
	task := &cobra.Command{
		Use:   "task ID ACTION",
		Short: "Queue an agent action for a computer: collect-now or refresh-plugins (delivered to licensed software-management agents)",
		Args:  exactArgs(2, "computers task ID collect-now|refresh-plugins"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseComputerID(args[0])
			if err != nil {
				return err
			}
			cl, err := m.client(&tc)
			if err != nil {
				return err
			}
			tid, err := cl.AddTask(cmd.Context(), id, args[1])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Queued task %s (%s) for computer %d\n", tid, args[1], id)
			return nil
		},
	}
	m.addConnFlags(task, &tc, false)
	return []*cobra.Command{setStatus, retire, del, why, software, task}
}

func (m *Main) statusesCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "statuses", Aliases: []string{"status"}, Short: "List computer statuses, or add one"}
	var lc conn
	list := &cobra.Command{
		Use:   "list",
		Short: "List statuses and how many computers have each",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := m.client(&lc)
			if err != nil {
				return err
			}
			ss, err := cl.Statuses(cmd.Context())
			if err != nil {
				return err
			}
			if lc.json {
				return printJSON(cmd.OutOrStdout(), ss)
			}
			t := newTable(cmd.OutOrStdout(), "STATUS", "COMPUTERS", "BUILT IN", "DESCRIPTION")
			for _, s := range ss {
				t.row(s.Name, strconv.Itoa(s.Computers), yesNo(s.Builtin), s.Description)
			}
			return t.flush()
		},
	}
	m.addConnFlags(list, &lc, true)
	var ac conn
	var desc string
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a status (not Active: products freed by any-non-active status are freed by it)",
		Args:  exactArgs(1, "statuses add NAME [--description D]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := m.client(&ac)
			if err != nil {
				return err
			}
			s, err := cl.AddStatus(cmd.Context(), args[0], desc)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Added status %q\n", s.Name)
			return nil
		},
	}
	add.Flags().StringVar(&desc, "description", "", "what the status means")
	m.addConnFlags(add, &ac, false)
	cmd.AddCommand(list, add)
	return cmd
}

func (m *Main) maintenanceCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "maintenance", Short: "Run the maintenance job now"}
	var c conn
	run := &cobra.Command{
		Use:   "run",
		Short: "Expire licenses, apply the stale-node policy, reconcile seat counts (reporting drift) and purge data past retention",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			r, err := cl.Maintenance(cmd.Context())
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), r)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Maintenance ran in %s.\n", r.Duration)
			if len(r.Drift) == 0 {
				fmt.Fprintln(w, "  drift:    none (seat counts match the seats)")
			}
			for _, d := range r.Drift {
				fmt.Fprintf(w, "  drift:    %s\n", d)
			}
			for _, d := range r.Repaired {
				fmt.Fprintf(w, "  repaired: %s\n", d)
			}
			fmt.Fprintf(w, "  expired:  %d seats moved or freed\n  missing:  %d computers set Missing (%d seats freed)\n  purged:   %d\n",
				len(r.Expired), len(r.Missing), len(r.Freed), r.Purged)
			return nil
		},
	}
	m.addConnFlags(run, &c, true)
	cmd.AddCommand(run)
	return cmd
}

func (m *Main) usageCommand() *cobra.Command {
	var c conn
	var product string
	var holders bool
	cmd := &cobra.Command{
		Use:   "usage [--product P]",
		Short: "License usage per product and license: granted, consumed, available (negative = shortfall), allocated, discards, holders",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			us, err := cl.Usage(cmd.Context(), product)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), us)
			}
			w := cmd.OutOrStdout()
			t := newTable(w, "PRODUCT", "GRANTED", "CONSUMED", "RESERVED", "WAITING", "AVAILABLE", "COMPLIANT", "DISCARDS")
			for _, u := range us {
				if product == "" && u.Granted == 0 && u.Consumed == 0 && len(u.Discards) == 0 {
					continue
				}
				t.row(u.Product, strconv.Itoa(u.Granted), strconv.Itoa(u.Consumed), strconv.Itoa(u.Reserved), strconv.Itoa(u.Waiting),
					strconv.Itoa(u.Available), yesNo(u.Compliant), discardText(u.Discards))
			}
			if err := t.flush(); err != nil {
				return err
			}
			for _, u := range us {
				if len(u.Licenses) == 0 {
					continue
				}
				fmt.Fprintf(w, "\n%s licenses:\n", u.Product)
				lt := newTable(w, "  LICENSE", "SEATS", "HELD", "ALLOCATED", "AVAILABLE", "EXPIRES", "STATE")
				for _, l := range u.Licenses {
					state := "valid"
					if l.Expired {
						state = "EXPIRED"
					}
					lt.row("  "+l.ID, strconv.Itoa(l.Seats), strconv.Itoa(l.Held), strconv.Itoa(l.Allocated), strconv.Itoa(l.Available), dateOrDash(l.ExpiresAt), state)
				}
				lt.flush()
				if holders || product != "" {
					fmt.Fprintf(w, "%s holders:\n", u.Product)
					ht := newTable(w, "  COMPUTER", "HOSTNAME", "LICENSE", "SINCE", "WHY")
					for _, h := range u.Holders {
						why := h.Reason
						if h.Allocated {
							why += " [allocated]"
						}
						ht.row("  "+strconv.FormatInt(h.ComputerID, 10), h.Hostname, h.License, fmtTime(h.Since), why)
					}
					ht.flush()
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&product, "product", "", "only this product (and list its holders)")
	cmd.Flags().BoolVar(&holders, "holders", false, "list every holder")
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func discardText(d map[string]int64) string {
	if len(d) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, d[k])
	}
	return strings.Join(parts, " ")
}
