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
	"github.com/tallyhq/tally/common/cliusage"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/daemon"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/dates"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

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
	var trustData, trustStore string
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
			if st := firstNonEmpty(trustStore, m.Getenv("TALLY_STORE")); st != "" {
				if !sqlstore.IsPostgresURL(st) {
					return cliusage.Error(cmd, fmt.Errorf("--store %q: give the replicas' postgres:// URL", st))
				}
				if err := daemon.ShareIssuer(cmd.Context(), st, dir, id); err != nil {
					return fmt.Errorf("share issuer %s with the replicas: %w", id, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Shared with every replica of the database (they trust it from their next license check)\n")
			}
			return nil
		},
	}
	trust.Flags().StringVar(&trustStore, "store", "", "the replicas' postgres:// URL, to trust the issuer on every replica (default $TALLY_STORE)")
	trust.Flags().StringVar(&trustData, "data", "", "the server's data folder (default $TALLY_DATA or "+DefaultDataDir+")")
	var listData string
	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the issuers this server trusts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ids, err := daemon.TrustedIssuerIDs(datadir.Dir{Path: firstNonEmpty(listData, m.Getenv("TALLY_DATA"), DefaultDataDir)})
			if err != nil {
				return err
			}
			if listJSON {
				type issuer struct {
					ID string `json:"id"`
				}
				out := []issuer{}
				for _, id := range ids {
					out = append(out, issuer{ID: id})
				}
				return printJSON(cmd.OutOrStdout(), out)
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
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON instead of a list")
	cmd.AddCommand(initCmd, trust, list)
	return cmd
}

func (m *Main) licenseCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "license", Aliases: []string{"licenses"}, Short: "Mint, import, list, remove and allocate licenses"}
	cmd.AddCommand(m.licenseIssue(), m.licenseImport(), m.licenseList(), m.licenseRemove(), m.licenseAllocate())
	return cmd
}

