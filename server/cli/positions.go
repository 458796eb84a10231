package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/common/cliusage"
	"github.com/tallyhq/tally/common/exitcode"
	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/recognize"
	"github.com/tallyhq/tally/server/store"
)

// Software licenses are their own command (swlicense) rather than an
// extension of 'license': Tally's product licenses are signed files an
// issuer mints and the server verifies, while a software license is a
// record an administrator keeps for any application; both share
// purchases and the reports.

// maxImportFile bounds the files the import commands read (the admin API
// takes 1 MiB bodies).
const maxImportFile = 1 << 20

func readImportFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxImportFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxImportFile {
		return nil, fmt.Errorf("%s is larger than %d bytes: import it in parts", path, maxImportFile)
	}
	return b, nil
}

func (m *Main) applicationsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "applications", Aliases: []string{"application", "apps"},
		Short: "Define the applications recognised in the software inventory agents post, and see where they are installed"}
	cmd.AddCommand(m.applicationsAdd(), m.applicationsImport(), m.applicationsList(), m.applicationsShow(), m.applicationsRemove())
	return cmd
}

func (m *Main) applicationsAdd() *cobra.Command {
	var c conn
	var a store.Application
	var pkgs []string
	var versions, source string
	cmd := &cobra.Command{
		Use:   "add NAME --package NAME|GLOB [--package …] [--versions RANGE] [--source SOURCE] [--publisher P]",
		Short: "Add an application: its packages (exact names or globs with * and ?), a version range, a package source",
		Long: `Add an application recognised in the software sets agents post. Each --package is a
package name, exact or a glob (* any run of characters, ? one), case-insensitive;
--versions (e.g. '>=2.7.15, <2.8') and --source (dpkg, rpm, apk, snap, flatpak,
windows-registry, macos-app, macos-pkgutil) apply to every --package. The fleet is
recognised at once; every later software post is recognised as it is stored. For
rules that differ, use 'applications import FILE'.`,
		Args: exactArgs(1, "applications add NAME --package NAME|GLOB [--versions RANGE] [--source SOURCE]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(pkgs) == 0 {
				return cliusage.Error(cmd, fmt.Errorf("--package is required: the package name or glob that recognises %s", args[0]))
			}
			a.Name = args[0]
			for _, p := range pkgs {
				r := recognize.Rule{Package: p, Versions: versions, Source: source}
				if err := r.Validate(); err != nil {
					return cliusage.Error(cmd, err)
				}
				a.Rules = append(a.Rules, r)
			}
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			out, err := cl.AddApplications(cmd.Context(), []store.Application{a})
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), out[0])
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Added application %s: installed on %d computers (%d consuming licenses).\n", out[0].Name, out[0].Installed, out[0].Consuming)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&pkgs, "package", nil, "package name or glob (repeat for several)")
	cmd.Flags().StringVar(&versions, "versions", "", "version range, e.g. '>=2.0, <3' (default: any)")
	cmd.Flags().StringVar(&source, "source", "", "package source: "+strings.Join(recognize.Sources, ", ")+" (default: any)")
	cmd.Flags().StringVar(&a.Publisher, "publisher", "", "publisher")
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func (m *Main) applicationsImport() *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: `Add the applications of a JSON file ([{"name":…,"publisher":…,"rules":[{"package":…,"versions":…,"source":…}]}]), all or none`,
		Args:  exactArgs(1, "applications import FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := readImportFile(args[0])
			if err != nil {
				return err
			}
			var as []store.Application
			dec := json.NewDecoder(strings.NewReader(string(b)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&as); err != nil {
				return exitcode.Newf(exitcode.Usage, "%s is not a JSON list of applications: %v; nothing was added", args[0], err)
			}
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			out, err := cl.AddApplications(cmd.Context(), as)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), out)
			}
			for _, a := range out {
				fmt.Fprintf(cmd.OutOrStdout(), "Added application %s: installed on %d computers.\n", a.Name, a.Installed)
			}
			return nil
		},
	}
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func (m *Main) applicationsList() *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use: "list", Short: "List the applications, with the computers where each is installed and those consuming", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			as, err := cl.Applications(cmd.Context())
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), as)
			}
			t := newTable(cmd.OutOrStdout(), "APPLICATION", "PUBLISHER", "INSTALLED", "CONSUMING", "RULES")
			for _, a := range as {
				t.row(a.Name, dash(a.Publisher), strconv.Itoa(a.Installed), strconv.Itoa(a.Consuming), rulesText(a.Rules))
			}
			return t.flush()
		},
	}
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func rulesText(rs []recognize.Rule) string {
	var parts []string
	for _, r := range rs {
		s := r.Package
		if r.Versions != "" {
			s += " " + r.Versions
		}
		if r.Source != "" {
			s += " (" + r.Source + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (m *Main) applicationsShow() *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use: "show NAME", Short: "Show an application's rules and the computers where it is installed", Args: exactArgs(1, "applications show NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			a, err := cl.Application(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), a)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s (%s)\n  rules:      %s\n  installed:  %d computers, %d consuming licenses\n\n", a.Name, dash(a.Publisher), rulesText(a.Rules), a.Installed, a.Consuming)
			t := newTable(w, "COMPUTER", "HOSTNAME", "STATUS", "PACKAGES", "CONSUMING")
			for _, in := range a.Computers {
				t.row(strconv.FormatInt(in.ComputerID, 10), in.Hostname, in.Status, strconv.Itoa(in.Packages), yesNo(in.Consuming))
			}
			return t.flush()
		},
	}
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func (m *Main) applicationsRemove() *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use: "remove NAME", Short: "Remove an application that no software license names", Args: exactArgs(1, "applications remove NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			if err := cl.RemoveApplication(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed application %s.\n", args[0])
			return nil
		},
	}
	m.addConnFlags(cmd, &c, false)
	return cmd
}

