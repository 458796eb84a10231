package cli

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/server/adminapi"
)

func (m *Main) eventsCommand() *cobra.Command {
	var c conn
	var since, computer, product, kind string
	var limit int
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Show the audit log: enrollments, seats consumed and freed, status changes, …",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if since != "" {
				if _, err := adminapi.ParseSince(since, m.now()); err != nil {
					return err
				}
				q.Set("since", since)
			}
			if computer != "" {
				id, err := parseComputerID(computer)
				if err != nil {
					return err
				}
				q.Set("computer", strconv.FormatInt(id, 10))
			}
			if product != "" {
				q.Set("product", product)
			}
			if kind != "" {
				q.Set("kind", kind)
			}
			if limit > 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			ev, err := cl.Events(cmd.Context(), q)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), ev)
			}
			t := newTable(cmd.OutOrStdout(), "TIME", "KIND", "COMPUTER", "PRODUCT", "ACTOR", "REASON")
			for _, e := range ev {
				comp := ""
				if e.ComputerID != 0 {
					comp = strconv.FormatInt(e.ComputerID, 10)
				}
				reason := e.Reason
				if e.Count > 1 {
					reason += fmt.Sprintf(" (×%d)", e.Count)
				}
				t.row(m.fmtTime(e.At), e.Kind, comp, e.Product, e.Actor, reason)
			}
			return t.flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "only events since a time (2026-11-25, RFC 3339) or a duration ago (24h, 7d)")
	f.StringVar(&computer, "computer", "", "only events of this computer ID")
	f.StringVar(&product, "product", "", "only events of this product")
	f.StringVar(&kind, "kind", "", "only events of this kind (e.g. seat.consumed)")
	f.IntVar(&limit, "limit", 1000, "at most this many (the newest)")
	m.addConnFlags(cmd, &c, true)
	return cmd
}