func (m *Main) licenseIssue() *cobra.Command {
	var keyPath, product, kind, duration, expires, upgrade, customer, id, out, zone string
	var seats int
	cmd := &cobra.Command{
		Use:   "issue --key KEY --product P --seats N --out FILE",
		Short: "Mint a signed license file with an issuer key (no server needed)",
		Long: `Mint a signed license file with an issuer key (no server needed).

--expires and --upgrade-until take the last day covered: 2027-06-30 means valid
through the end of that day in --timezone (default: this host's zone, TZ honoured),
which the file records and states. An expiry in the past is refused; one within a
day is issued with a warning.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyPath == "" || product == "" || seats == 0 || out == "" {
				return errors.New("license issue needs --key, --product, --seats (a positive number) and --out")
			}
			if seats < 1 || seats > license.MaxSeats {
				return fmt.Errorf("--seats %d: a license grants between 1 and 10,000,000 seats", seats)
			}
			loc, err := license.LoadZone(zone, m.Getenv)
			if err != nil {
				return fmt.Errorf("--timezone: %w", err)
			}
			data, err := os.ReadFile(keyPath)
			if err != nil {
				return err
			}
			key, err := license.DecodePrivateKey(data)
			if err != nil {
				return fmt.Errorf("%s: %w", keyPath, err)
			}
			now := m.now().In(loc)
			p := license.Payload{ID: id, Product: product, Seats: uint32(seats), Kind: kind, Duration: duration, IssuedAt: now.Unix(), Customer: customer}
			if loc.String() != "Local" { // a host zone without a name: the file shows UTC dates
				p.Zone = loc.String()
			}
			if expires != "" {
				t, err := license.ParseEndDate(expires, loc)
				if err != nil {
					return fmt.Errorf("--expires: %w", err)
				}
				p.Expires = t.Unix()
			}
			if upgrade != "" {
				t, err := license.ParseEndDate(upgrade, loc)
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
			warnings, err := license.CheckDates(&p, now)
			if err != nil {
				return err
			}
			file, err := license.Issue(key, p)
			if err != nil {
				return err
			}
			if err := atomicfile.Write(out, file, 0o644); err != nil {
				return err
			}
			for _, w := range warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Wrote %s (dates are in %s, each valid through the end of its day):\n%s", out, loc, firstLines(string(file), 3))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyPath, "key", "", "issuer private key (issuer.key from 'issuer init')")
	f.StringVar(&product, "product", "", "product name (see 'products list')")
	f.IntVar(&seats, "seats", 0, "number of seats (1 to 10,000,000)")
	f.StringVar(&kind, "kind", license.KindNode, "node, node-locked, concurrent or user")
	f.StringVar(&duration, "duration", "", "perpetual, subscription or time-limited (default: perpetual, or subscription with --expires)")
	f.StringVar(&expires, "expires", "", "last day the license is valid (2027-06-30: through the end of that day in --timezone), or an RFC 3339 time")
	f.StringVar(&upgrade, "upgrade-until", "", "last day of upgrade protection (like --expires): plug-in builds released later are not covered")
	f.StringVar(&zone, "timezone", "", "IANA time zone of the dates, e.g. Europe/Paris (default: this host's zone; TZ honoured)")
	f.StringVar(&customer, "customer", "", "customer name, shown in the file")
	f.StringVar(&id, "id", "", "license ID (default: a random L-… ID)")
	f.StringVar(&out, "out", "", "file to write")
	return cmd
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
				if st := licenseState(l); st != "valid" {
					fmt.Fprintf(w, "  note: %s\n", st)
				}
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

// expiryText is ", expires DAY" in the zone the server sent the time in.
func expiryText(t *time.Time) string {
	if t == nil {
		return ""
	}
	return ", expires " + dates.Text(*t, t.Location())
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
				t.row(l.ID, l.Product, l.Kind, strconv.Itoa(l.Seats), strconv.Itoa(l.Held), strconv.Itoa(l.Allocated), l.Duration,
					dateOrDash(l.ExpiresAt), dateOrDash(l.UpgradeUntil), licenseState(l))
			}
			return t.flush()
		},
	}
	m.addConnFlags(cmd, &c, true)
	return cmd
}

// dateOrDash shows an end date in the zone the server sent it in (its
// own), so that "2027-06-30" reads the same on every admin's machine.
func dateOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return dates.Text(*t, t.Location())
}

// endText is an end date with its phrase when it needs attention:
// "2027-06-30 (expires in 14 days)".
func endText(t *time.Time, state, phrase string) string {
	if t == nil {
		return "-"
	}
	if state == "" || state == license.StateValid {
		return dateOrDash(t)
	}
	return dateOrDash(t) + " (" + phrase + ")"
}

// licenseState is what needs attention about a license, or "valid".
func licenseState(l store.License) string {
	var parts []string
	if l.ExpiryState != "" && l.ExpiryState != license.StateValid {
		parts = append(parts, l.Expiry)
	} else if l.Expired {
		parts = append(parts, "expired")
	}
	if l.UpgradeState != "" && l.UpgradeState != license.StateValid {
		parts = append(parts, l.Upgrade)
	}
	if len(parts) == 0 {
		return "valid"
	}
	return strings.Join(parts, "; ")
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
	// The message says what happened once; the seats follow, one a line.
	switch {
	case ch.Message != "":
		fmt.Fprintln(w, ch.Message)
	case len(ch.Seats) == 0:
		fmt.Fprintln(w, "No seat changed.")
	}
	for _, s := range ch.Seats {
		kind := s.Kind
		if kind == "" {
			kind = store.SeatNode
		}
		switch s.Change {
		case "moved":
			fmt.Fprintf(w, "  moved  %-11s %-20s computer %d (%s): license %s → %s (%s)\n", kind, s.Product, s.ComputerID, s.Hostname, s.From, s.License, s.Reason)
		default:
			fmt.Fprintf(w, "  %-6s %-11s %-20s computer %d (%s), license %s (%s)\n", s.Change, kind, s.Product, s.ComputerID, s.Hostname, s.License, s.Reason)
		}
	}
	return nil
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
			for _, e := range r.Errors {
				fmt.Fprintf(w, "  FAILED:   %s (the other steps ran)\n", e)
			}
			fmt.Fprintf(w, "  expired:  %d seats moved or freed\n  missing:  %d computers set Missing (%d seats freed)\n  purged:   %d\n",
				len(r.Expired), len(r.Missing), len(r.Freed), r.Purged)
			if len(r.Expiring) == 0 {
				fmt.Fprintln(w, "  expiring: nothing ends within the warning window")
				return nil
			}
			fmt.Fprintln(w, "Ending soon or ended (renew, or remove what ended):")
			t := newTable(w, "  WHAT", "ID", "PRODUCT", "ENDS", "STATE")
			for _, e := range r.Expiring {
				t.row("  "+e.What, e.ID, e.Product, dateOrDash(&e.EndsAt), e.Phrase)
			}
			return t.flush()
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
		Short: "License usage per product and pool (node, node-locked, concurrent): granted, consumed, available (negative = shortfall), discards, holders",
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
			// One row per pool: node seats, Activation IDs and leases
			// are counted apart, never added up.
			t := newTable(w, "PRODUCT", "KIND", "GRANTED", "CONSUMED", "RESERVED", "WAITING", "AVAILABLE", "COMPLIANT", "DISCARDS", "EXPIRES")
			for _, u := range us {
				if product == "" && u.Granted == 0 && u.Consumed == 0 && u.Waiting == 0 && len(u.Discards) == 0 {
					continue
				}
				t.row(u.Product, u.Kind, strconv.Itoa(u.Granted), strconv.Itoa(u.Consumed), strconv.Itoa(u.Reserved), strconv.Itoa(u.Waiting),
					strconv.Itoa(u.Available), yesNo(u.Compliant), discardText(u.Discards), firstNonEmpty(u.Expires, "-"))
			}
			if err := t.flush(); err != nil {
				return err
			}
			for _, u := range us {
				if len(u.Licenses) == 0 {
					continue
				}
				fmt.Fprintf(w, "\n%s %s licenses:\n", u.Product, u.Kind)
				lt := newTable(w, "  LICENSE", "SEATS", "HELD", "ALLOCATED", "AVAILABLE", "EXPIRES", "STATE")
				for _, l := range u.Licenses {
					lt.row("  "+l.ID, strconv.Itoa(l.Seats), strconv.Itoa(l.Held), strconv.Itoa(l.Allocated), strconv.Itoa(l.Available), dateOrDash(l.ExpiresAt), licenseState(l.License))
				}
				lt.flush()
				if holders || product != "" {
					fmt.Fprintf(w, "%s %s holders:\n", u.Product, u.Kind)
					ht := newTable(w, "  COMPUTER", "HOSTNAME", "LICENSE", "SINCE", "WHY")
					for _, h := range u.Holders {
						why := h.Reason
						if h.Allocated {
							why += " [allocated]"
						}
						ht.row("  "+strconv.FormatInt(h.ComputerID, 10), h.Hostname, h.License, m.fmtTime(h.Since), why)
					}
					if len(u.Holders) == 0 {
						ht.row("  -", "", "", "", "no holder")
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