// licenseFlags are the flags of swlicense add and set.
type licenseFlags struct {
	duration, expiry, unitPrice, status, serial, manager, costCentre string
	extra                                                            int
	nonRenewal, trueUp                                               bool
}

func (f *licenseFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.duration, "duration", "perpetual", "perpetual, subscription or time-limited")
	fl.StringVar(&f.expiry, "expiry", "", "expiry date YYYY-MM-DD, the last day of use (subscription, time-limited)")
	fl.IntVar(&f.extra, "extra", 0, "extra entitlements, granted outside purchases")
	fl.StringVar(&f.unitPrice, "unit-price", "", "price of one entitlement (overrides the purchases' price), e.g. 120.50")
	fl.BoolVar(&f.nonRenewal, "planned-non-renewal", false, "its maintenance or subscription will be let expire: its rows leave the future expiry windows")
	fl.BoolVar(&f.trueUp, "true-up", false, "subject to true-up: over-consumption is bought at the end of the period; never shown at-risk")
	fl.StringVar(&f.status, "status", "active", "status: "+strings.Join(positions.Statuses, ", "))
	fl.StringVar(&f.serial, "serial", "", "serial number")
	fl.StringVar(&f.manager, "manager", "", "who manages the license")
	fl.StringVar(&f.costCentre, "cost-centre", "", "cost centre")
}

func (m *Main) swlicenseCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "swlicense", Aliases: []string{"swlicenses"},
		Short: "Software licenses of any application recognised in inventory: entitlements, maintenance, consumption"}
	cmd.AddCommand(m.swlicenseAdd(), m.swlicenseSet(), m.swlicenseList(), m.swlicenseShow(), m.swlicenseLink(),
		m.swlicenseAllocate(true), m.swlicenseAllocate(false))
	return cmd
}

