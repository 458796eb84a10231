package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/server/adminapi"
)

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
names (by ID or name; a revoked or expired secret is refused).

The server address is serve's --advertise: for several replicas sharing one identity,
start each with --advertise listing every replica (a:7443,b:7443), and the lines
printed here give agents the whole list.`,
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
			fmt.Fprintf(w, "server:       %s\n", info.Server)
			if n := strings.Count(info.Server, ",") + 1; n > 1 {
				// serve --advertise lists the replicas.
				fmt.Fprintf(w, "              (%d replicas sharing this identity: agents dial them in this order and fail over)\n", n)
			}
			fmt.Fprintf(w, "fingerprint:  %s\nsecret:       %s (id %s)\n\n", info.Fingerprint, info.Secret, info.SecretID)
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
			now := m.now()
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
