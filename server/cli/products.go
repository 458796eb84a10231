package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/store"
)

func (m *Main) productsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "products", Aliases: []string{"product"},
		Short: "Show the product catalog (what consumes, what frees), and add application products licensed by Activation IDs or leases"}
	cmd.AddCommand(m.productsList(), m.productsShow(), m.productsAdd(), m.productsRemove())
	return cmd
}

func (m *Main) productsList() *cobra.Command {
	var lc conn
	list := &cobra.Command{
		Use:   "list",
		Short: "List products: plug-in, versions, what consumes a seat (details: 'products show P')",
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
			// Short columns, to fit 100: the rules are in 'products show'.
			t := newTable(cmd.OutOrStdout(), "PRODUCT", "PLUG-IN", "VERSIONS", "CONSUMES ON", "SOURCE")
			for _, p := range ps {
				plugin, versions := p.Plugin, p.PluginVersions
				if p.Application {
					plugin, versions = "-", "-"
				}
				t.row(p.Name, plugin, versions, consumesOn(p), sourceText(p.Source))
			}
			return t.flush()
		},
	}
	m.addConnFlags(list, &lc, true)
	return list
}

// consumesOn says briefly what takes a seat of p.
func consumesOn(p adminapi.Product) string {
	if !p.Application {
		return strings.Join(p.Qualifying, "+")
	}
	var parts []string
	for _, k := range p.Kinds {
		switch k {
		case "node-locked":
			parts = append(parts, "activation")
		case "concurrent":
			parts = append(parts, "lease")
		default:
			parts = append(parts, k)
		}
	}
	return strings.Join(parts, ", ")
}

// sourceText shortens where a product is defined: a products file's path
// is in 'products show'.
func sourceText(s string) string {
	switch s {
	case "builtin", "database":
		return s
	}
	return "file"
}

func (m *Main) productsShow() *cobra.Command {
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
			printProduct(cmd.OutOrStdout(), p)
			return nil
		},
	}
	m.addConnFlags(show, &sc, true)
	return show
}

func printProduct(w io.Writer, p adminapi.Product) {
	fmt.Fprintf(w, "%s: %s\n", p.Name, p.Title)
	if p.Application {
		fmt.Fprintf(w, "  application product:  no plug-in; licensed by %s\n", strings.Join(p.Kinds, " and "))
		fmt.Fprintf(w, "  consumes on:          %s\n", consumesOn(p))
		fmt.Fprintf(w, "  freed by status:      %s (activations and leases are returned; deletion and agent uninstall always free)\n", p.FreedBy)
		fmt.Fprintf(w, "  defined in:           %s\n", p.Source)
		return
	}
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
}

func (m *Main) productsAdd() *cobra.Command {
	var c conn
	var title, kinds string
	cmd := &cobra.Command{
		Use:   "add NAME --kinds node-locked,concurrent [--title T]",
		Short: "Add an application product: licensed only by Activation IDs (node-locked) or leases (concurrent), with no plug-in",
		Args:  exactArgs(1, "products add NAME --kinds node-locked,concurrent [--title T]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(kinds) == "" {
				return errors.New("products add needs --kinds: node-locked (Activation IDs), concurrent (leases), or node-locked,concurrent")
			}
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			p, err := cl.AddProduct(cmd.Context(), store.ApplicationProduct{Name: args[0], Title: title, Kinds: strings.Split(kinds, ",")})
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), p)
			}
			w := cmd.OutOrStdout()
			if p.Unchanged {
				fmt.Fprintf(w, "Application product %s (%s) already takes %s licenses: nothing changed.\n", p.Name, p.Title, strings.Join(p.Kinds, " and "))
				return nil
			}
			fmt.Fprintf(w, "Added application product %s (%s): takes %s licenses.\n", p.Name, p.Title, strings.Join(p.Kinds, " and "))
			fmt.Fprintf(w, "Next: issue its licenses with --product %s --kind %s, and import them with 'tally-server license import FILE'.\n", p.Name, p.Kinds[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&title, "title", "", "what people call it (default: the name)")
	cmd.Flags().StringVar(&kinds, "kinds", "", "license kinds it takes: node-locked, concurrent, or both separated by a comma")
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func (m *Main) productsRemove() *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove an application product added with 'products add' that no license names",
		Args:  exactArgs(1, "products remove NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			if err := cl.RemoveProduct(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed application product %s.\n", args[0])
			return nil
		},
	}
	m.addConnFlags(cmd, &c, false)
	return cmd
}