func (m *Main) swlicenseAdd() *cobra.Command {
	var c conn
	var f licenseFlags
	var apps []string
	var typ string
	cmd := &cobra.Command{
		Use:   "add NAME --application APP [--application …] [--duration D --expiry DATE] [flags]",
		Short: "Add a software license of applications (per device: each computer where one is installed consumes one)",
		Args:  exactArgs(1, "swlicense add NAME --application APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			l := store.SoftwareLicense{Applications: apps}
			l.Name, l.Type, l.Duration, l.Extra, l.PlannedNonRenewal, l.TrueUp = args[0], typ, f.duration, f.extra, f.nonRenewal, f.trueUp
			l.Status, l.Serial, l.Manager, l.CostCentre = f.status, f.serial, f.manager, f.costCentre
			var err error
			if l.Expiry, err = positions.ParseDate(f.expiry); err != nil {
				return cliusage.Error(cmd, fmt.Errorf("--expiry: %w", err))
			}
			if l.UnitPrice, err = positions.ParseMoney(f.unitPrice); err != nil {
				return cliusage.Error(cmd, fmt.Errorf("--unit-price: %w", err))
			}
			if len(apps) == 0 {
				return cliusage.Error(cmd, fmt.Errorf("--application is required: the application (see 'tally-server applications list') the license covers"))
			}
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			out, err := cl.AddSoftwareLicense(cmd.Context(), l)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Added software license %s (%s) of %s: %d computers consume it.\nNext: link purchases with 'tally-server purchase add … --link %s:QUANTITY'.\n",
				out.ID, out.Name, strings.Join(out.Applications, ", "), out.Consumed, out.ID)
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringArrayVar(&apps, "application", nil, "application it licenses (repeat for several)")
	cmd.Flags().StringVar(&typ, "type", positions.TypeDevice, "license type: device (one entitlement per computer where installed) or user (one per primary user of those computers)")
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func (m *Main) swlicenseSet() *cobra.Command {
	var c conn
	var f licenseFlags
	cmd := &cobra.Command{
		Use:   "set LICENSE [--planned-non-renewal=true|false] [--expiry DATE] [flags]",
		Short: "Change a software license's fields (only the flags given)",
		Args:  exactArgs(1, "swlicense set LICENSE [flags]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ch store.SoftwareLicenseChange
			fl := cmd.Flags()
			str := func(name string, v string) *string {
				if fl.Changed(name) {
					return &v
				}
				return nil
			}
			ch.Duration, ch.Status, ch.Serial, ch.Manager, ch.CostCentre = str("duration", f.duration), str("status", f.status), str("serial", f.serial), str("manager", f.manager), str("cost-centre", f.costCentre)
			if fl.Changed("expiry") {
				d, err := positions.ParseDate(f.expiry)
				if err != nil {
					return cliusage.Error(cmd, fmt.Errorf("--expiry: %w", err))
				}
				ch.Expiry = &d
			}
			if fl.Changed("unit-price") {
				p, err := positions.ParseMoney(f.unitPrice)
				if err != nil {
					return cliusage.Error(cmd, fmt.Errorf("--unit-price: %w", err))
				}
				ch.UnitPrice = &p
			}
			if fl.Changed("extra") {
				ch.Extra = &f.extra
			}
			if fl.Changed("planned-non-renewal") {
				ch.PlannedNonRenewal = &f.nonRenewal
			}
			if fl.Changed("true-up") {
				ch.TrueUp = &f.trueUp
			}
			if ch == (store.SoftwareLicenseChange{}) {
				return cliusage.Error(cmd, fmt.Errorf("nothing to change: give at least one flag"))
			}
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			out, err := cl.ChangeSoftwareLicense(cmd.Context(), args[0], ch)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Changed software license %s (%s).\n", out.ID, out.Name)
			return nil
		},
	}
	f.add(cmd)
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func (m *Main) swlicenseList() *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use: "list", Short: "List software licenses with their consumption", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			ls, err := cl.SoftwareLicenses(cmd.Context())
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), ls)
			}
			t := newTable(cmd.OutOrStdout(), "ID", "NAME", "APPLICATIONS", "DURATION", "EXPIRY", "CONSUMED", "STATUS")
			for _, l := range ls {
				t.row(l.ID, l.Name, strings.Join(l.Applications, ", "), l.Duration, dash(l.Expiry.String()), strconv.Itoa(l.Consumed+l.Reserved), l.Status)
			}
			return t.flush()
		},
	}
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func (m *Main) swlicenseShow() *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use: "show LICENSE", Short: "Show a software license (by ID, SW-1, or name)", Args: exactArgs(1, "swlicense show LICENSE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			l, err := cl.SoftwareLicense(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), l)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s: %s\n", l.ID, l.Name)
			fmt.Fprintf(w, "  applications:         %s\n  type:                 %s\n  duration:             %s %s\n", strings.Join(l.Applications, ", "), l.Type, l.Duration, l.Expiry)
			unit := "computers"
			if l.Type == positions.TypeUser {
				unit = "users" // one per primary user (positions.PerUser)
			}
			fmt.Fprintf(w, "  consumed:             %d %s (%d installations, %d by allocation alone)\n  extra entitlements:   %d\n", l.Consumed+l.Reserved, unit, l.Raw, l.Reserved, l.Extra)
			fmt.Fprintf(w, "  unit price:           %s\n  planned non-renewal:  %s\n  subject to true-up:   %s\n", l.UnitPrice, yesNo(l.PlannedNonRenewal), yesNo(l.TrueUp))
			fmt.Fprintf(w, "  status:               %s\n  serial:               %s\n  manager:              %s\n  cost centre:          %s\n", l.Status, dash(l.Serial), dash(l.Manager), dash(l.CostCentre))
			for _, k := range l.Links {
				fmt.Fprintf(w, "  purchase %d:           %d\n", k.Purchase, k.Quantity)
			}
			if len(l.Allocations) > 0 {
				ids := make([]string, len(l.Allocations))
				for i, c := range l.Allocations {
					ids[i] = strconv.FormatInt(c, 10)
				}
				fmt.Fprintf(w, "  allocated to:         computers %s (%d consuming by allocation alone)\n", strings.Join(ids, ", "), l.Reserved)
			}
			return nil
		},
	}
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func (m *Main) swlicenseLink() *cobra.Command {
	var c conn
	var app string
	cmd := &cobra.Command{
		Use: "link LICENSE --application APP", Short: "Add an application to a software license (purchases link with 'purchase link')",
		Args: exactArgs(1, "swlicense link LICENSE --application APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			l, err := cl.LinkApplication(cmd.Context(), args[0], app)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), l)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Software license %s now covers %s: %d computers consume it.\n", l.ID, strings.Join(l.Applications, ", "), l.Consumed)
			return nil
		},
	}
	cmd.Flags().StringVar(&app, "application", "", "the application to add")
	_ = cmd.MarkFlagRequired("application")
	m.addConnFlags(cmd, &c, true)
	return cmd
}

