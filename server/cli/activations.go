package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store"
)

// maxActivationQuantity is the store's bound on an Activation ID's
// quantity, checked before asking the server.
const maxActivationQuantity = 1_000_000

func (m *Main) activationCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "activation", Aliases: []string{"activations"}, Short: "Node-locked licenses: create Activation IDs, see who holds them, return seats"}
	var cc conn
	var product, expires string
	var quantity int
	create := &cobra.Command{
		Use:   "create --product P --quantity N [--expires DATE]",
		Short: "Create an unguessable Activation ID granting N machines a node-locked seat of P",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if product == "" || quantity == 0 {
				return fmt.Errorf("activation create needs --product and --quantity (a positive number)")
			}
			if quantity < 1 || quantity > maxActivationQuantity {
				return fmt.Errorf("--quantity %d: an Activation ID is for between 1 and 1,000,000 machines", quantity)
			}
			if expires != "" {
				// The server reads the day in its own time zone; only the
				// form is checked here.
				if _, err := license.ParseEndDate(expires, time.UTC); err != nil {
					return fmt.Errorf("--expires: %w", err)
				}
			}
			req := adminapi.CreateActivationRequest{Product: product, Quantity: quantity, Expires: expires}
			cl, err := m.client(&cc)
			if err != nil {
				return err
			}
			a, err := cl.CreateActivation(cmd.Context(), req)
			if err != nil {
				return err
			}
			if cc.json {
				return printJSON(cmd.OutOrStdout(), a)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", a.ID)
			fmt.Fprintf(cmd.ErrOrStderr(), "Activation ID for %d machines of %s (license %s%s). On each machine: tally-agent activate %s\n",
				a.Quantity, a.Product, a.License, expiryText(a.ExpiresAt), a.ID)
			return nil
		},
	}
	create.Flags().StringVar(&product, "product", "", "product (see 'products list')")
	create.Flags().IntVar(&quantity, "quantity", 0, "how many machines may activate it")
	create.Flags().StringVar(&expires, "expires", "", "last day it is valid (2027-06-30: through the end of that day in the server's time zone), or an RFC 3339 time (default: the license's expiry)")
	m.addConnFlags(create, &cc, true)

	var lc conn
	list := &cobra.Command{
		Use:   "list",
		Short: "List Activation IDs: product, quantity, seats in use, status and the machines holding them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := m.client(&lc)
			if err != nil {
				return err
			}
			as, err := cl.Activations(cmd.Context())
			if err != nil {
				return err
			}
			if lc.json {
				return printJSON(cmd.OutOrStdout(), as)
			}
			if len(as) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "No Activation IDs. Create one with 'tally-server activation create --product P --quantity N'.")
				return nil
			}
			t := newTable(cmd.OutOrStdout(), "ACTIVATION ID", "PRODUCT", "QUANTITY", "IN USE", "STATUS", "EXPIRES", "HELD BY")
			for _, a := range as {
				t.row(a.ID, a.Product, strconv.Itoa(a.Quantity), strconv.Itoa(a.InUse), a.Status, endText(a.ExpiresAt, a.ExpiryState, a.Expiry), holderText(a.Holders))
			}
			return t.flush()
		},
	}
	m.addConnFlags(list, &lc, true)

	var sc conn
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one Activation ID and the machines holding it",
		Args:  exactArgs(1, "activation show ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := m.client(&sc)
			if err != nil {
				return err
			}
			a, err := cl.Activation(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if sc.json {
				return printJSON(cmd.OutOrStdout(), a)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s: %s, %d of %d seats in use, %s, license %s, created %s%s\n", a.ID, a.Product, a.InUse, a.Quantity, a.Status, a.License,
				m.fmtTime(a.CreatedAt), expiryText(a.ExpiresAt))
			if a.ExpiryState != "" && a.ExpiryState != license.StateValid {
				fmt.Fprintf(w, "  %s\n", a.Expiry)
			}
			for _, h := range a.Holders {
				fmt.Fprintf(w, "  computer %d (%s), node %s, since %s\n", h.ComputerID, h.Hostname, h.NodeID, m.fmtTime(h.ActivatedAt))
			}
			return nil
		},
	}
	m.addConnFlags(show, &sc, true)

	var rc conn
	var computer string
	ret := &cobra.Command{
		Use:   "return ID --computer C",
		Short: "Free the seat a lost or broken machine holds (rehost); its record is revoked at its next contact",
		Args:  exactArgs(1, "activation return ID --computer C"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseComputerID(computer)
			if err != nil {
				return err
			}
			cl, err := m.client(&rc)
			if err != nil {
				return err
			}
			ch, err := cl.ReturnActivation(cmd.Context(), args[0], id)
			return m.printChange(cmd.OutOrStdout(), rc.json, ch, err)
		},
	}
	ret.Flags().StringVar(&computer, "computer", "", "computer ID holding the seat")
	_ = ret.MarkFlagRequired("computer")
	m.addConnFlags(ret, &rc, true)

	var dc conn
	deact := &cobra.Command{
		Use:   "deactivate ID",
		Short: "Make an Activation ID inactive: no new activations, every seat returned (records revoked at next contact)",
		Args:  exactArgs(1, "activation deactivate ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := m.client(&dc)
			if err != nil {
				return err
			}
			ch, err := cl.DeactivateActivation(cmd.Context(), args[0])
			return m.printChange(cmd.OutOrStdout(), dc.json, ch, err)
		},
	}
	m.addConnFlags(deact, &dc, true)
	cmd.AddCommand(create, list, show, ret, deact)
	return cmd
}

func holderText(hs []store.ActivationHolder) string {
	if len(hs) == 0 {
		return "-"
	}
	var parts []string
	for _, h := range hs {
		parts = append(parts, fmt.Sprintf("%d (%s)", h.ComputerID, h.Hostname))
	}
	return strings.Join(parts, ", ")
}

func (m *Main) leasesCommand() *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use:   "leases",
		Short: "List the concurrent seats checked out now and when each runs out without a heartbeat",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			ls, err := cl.Leases(cmd.Context())
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), ls)
			}
			t := newTable(cmd.OutOrStdout(), "PRODUCT", "COMPUTER", "HOSTNAME", "LICENSE", "SINCE", "EXPIRES IN")
			for _, l := range ls {
				t.row(l.Product, strconv.FormatInt(l.ComputerID, 10), l.Hostname, l.License, m.fmtTime(l.GrantedAt), time.Until(l.ExpiresAt).Round(time.Second).String())
			}
			return t.flush()
		},
	}
	m.addConnFlags(cmd, &c, true)
	return cmd
}
