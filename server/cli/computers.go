package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/common/bytesize"
	"github.com/tallyhq/tally/common/exitcode"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/store"
)

func (m *Main) computersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "computers",
		Aliases: []string{"computer"},
		Short:   "List, find and administer managed computers",
	}
	cmd.AddCommand(m.computersList(), m.computersShow(), m.computersBlocked(), m.computersUnblock())
	cmd.AddCommand(m.computerAdminCommands()...)
	return cmd
}

func (m *Main) computersList() *cobra.Command {
	var lc conn
	var f struct {
		hostname, status, product, plugin, notSeen, flag string
		after                                            int64
		limit                                            int
	}
	list := &cobra.Command{
		Use:   "list [--hostname H] [--status S] [--product P] [--plugin P] [--not-seen-since 30d] [--flag F] [--limit N] [--after ID]",
		Short: "List computers: ID, hostname, OS, status, first and last seen, flags; filtered and paged",
		Long: `List live computers by ID, at most --limit a page (default 500). When more match,
the last line says how to get the next page (--after the last ID shown).

Filters combine: --hostname takes a substring or a glob (web-*, db?), case-insensitive;
--status a status name; --product computers holding a seat of it (node, Activation ID
or lease); --plugin computers with that plug-in installed; --not-seen-since a duration
(720h, 30d) or a date (2026-11-25); --flag duplicate-hints or agent-uninstalled.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"hostname": f.hostname, "status": f.status, "product": f.product,
				"plugin": f.plugin, "not_seen_since": f.notSeen, "flag": f.flag} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if f.after != 0 {
				q.Set("after", strconv.FormatInt(f.after, 10))
			}
			q.Set("limit", strconv.Itoa(f.limit))
			// Checked here too, so a bad value is refused before any request.
			if _, err := adminapi.ComputerFilter(q, m.now()); err != nil {
				return flagError(err)
			}
			c, err := m.client(&lc)
			if err != nil {
				return err
			}
			page, err := c.ListComputers(cmd.Context(), q)
			if err != nil {
				return err
			}
			if lc.json {
				return printJSON(cmd.OutOrStdout(), page)
			}
			w := cmd.OutOrStdout()
			if len(page.Computers) == 0 {
				if len(q) == 1 && f.after == 0 {
					fmt.Fprintln(w, "No computers yet. Enroll an agent with the line 'tally-server enroll-info' prints.")
				} else {
					fmt.Fprintln(w, "No computer matches.")
				}
				return nil
			}
			t := newTable(w, "ID", "HOSTNAME", "OS", "STATUS", "FIRST SEEN", "LAST SEEN", "FLAGS")
			for _, x := range page.Computers {
				t.row(strconv.FormatInt(x.ID, 10), x.Hostname, strings.TrimSpace(x.Platform+" "+x.PlatformVersion), x.Status,
					m.fmtTime(x.FirstSeen), m.fmtTime(x.LastSeen), strings.Join(x.Flags, ","))
			}
			if err := t.flush(); err != nil {
				return err
			}
			if page.Next != 0 {
				fmt.Fprintf(w, "Showing the first %d; more match: add --after %d for the next page.\n", len(page.Computers), page.Next)
			}
			return nil
		},
	}
	fl := list.Flags()
	fl.StringVar(&f.hostname, "hostname", "", "hostname contains this, or matches this glob (web-*), case-insensitive")
	fl.StringVar(&f.status, "status", "", "only computers with this status (see 'tally-server statuses list')")
	fl.StringVar(&f.product, "product", "", "only computers holding a seat of this product")
	fl.StringVar(&f.plugin, "plugin", "", "only computers with this plug-in installed")
	fl.StringVar(&f.notSeen, "not-seen-since", "", "only computers not seen for this long (720h, 30d) or since this date (2026-11-25)")
	fl.StringVar(&f.flag, "flag", "", "only computers with this flag: "+strings.Join(store.Flags, ", "))
	fl.Int64Var(&f.after, "after", 0, "start after this computer ID (the next page)")
	fl.IntVar(&f.limit, "limit", store.DefaultComputerLimit, fmt.Sprintf("at most this many computers (1 to %d)", store.MaxComputerLimit))
	m.addConnFlags(list, &lc, true)
	return list
}

// flagError is a bad flag value as a sentence, without the store's prefix.
func flagError(err error) error {
	return errors.New(strings.TrimPrefix(err.Error(), store.ErrInvalid.Error()+": "))
}

func (m *Main) computersShow() *cobra.Command {
	var sc conn
	show := &cobra.Command{
		Use:   "show ID|HOSTNAME|MACHINE-ID",
		Short: "Show one computer: its seats and whole basic inventory",
		Args:  exactArgs(1, "computers show ID|HOSTNAME|MACHINE-ID (the number 'computers list' shows, a hostname or a machine ID)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, id, err := m.computerClient(cmd.Context(), &sc, args[0])
			if err != nil {
				return err
			}
			x, err := c.Computer(cmd.Context(), id)
			if err != nil {
				return err
			}
			if sc.json {
				return printJSON(cmd.OutOrStdout(), x)
			}
			m.printComputer(cmd.OutOrStdout(), x)
			return nil
		},
	}
	m.addConnFlags(show, &sc, true)
	return show
}

func (m *Main) printComputer(w io.Writer, x store.Computer) {
	fmt.Fprintf(w, "Computer %d: %s\n", x.ID, x.Hostname)
	fmt.Fprintf(w, "  status:       %s%s\n", x.Status, map[bool]string{true: " (deleted)"}[x.Deleted])
	fmt.Fprintf(w, "  first seen:   %s\n  last seen:    %s\n", m.fmtTime(x.FirstSeen), m.fmtTime(x.LastSeen))
	fmt.Fprintf(w, "  node key:     %s\n", x.NodeID)
	for _, f := range x.Flags {
		switch f {
		case store.FlagDuplicateHints:
			fmt.Fprintf(w, "  flag:         %s (shares identity hints with %v)\n", f, x.DuplicateOf)
		case store.FlagAgentUninstalled:
			fmt.Fprintf(w, "  flag:         %s (its agent was uninstalled; cleared when the machine enrolls again)\n", f)
		default:
			fmt.Fprintf(w, "  flag:         %s\n", f)
		}
	}
	if len(x.Seats) == 0 {
		fmt.Fprintf(w, "  seats:        none\n")
	}
	for _, s := range x.Seats {
		fmt.Fprintf(w, "  seat:         %s (%s), license %s, since %s: %s\n", s.Product, s.Kind, s.License, m.fmtTime(s.Since), s.Reason)
	}
	b := x.Basic
	if b == nil {
		fmt.Fprintln(w, "  (no inventory posted yet)")
		return
	}
	fmt.Fprintf(w, "  os:           %s %s (%s, kernel %s, %s)\n", b.Platform, b.PlatformVersion, b.OS, b.KernelVersion, b.Arch)
	fmt.Fprintf(w, "  cpu:          %s, %d cores, %d threads\n", b.CPUModel, b.CPUCores, b.CPUThreads)
	fmt.Fprintf(w, "  memory:       %s\n", bytesize.Format(b.MemoryBytes))
	if b.Virtualization != "" {
		fmt.Fprintf(w, "  virtual:      %s\n", b.Virtualization)
	}
	if b.BootTime > 0 {
		fmt.Fprintf(w, "  booted:       %s\n", m.fmtTime(time.Unix(b.BootTime, 0)))
	}
	fmt.Fprintf(w, "  agent:        %s\n", b.AgentVersion)
	fmt.Fprintf(w, "  machine id:   %s\n  product uuid: %s\n  serial:       %s\n", b.Hints.MachineID, b.Hints.ProductUUID, b.Hints.Serial)
	for _, d := range b.Disks {
		fmt.Fprintf(w, "  disk:         %s on %s (%s), %s, %s free\n", d.Device, d.Mountpoint, d.FSType, bytesize.Format(d.TotalBytes), bytesize.Format(d.FreeBytes))
	}
	for _, n := range b.NICs {
		fmt.Fprintf(w, "  interface:    %s %s %s\n", n.Name, n.MAC, strings.Join(n.Addrs, " "))
	}
	if len(b.Plugins) == 0 {
		fmt.Fprintf(w, "  plug-ins:     none\n")
	}
	for _, p := range b.Plugins {
		fmt.Fprintf(w, "  plug-in:      %s %s (built %s)\n", p.Name, p.Version, p.BuildDate)
	}
}

func (m *Main) computersBlocked() *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use:   "blocked",
		Short: "List machines deleted with --block: when, by whom, and the keys and identity hints refused",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			bs, err := cl.BlockedMachines(cmd.Context())
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), bs)
			}
			w := cmd.OutOrStdout()
			if len(bs) == 0 {
				fmt.Fprintln(w, "No machine is blocked.")
				return nil
			}
			t := newTable(w, "ID", "HOSTNAME", "BLOCKED", "BY", "REFUSED")
			for _, b := range bs {
				hints := make([]string, len(b.Hints))
				for i, h := range b.Hints {
					hints[i] = h.Kind + "=" + h.Value
				}
				t.row(strconv.FormatInt(b.ComputerID, 10), b.Hostname, m.fmtTime(b.At), b.By, strings.Join(hints, " "))
			}
			if err := t.flush(); err != nil {
				return err
			}
			fmt.Fprintln(w, "Let one enroll again with 'tally-server computers unblock ID'.")
			return nil
		},
	}
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func (m *Main) computersUnblock() *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use:   "unblock ID",
		Short: "Let a blocked machine enroll again (as a new computer); audited",
		Args:  exactArgs(1, "computers unblock ID (the number 'computers blocked' shows)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseComputerID(args[0])
			if err != nil {
				return err
			}
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			b, err := cl.Unblock(cmd.Context(), id)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), b)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Unblocked computer %d (%s): its %d keys and identity hints are no longer refused.\nOn that machine, run 'tally-agent enroll' again (the line 'tally-server enroll-info' prints): it enrolls as a new computer.\n",
				b.ComputerID, b.Hostname, len(b.Hints))
			return nil
		},
	}
	m.addConnFlags(cmd, &c, true)
	return cmd
}

// computerClient connects to the server and turns what an admin typed (an
// ID, a hostname or a machine ID) into a computer ID through the server's
// one resolver. A number is taken as an ID, checked before any request.
func (m *Main) computerClient(ctx context.Context, c *conn, ref string) (*adminapi.Client, int64, error) {
	numeric := false
	if _, err := strconv.ParseInt(ref, 10, 64); err == nil {
		numeric = true
		if _, err := parseComputerID(ref); err != nil {
			return nil, 0, err
		}
	}
	cl, err := m.client(c)
	if err != nil {
		return nil, 0, err
	}
	if numeric {
		id, _ := strconv.ParseInt(ref, 10, 64)
		return cl, id, nil
	}
	x, err := cl.ComputerByRef(ctx, ref)
	if err != nil {
		return nil, 0, err
	}
	return cl, x.ID, nil
}

func (m *Main) computerAdminCommands() []*cobra.Command {
	var sc conn
	setStatus := &cobra.Command{
		Use:   "set-status ID|HOSTNAME STATUS",
		Short: "Set a computer's status; frees exactly the seats whose product rule names that status",
		Args:  exactArgs(2, "computers set-status ID STATUS"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, id, err := m.computerClient(cmd.Context(), &sc, args[0])
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
		Use:   "retire ID|HOSTNAME",
		Short: "Set a computer's status to Retired (it stays Retired if it posts again)",
		Args:  exactArgs(1, "computers retire ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, id, err := m.computerClient(cmd.Context(), &rc, args[0])
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
		Use:   "delete ID|HOSTNAME [--block]",
		Short: "Delete a computer: frees every seat and revokes its keys; --block refuses it at enrollment until 'computers unblock'",
		Args:  exactArgs(1, "computers delete ID [--block]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, id, err := m.computerClient(cmd.Context(), &dc, args[0])
			if err != nil {
				return err
			}
			ch, err := cl.DeleteComputer(cmd.Context(), id, block)
			return m.printChange(cmd.OutOrStdout(), dc.json, ch, err)
		},
	}
	del.Flags().BoolVar(&block, "block", false, "refuse this machine's keys and identity hints at enrollment until 'computers unblock'")
	m.addConnFlags(del, &dc, true)
	var wc conn
	why := &cobra.Command{
		Use:   "why ID|HOSTNAME PRODUCT",
		Short: "Explain why a computer holds (or lacks) a product's seat",
		Args:  exactArgs(2, "computers why ID PRODUCT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, id, err := m.computerClient(cmd.Context(), &wc, args[0])
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
					fmt.Fprintf(w, "  %s  %-16s %s%s\n", m.fmtTime(e.At), e.Kind, e.Reason, count)
				}
			}
			return nil
		},
	}
	m.addConnFlags(why, &wc, true)
	var swc conn
	software := &cobra.Command{
		Use:   "software ID|HOSTNAME",
		Short: "List a computer's stored software inventory",
		Args:  exactArgs(1, "computers software ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, id, err := m.computerClient(cmd.Context(), &swc, args[0])
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
	var force bool
	task := &cobra.Command{
		Use:   "task ID|HOSTNAME ACTION [--force]",
		Short: "Queue an agent action (collect-now or refresh-plugins) for a computer with the software-management plug-in, which runs it; --force queues it for one without",
		Args:  exactArgs(2, "computers task ID collect-now|refresh-plugins"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, id, err := m.computerClient(cmd.Context(), &tc, args[0])
			if err != nil {
				return err
			}
			tid, err := cl.QueueTask(cmd.Context(), id, adminapi.TaskRequest{Action: args[1], Force: force})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Queued task %s (%s) for computer %d\n", tid, args[1], id)
			return nil
		},
	}
	task.Flags().BoolVar(&force, "force", false, "queue the task even though the computer has no software-management plug-in to run it")
	m.addConnFlags(task, &tc, false)
	return []*cobra.Command{setStatus, retire, del, why, software, task}
}

func parseComputerID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, exitcode.Newf(exitcode.Usage, "%q is not a computer ID: use the number in the ID column of 'tally-server computers list'", s)
	}
	return id, nil
}
