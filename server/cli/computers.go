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
	fmt.Fprintf(w, "  memory:       %s\n", humanBytes(b.MemoryBytes))
	if b.Virtualization != "" {
		fmt.Fprintf(w, "  virtual:      %s\n", b.Virtualization)
	}
	if b.BootTime > 0 {
		fmt.Fprintf(w, "  booted:       %s\n", m.fmtTime(time.Unix(b.BootTime, 0)))
	}
	fmt.Fprintf(w, "  agent:        %s\n", b.AgentVersion)
	fmt.Fprintf(w, "  machine id:   %s\n  product uuid: %s\n  serial:       %s\n", b.Hints.MachineID, b.Hints.ProductUUID, b.Hints.Serial)
	for _, d := range b.Disks {
		fmt.Fprintf(w, "  disk:         %s on %s (%s), %s, %s free\n", d.Device, d.Mountpoint, d.FSType, humanBytes(d.TotalBytes), humanBytes(d.FreeBytes))
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

func (m *Main) enrollInfoCommand() *cobra.Command {
	var c conn
	var onlyCommand, onlyInstall bool
	var secret string
	cmd := &cobra.Command{
		Use:   "enroll-info [--secret NAME]",
		Short: "Print the server address, fingerprint, secret and the tally-agent install and enroll lines to paste",
		Long: `Print the server address, fingerprint, an enrollment secret, and what to run on each
machine: the 'tally-agent install' line (a service, enrolled), the package-manager
commands and the agent.conf for configuration management, and the plain
'tally-agent enroll' line. The secret is the newest active one, or the one --secret
names (by ID or name; a revoked or expired secret is refused).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			info, err := cl.EnrollInfoFor(cmd.Context(), secret)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), info)
			}
			w := cmd.OutOrStdout()
			switch {
			case onlyCommand:
				fmt.Fprintln(w, info.Command)
				return nil
			case onlyInstall:
				fmt.Fprintln(w, info.InstallCommand)
				return nil
			}
			fmt.Fprintf(w, "server:       %s\nfingerprint:  %s\nsecret:       %s (id %s)\n\n", info.Server, info.Fingerprint, info.Secret, info.SecretID)
			fmt.Fprintf(w, "On each Linux machine, install the agent as a service (it enrolls, then systemd runs it):\n\n  %s\n\n", info.InstallCommand)
			fmt.Fprintf(w, "With the .deb or .rpm package ('make packages' builds them), install the package, then run the line above:\n\n")
			fmt.Fprintf(w, "  apt-get install ./tally-agent_*_amd64.deb     # Debian, Ubuntu\n  dnf install ./tally-agent-*.x86_64.rpm         # Fedora, RHEL\n\n")
			fmt.Fprintf(w, "Configuration management: drop this /etc/tally/agent.conf (list the plug-ins to roll out),\n\n")
			for _, l := range strings.Split(strings.TrimSuffix(info.AgentConfig, "\n"), "\n") {
				fmt.Fprintf(w, "  %s\n", l)
			}
			fmt.Fprintf(w, "\nthen run once per machine (server and fingerprint come from the file):\n\n  tally-agent install --secret %s\n\n", info.Secret)
			fmt.Fprintf(w, "To enroll without a service:\n\n  %s\n", info.Command)
			return nil
		},
	}
	cmd.Flags().BoolVar(&onlyCommand, "command", false, "print only the tally-agent enroll line (for scripts)")
	cmd.Flags().BoolVar(&onlyInstall, "install-command", false, "print only the tally-agent install line (for scripts)")
	cmd.Flags().StringVar(&secret, "secret", "", "the enrollment secret to print, by ID or name (default: the newest active one)")
	m.addConnFlags(cmd, &c, true)
	return cmd
}

func (m *Main) secretsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "secrets", Aliases: []string{"secret"}, Short: "Manage enrollment secrets (list, create, revoke)"}
	var lc conn
	list := &cobra.Command{
		Use:   "list",
		Short: "List enrollment secrets with their use counts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := m.client(&lc)
			if err != nil {
				return err
			}
			ss, err := c.Secrets(cmd.Context())
			if err != nil {
				return err
			}
			if lc.json {
				return printJSON(cmd.OutOrStdout(), ss)
			}
			t := newTable(cmd.OutOrStdout(), "ID", "NAME", "STATE", "CREATED", "EXPIRES", "USES", "SECRET")
			now := time.Now()
			for _, s := range ss {
				state := "active"
				if s.RevokedAt != nil {
					state = "revoked " + m.fmtTime(*s.RevokedAt)
				} else if !s.Active(now) {
					state = "expired"
				}
				exp := "never"
				if s.ExpiresAt != nil {
					exp = m.fmtTime(*s.ExpiresAt)
				}
				t.row(s.ID, s.Name, state, m.fmtTime(s.CreatedAt), exp, strconv.FormatInt(s.Uses, 10), s.Value)
			}
			return t.flush()
		},
	}
	m.addConnFlags(list, &lc, true)

	var cc conn
	var name, value, expires string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an enrollment secret (random unless --value is given)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The server reads --expires in its time zone and by its clock.
			req := adminapi.CreateSecretRequest{Name: name, Value: value, Expires: expires}
			c, err := m.client(&cc)
			if err != nil {
				return err
			}
			s, err := c.CreateSecret(cmd.Context(), req)
			if err != nil {
				return err
			}
			if cc.json {
				return printJSON(cmd.OutOrStdout(), s)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created enrollment secret %s: %s\n", s.ID, s.Value)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "a name to recognise the secret by (e.g. the site or team)")
	create.Flags().StringVar(&value, "value", "", "use this value instead of a random one (16 to 128 characters)")
	create.Flags().StringVar(&expires, "expires", "", "expiry: a date (2027-01-31: through the end of that day in the server's time zone), a time (RFC 3339) or a duration from now (72h, 30d)")
	m.addConnFlags(create, &cc, true)

	var rc conn
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an enrollment secret: it can enroll no more machines (enrolled ones are unaffected)",
		Args:  exactArgs(1, "secrets revoke ID (the id 'secrets list' shows)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := m.client(&rc)
			if err != nil {
				return err
			}
			s, err := c.RevokeSecret(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if rc.json {
				return printJSON(cmd.OutOrStdout(), s)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Revoked enrollment secret %s (%s); it had enrolled %d machines, which stay enrolled.\n", s.ID, s.Name, s.Uses)
			return nil
		},
	}
	m.addConnFlags(revoke, &rc, true)
	cmd.AddCommand(list, create, revoke)
	return cmd
}

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

func parseComputerID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, exitcode.Newf(exitcode.Usage, "%q is not a computer ID: use the number in the ID column of 'tally-server computers list'", s)
	}
	return id, nil
}

func exactArgs(n int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("usage: tally-server %s", usage)
		}
		return nil
	}
}

// fmtTime shows a time in the server's time zone (serve --timezone), as
// its answers name it, so that every admin reads the times the server
// reads dates in; before any answer, in this host's zone.
func (m *Main) fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	zone := time.Local
	if m.api != nil && m.api.Zone() != nil {
		zone = m.api.Zone()
	}
	return t.In(zone).Format("2006-01-02 15:04:05")
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for x := n / unit; x >= unit; x /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