// swlicenseAllocate is swlicense allocate (or deallocate): an allocated
// computer consumes an entitlement even before the application is
// recognised on it (positions.Reserved).
func (m *Main) swlicenseAllocate(allocate bool) *cobra.Command {
	var c conn
	use, short := "allocate LICENSE COMPUTER", "Allocate a software license to a computer: it consumes an entitlement even before the application is recognised there"
	if !allocate {
		use, short = "deallocate LICENSE COMPUTER", "End a software license's allocation to a computer"
	}
	cmd := &cobra.Command{
		Use: use, Short: short, Args: exactArgs(2, "swlicense "+use),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseComputerID(args[1])
			if err != nil {
				return err
			}
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			call := cl.AllocateSoftware
			if !allocate {
				call = cl.DeallocateSoftware
			}
			l, err := call(cmd.Context(), args[0], id)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), l)
			}
			verb := "now allocated to"
			if !allocate {
				verb = "no longer allocated to"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Software license %s is %s computer %d: %d computers consume it (%d installed, %d by allocation alone).\n",
				l.ID, verb, id, l.Consumed+l.Reserved, l.Consumed, l.Reserved)
			return nil
		},
	}
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func (m *Main) purchaseCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "purchase", Aliases: []string{"purchases"},
		Short: "Purchases of licenses, subscriptions and maintenance, split across licenses"}
	cmd.AddCommand(m.purchaseAdd(), m.purchaseImport(), m.purchaseList(), m.purchaseShow(), m.purchaseLink(), m.purchaseUnlink())
	return cmd
}

