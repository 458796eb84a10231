package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/common/exitcode"
)

func (m *Main) alertsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "alerts", Aliases: []string{"alert"},
		Short: "Webhooks told once of each expiry (30 and 7 days before, overdue), shortfall, maintenance mismatch, product data discards starting and drift found by maintenance"}
	add := &cobra.Command{Use: "add", Short: "Add a receiver of alerts"}
	var c conn
	var secret string
	hook := &cobra.Command{
		Use:   "webhook URL [--secret S]",
		Short: "POST each alert as JSON to URL, signed: header Tally-Signature: sha256=HMAC-SHA256(secret, body) in hex",
		Long: `Each alert is a JSON document (key, kind, license, message, action, at) POSTed to URL with
the header Tally-Signature: sha256=<hex HMAC-SHA256 of the body under the secret>. A
receiver that fails (not 2xx, or unreachable) is tried again with back-off, doubling
from 10 s up to an hour, 12 attempts in all; 'alerts deliveries' shows each one.
Alerts are queued in the database: a restart loses none. Without --secret, one is
made up and printed once.`,
		Args: exactArgs(1, "alerts add webhook URL [--secret S]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			h, err := cl.AddWebhook(cmd.Context(), args[0], secret)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), h)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Added webhook %d: %s\nsecret: %s\n", h.ID, h.URL, h.Secret)
			return nil
		},
	}
	hook.Flags().StringVar(&secret, "secret", "", "the HMAC key shared with the receiver, 16 to 256 characters (default: made up)")
	m.addConnFlags(hook, &c, true)
	add.AddCommand(hook)

	var lc conn
	list := &cobra.Command{Use: "list", Short: "List the webhooks", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := m.client(&lc)
			if err != nil {
				return err
			}
			hs, err := cl.Webhooks(cmd.Context())
			if err != nil {
				return err
			}
			if lc.json {
				return printJSON(cmd.OutOrStdout(), hs)
			}
			t := newTable(cmd.OutOrStdout(), "ID", "URL", "ADDED")
			for _, h := range hs {
				t.row(strconv.FormatInt(h.ID, 10), h.URL, m.fmtTime(h.CreatedAt))
			}
			return t.flush()
		}}
	m.addConnFlags(list, &lc, true)

	var dc conn
	deliveries := &cobra.Command{Use: "deliveries", Short: "The delivery log: each alert to each webhook, its attempts and outcome", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := m.client(&dc)
			if err != nil {
				return err
			}
			ds, err := cl.Deliveries(cmd.Context())
			if err != nil {
				return err
			}
			if dc.json {
				return printJSON(cmd.OutOrStdout(), ds)
			}
			t := newTable(cmd.OutOrStdout(), "ID", "WEBHOOK", "STATE", "ATTEMPTS", "LAST", "NEXT", "CONDITION")
			for _, d := range ds {
				last, next := "-", "-"
				if d.LastAt != nil {
					last = m.fmtTime(*d.LastAt)
					if d.LastError != "" {
						last += " (" + d.LastError + ")"
					}
				}
				if d.NextAt != nil {
					next = m.fmtTime(*d.NextAt)
				}
				t.row(strconv.FormatInt(d.ID, 10), strconv.FormatInt(d.Webhook, 10), d.State, strconv.Itoa(d.Attempts), last, next, d.Key)
			}
			return t.flush()
		}}
	m.addConnFlags(deliveries, &dc, true)
	var rc conn
	remove := &cobra.Command{Use: "remove ID", Short: "Remove a webhook: it gets no more alerts, its pending deliveries are given up, its delivery log stays",
		Args: exactArgs(1, "alerts remove ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return exitcode.Newf(exitcode.Usage, "%q is not a webhook ID: use the number in the ID column of 'tally-server alerts list'", args[0])
			}
			cl, err := m.client(&rc)
			if err != nil {
				return err
			}
			h, err := cl.RemoveWebhook(cmd.Context(), id)
			if err != nil {
				return err
			}
			if rc.json {
				return printJSON(cmd.OutOrStdout(), h)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed webhook %d: %s\n", h.ID, h.URL)
			return nil
		}}
	m.addConnFlags(remove, &rc, true)
	cmd.AddCommand(add, list, remove, deliveries)
	return cmd
}
