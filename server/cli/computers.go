package cli

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/common/exitcode"
	"github.com/tallyhq/tally/server/adminapi"
)

func (m *Main) computersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "computers",
		Aliases: []string{"computer"},
		Short:   "List and inspect managed computers",
	}
	var lc conn
	list := &cobra.Command{
		Use:   "list",
		Short: "List computers: ID, hostname, OS, status, first and last seen",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := m.client(&lc)
			if err != nil {
				return err
			}
			cs, err := c.Computers(cmd.Context())
			if err != nil {
				return err
			}
			if lc.json {
				return printJSON(cmd.OutOrStdout(), cs)
			}
			if len(cs) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "No computers yet. Enroll an agent with the line 'tally-server enroll-info' prints.")
				return nil
			}
			t := newTable(cmd.OutOrStdout(), "ID", "HOSTNAME", "OS", "STATUS", "FIRST SEEN", "LAST SEEN", "FLAGS")
			for _, x := range cs {
				t.row(strconv.FormatInt(x.ID, 10), x.Hostname, strings.TrimSpace(x.Platform+" "+x.PlatformVersion), x.Status,
					fmtTime(x.FirstSeen), fmtTime(x.LastSeen), strings.Join(x.Flags, ","))
			}
			return t.flush()
		},
	}
	m.addConnFlags(list, &lc, true)

	var sc conn
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one computer with its whole basic inventory",
		Args:  exactArgs(1, "computers show ID (the number 'computers list' shows)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseComputerID(args[0])
			if err != nil {
				return err
			}
			c, err := m.client(&sc)
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
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Computer %d: %s\n", x.ID, x.Hostname)
			fmt.Fprintf(w, "  status:       %s%s\n", x.Status, map[bool]string{true: " (deleted)"}[x.Deleted])
			fmt.Fprintf(w, "  first seen:   %s\n  last seen:    %s\n", fmtTime(x.FirstSeen), fmtTime(x.LastSeen))
			fmt.Fprintf(w, "  node key:     %s\n", x.NodeID)
			if len(x.Flags) > 0 {
				fmt.Fprintf(w, "  flags:        %s (shares identity hints with %v)\n", strings.Join(x.Flags, ", "), x.DuplicateOf)
			}
			if b := x.Basic; b != nil {
				fmt.Fprintf(w, "  os:           %s %s (%s, kernel %s, %s)\n", b.Platform, b.PlatformVersion, b.OS, b.KernelVersion, b.Arch)
				fmt.Fprintf(w, "  cpu:          %s, %d cores, %d threads\n", b.CPUModel, b.CPUCores, b.CPUThreads)
				fmt.Fprintf(w, "  memory:       %s\n", humanBytes(b.MemoryBytes))
				if b.Virtualization != "" {
					fmt.Fprintf(w, "  virtual:      %s\n", b.Virtualization)
				}
				if b.BootTime > 0 {
					fmt.Fprintf(w, "  booted:       %s\n", fmtTime(time.Unix(b.BootTime, 0)))
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
			} else {
				fmt.Fprintln(w, "  (no inventory posted yet)")
			}
			return nil
		},
	}
	m.addConnFlags(show, &sc, true)
	cmd.AddCommand(list, show)
	cmd.AddCommand(m.computerAdminCommands()...)
	return cmd
}

func (m *Main) enrollInfoCommand() *cobra.Command {
	var c conn
	var onlyCommand bool
	cmd := &cobra.Command{
		Use:   "enroll-info",
		Short: "Print the server address, fingerprint, secret and the tally-agent enroll line to paste",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := m.client(&c)
			if err != nil {
				return err
			}
			info, err := cl.EnrollInfo(cmd.Context())
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), info)
			}
			w := cmd.OutOrStdout()
			if onlyCommand {
				fmt.Fprintln(w, info.Command)
				return nil
			}
			fmt.Fprintf(w, "server:       %s\nfingerprint:  %s\nsecret:       %s (id %s)\n\nOn each machine, run:\n\n  %s\n",
				info.Server, info.Fingerprint, info.Secret, info.SecretID, info.Command)
			return nil
		},
	}
	cmd.Flags().BoolVar(&onlyCommand, "command", false, "print only the tally-agent enroll line (for scripts)")
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
					state = "revoked " + fmtTime(*s.RevokedAt)
				} else if !s.Active(now) {
					state = "expired"
				}
				exp := "never"
				if s.ExpiresAt != nil {
					exp = fmtTime(*s.ExpiresAt)
				}
				t.row(s.ID, s.Name, state, fmtTime(s.CreatedAt), exp, strconv.FormatInt(s.Uses, 10), s.Value)
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
			req := adminapi.CreateSecretRequest{Name: name, Value: value}
			if expires != "" {
				t, err := parseExpiry(expires, time.Now())
				if err != nil {
					return err
				}
				req.Expires = &t
			}
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
	create.Flags().StringVar(&expires, "expires", "", "expiry: a date (2027-01-31), a time (RFC 3339) or a duration from now (72h, 30d)")
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
				if _, err := adminapi.ParseSince(since, time.Now()); err != nil {
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
				t.row(fmtTime(e.At), e.Kind, comp, e.Product, e.Actor, reason)
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

func parseExpiry(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, time.Local); err == nil {
		return t, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n > 0 {
			return now.Add(time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(d), nil
	}
	return time.Time{}, fmt.Errorf("--expires %q: use a date (2027-01-31), a time (RFC 3339) or a duration from now (72h, 30d)", s)
}

func exactArgs(n int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("usage: tally-server %s", usage)
		}
		return nil
	}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
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