func (m *Main) purchaseAdd() *cobra.Command {
	var c conn
	var p positions.Purchase
	var date, price, eff, exp string
	var links []string
	cmd := &cobra.Command{
		Use:   "add --po PO --item ITEM --quantity N --type license|subscription|maintenance [--effective DATE --expiry DATE] [--link LICENSE:N …]",
		Short: "Add a purchase; --link splits it across licenses (software SW-n or product license IDs)",
		Long: `Add a purchase. Types: license (adds entitlements for good), subscription (adds
entitlements from --effective to --expiry, both inclusive; after expiry they fall to
zero), maintenance (covers entitlements from --effective to --expiry, inclusive;
no --expiry: never ends). Each --link LICENSE:QUANTITY gives part of the purchase to
a license; the links never take more than --quantity.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			for _, d := range []struct {
				flag string
				s    string
				dst  *positions.Date
			}{{"date", date, &p.Date}, {"effective", eff, &p.Effective}, {"expiry", exp, &p.Expiry}} {
				if *d.dst, err = positions.ParseDate(d.s); err != nil {
					return cliusage.Error(cmd, fmt.Errorf("--%s: %w", d.flag, err))
				}
			}
			if p.UnitPrice, err = positions.ParseMoney(price); err != nil {
				return cliusage.Error(cmd, fmt.Errorf("--unit-price: %w", err))
			}
			ls, err := positions.ParseLinks(strings.Join(links, ";"))
			if err != nil {
				return cliusage.Error(cmd, fmt.Errorf("--link: %w", err))
			}
			if err := p.Validate(); err != nil {
				return cliusage.Error(cmd, err)
			}
			if err := positions.CheckSplit(p, ls); err != nil {
				return cliusage.Error(cmd, err)
			}
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			out, err := cl.AddPurchases(cmd.Context(), []store.NewPurchase{{Purchase: p, Links: ls}})
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), out[0])
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Added purchase %d (%s, %s): %d of %d linked.\n", out[0].ID, out[0].PO, out[0].Type, out[0].Quantity-out[0].Unallocated, out[0].Quantity)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&p.PO, "po", "", "purchase order number")
	fl.StringVar(&p.Item, "item", "", "what was bought")
	fl.StringVar(&p.Vendor, "vendor", "", "who sold it")
	fl.StringVar(&date, "date", "", "purchase date YYYY-MM-DD")
	fl.IntVar(&p.Quantity, "quantity", 0, "units bought (entitlements, or entitlements covered)")
	fl.StringVar(&price, "unit-price", "", "price of one unit, e.g. 120.50")
	fl.StringVar(&p.Type, "type", "", "license, subscription or maintenance")
	fl.StringVar(&eff, "effective", "", "first day covered YYYY-MM-DD (subscription, maintenance)")
	fl.StringVar(&exp, "expiry", "", "last day covered YYYY-MM-DD (subscription, maintenance)")
	fl.StringVar(&p.CostCentre, "cost-centre", "", "cost centre")
	fl.StringVar(&p.Description, "description", "", "description")
	fl.StringArrayVar(&links, "link", nil, "LICENSE:QUANTITY to give to a license (repeat to split)")
	for _, f := range []string{"po", "item", "quantity", "type"} {
		_ = cmd.MarkFlagRequired(f)
	}
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func (m *Main) purchaseImport() *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Import purchases from CSV (columns " + strings.Join(positions.PurchaseCSVColumns, ",") + "), all or none",
		Args:  exactArgs(1, "purchase import FILE.csv"),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := readImportFile(args[0])
			if err != nil {
				return err
			}
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			out, err := cl.ImportPurchases(cmd.Context(), b)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Imported %d purchases.\n", len(out))
			return nil
		},
	}
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func (m *Main) purchaseList() *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use: "list", Short: "List purchases with their links", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			ps, err := cl.Purchases(cmd.Context())
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), ps)
			}
			t := newTable(cmd.OutOrStdout(), "ID", "PO", "ITEM", "VENDOR", "TYPE", "QTY", "UNIT PRICE", "EFFECTIVE", "EXPIRY", "LINKS")
			for _, p := range ps {
				t.row(strconv.FormatInt(p.ID, 10), p.PO, p.Item, dash(p.Vendor), p.Type, strconv.Itoa(p.Quantity), p.UnitPrice.String(),
					dash(p.Effective.String()), dash(p.Expiry.String()), linksText(p.Links))
			}
			return t.flush()
		},
	}
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func linksText(ls []positions.Link) string {
	if len(ls) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range ls {
		parts = append(parts, fmt.Sprintf("%s:%d", k.License, k.Quantity))
	}
	return strings.Join(parts, " ")
}

func parsePurchaseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, exitcode.Newf(exitcode.Usage, "%q is not a purchase ID: use the number in the ID column of 'tally-server purchase list'", s)
	}
	return id, nil
}

func (m *Main) purchaseShow() *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use: "show ID", Short: "Show a purchase and its links", Args: exactArgs(1, "purchase show ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parsePurchaseID(args[0])
			if err != nil {
				return err
			}
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			p, err := cl.Purchase(cmd.Context(), id)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), p)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "purchase %d: %s, %s\n  vendor:      %s\n  date:        %s\n  type:        %s\n  quantity:    %d at %s\n  effective:   %s\n  expiry:      %s\n  links:       %s (%d not linked)\n",
				p.ID, p.PO, p.Item, dash(p.Vendor), dash(p.Date.String()), p.Type, p.Quantity, p.UnitPrice, dash(p.Effective.String()), dash(p.Expiry.String()), linksText(p.Links), p.Unallocated)
			return nil
		},
	}
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func (m *Main) purchaseLink() *cobra.Command {
	var c conn
	var qty int
	cmd := &cobra.Command{
		Use: "link ID LICENSE --quantity N", Short: "Give N of a purchase to a license (software SW-n or a product license ID); replaces that link's quantity",
		Args: exactArgs(2, "purchase link ID LICENSE --quantity N"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parsePurchaseID(args[0])
			if err != nil {
				return err
			}
			if qty <= 0 {
				return cliusage.Error(cmd, fmt.Errorf("--quantity %d: a positive number", qty))
			}
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			p, err := cl.LinkPurchase(cmd.Context(), id, args[1], qty)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), p)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Purchase %d: %s (%d not linked).\n", p.ID, linksText(p.Links), p.Unallocated)
			return nil
		},
	}
	cmd.Flags().IntVar(&qty, "quantity", 0, "how many of the purchase the license takes")
	_ = cmd.MarkFlagRequired("quantity")
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func (m *Main) purchaseUnlink() *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use: "unlink ID LICENSE", Short: "Take a purchase's link to a license away", Args: exactArgs(2, "purchase unlink ID LICENSE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parsePurchaseID(args[0])
			if err != nil {
				return err
			}
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			p, err := cl.UnlinkPurchase(cmd.Context(), id, args[1])
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), p)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Purchase %d: %s (%d not linked).\n", p.ID, linksText(p.Links), p.Unallocated)
			return nil
		},
	}
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func (m *Main) reportCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "report", Aliases: []string{"reports"}, Short: "Reports: what expires (seed 004's listing), compliance, and who uses per-user licenses (seed 003)"}
	cmd.AddCommand(m.reportExpiry(), m.reportCompliance(), m.reportUsersUseLicense())
	return cmd
}

func (m *Main) reportExpiry() *cobra.Command {
	var c conn
	var within string
	var overdue, csvOut bool
	cmd := &cobra.Command{
		Use:   "expiry [--within 30d | --overdue] [--json|--csv]",
		Short: "Licenses, subscriptions and maintenance expiring within N days (from today), or overdue",
		Long: `One row per license whose own expiry date falls in the window (no purchase columns),
and one row per license and expiring subscription or maintenance purchase: a purchase
split over three licenses gives three rows, a license with two expiring purchases two.
Future windows leave out what has expired; --overdue shows only that, with negative
days. Licenses planned for non-renewal leave the future windows; a renewal purchase
linked removes the row.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if overdue && cmd.Flags().Changed("within") {
				return cliusage.Error(cmd, fmt.Errorf("--within and --overdue: give one"))
			}
			if c.json && csvOut {
				return cliusage.Error(cmd, fmt.Errorf("--json and --csv: give one"))
			}
			w, err := positions.ParseWindow(within)
			if err != nil {
				return cliusage.Error(cmd, fmt.Errorf("--within: %w", err))
			}
			w.Overdue = overdue
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			rep, err := cl.ExpiryReport(cmd.Context(), w)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch {
			case c.json:
				return printJSON(out, rep)
			case csvOut:
				return positions.WriteExpiryCSV(out, rep.Rows)
			}
			if len(rep.Rows) == 0 {
				fmt.Fprintf(out, "Nothing expires (window %s from %s).\n", rep.Window, rep.Today)
				return nil
			}
			t := newTable(out, "LICENSE", "PRODUCT", "REASON", "EXPIRY", "DAYS", "PURCHASE", "VENDOR", "QTY", "NON-RENEWAL", "MAINTENANCE", "RENEWAL")
			for _, r := range rep.Rows {
				po := "-"
				if r.Purchase != 0 {
					po = fmt.Sprintf("%d (%s)", r.Purchase, r.PO)
				}
				maint := "no"
				if r.HasMaintenance {
					maint = fmt.Sprintf("yes (%d)", r.Maintenance)
				}
				t.row(r.License+" "+r.Name, dash(r.Product), r.Reason, r.Expiry.String(), strconv.Itoa(r.DaysToExpire), po, dash(r.Vendor),
					strconv.Itoa(r.Quantity), yesNo(r.PlannedNonRenewal), maint, r.EstimatedRenewal.String())
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVar(&within, "within", "30d", "days from today: 7d, 30d, 90d, …")
	cmd.Flags().BoolVar(&overdue, "overdue", false, "what has already expired")
	cmd.Flags().BoolVar(&csvOut, "csv", false, "print CSV")
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func (m *Main) reportCompliance() *cobra.Command {
	var c conn
	var csvOut bool
	var over int
	cmd := &cobra.Command{
		Use:   "compliance [--json|--csv] [--over-licensed-percent 5]",
		Short: "Per license: purchased, consumed, shortfall, maintenance, status and costs, with totals",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if c.json && csvOut {
				return cliusage.Error(cmd, fmt.Errorf("--json and --csv: give one"))
			}
			if over < 0 || over > 100 {
				return cliusage.Error(cmd, fmt.Errorf("--over-licensed-percent %d: from 0 to 100", over))
			}
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			rep, err := cl.ComplianceReport(cmd.Context(), over)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch {
			case c.json:
				return printJSON(out, rep)
			case csvOut:
				return positions.WriteComplianceCSV(out, rep)
			}
			t := newTable(out, "LICENSE", "PRODUCT", "PURCHASED", "CONSUMED", "AVAILABLE", "MAINTENANCE", "STATUS", "SHORTFALL COST", "UNUSED COST", "ALERT")
			for _, r := range rep.Rows {
				maint := "no"
				if r.HasMaintenance {
					maint = fmt.Sprintf("yes (%d)", r.Maintenance)
				}
				status := r.Status
				if r.OverLicensed {
					status += ", over-licensed"
				}
				t.row(r.License+" "+r.Name, dash(r.Product), strconv.Itoa(r.Purchased), strconv.Itoa(r.Consumed), strconv.Itoa(r.Available), maint, status,
					r.ShortfallCost.String(), r.UnusedCost.String(), dash(r.Alert))
			}
			tt := rep.Totals
			t.row(fmt.Sprintf("TOTAL (%d)", tt.Licenses), "", strconv.Itoa(tt.Purchased), strconv.Itoa(tt.Consumed), strconv.Itoa(-tt.Shortfall), "",
				fmt.Sprintf("%d under, %d at risk", tt.UnderLicensed, tt.AtRisk), tt.ShortfallCost.String(), tt.UnusedCost.String(), fmt.Sprintf("%d mismatches", tt.Mismatches))
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&csvOut, "csv", false, "print CSV (totals in the last row)")
	cmd.Flags().IntVar(&over, "over-licensed-percent", positions.DefaultOverLicensedPercent, "a license with more than this share unused is over-licensed")
	m.addConnFlags(cmd, &c, true)
	return cmd
}
