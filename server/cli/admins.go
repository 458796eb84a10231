package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/common/cliusage"
	"github.com/tallyhq/tally/server/adminapi"
	"github.com/tallyhq/tally/server/admins"
)

func (m *Main) adminsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "admins", Aliases: []string{"admin"}, Short: "Manage named admins, their roles, passwords and API tokens",
		Long: `Manage named admins. Roles: viewer (reads everything but enrollment secrets),
operator (also computers, Activation IDs, leases, maintenance), admin (everything,
including licenses, products, enrollment secrets and admins). The data folder's
admin-token is the token of the first admin, named 'admin'.`}

	var lc conn
	var withTokens bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List admins with their roles, tokens and last use (--tokens: their tokens)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := m.client(&lc)
			if err != nil {
				return err
			}
			if withTokens {
				ts, err := c.Tokens(cmd.Context(), "")
				if err != nil {
					return err
				}
				if lc.json {
					return printJSON(cmd.OutOrStdout(), ts)
				}
				t := newTable(cmd.OutOrStdout(), "ID", "ADMIN", "LABEL", "CREATED", "LAST USED", "STATE")
				for _, tk := range ts {
					used, state := "never", "active"
					if tk.LastUsed != nil {
						used = m.fmtTime(*tk.LastUsed)
					}
					if tk.RevokedAt != nil {
						state = "revoked " + m.fmtTime(*tk.RevokedAt)
					}
					t.row(tk.ID, tk.Admin, tk.Label, m.fmtTime(tk.CreatedAt), used, state)
				}
				return t.flush()
			}
			as, err := c.Admins(cmd.Context())
			if err != nil {
				return err
			}
			if lc.json {
				return printJSON(cmd.OutOrStdout(), as)
			}
			t := newTable(cmd.OutOrStdout(), "NAME", "ROLE", "PASSWORD", "TOKENS", "CREATED", "LAST SEEN")
			for _, a := range as {
				pw, seen := "no", "never"
				if a.HasPassword {
					pw = "yes"
				}
				if a.LastSeen != nil {
					seen = m.fmtTime(*a.LastSeen)
				}
				t.row(a.Name, a.Role, pw, strconv.Itoa(a.Tokens), m.fmtTime(a.CreatedAt), seen)
			}
			return t.flush()
		},
	}
	list.Flags().BoolVar(&withTokens, "tokens", false, "list the API tokens (ID, admin, last use) instead")
	m.addConnFlags(list, &lc, true)

	var ac conn
	var role, pwFile string
	add := &cobra.Command{
		Use:   "add NAME --role viewer|operator|admin",
		Short: "Add an admin (with a console password from --password-file; issue API tokens with 'admins token issue')",
		Args:  exactArgs(1, "admins add NAME --role viewer|operator|admin [--password-file FILE]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := admins.CheckName(args[0]); err != nil {
				return cliusage.Error(cmd, err)
			}
			if _, err := admins.ParseRole(role); err != nil {
				return cliusage.Error(cmd, fmt.Errorf("--role: %w", err))
			}
			req := adminapi.AddAdminRequest{Name: args[0], Role: role}
			if pwFile != "" {
				pw, err := readPassword(pwFile)
				if err != nil {
					return cliusage.Error(cmd, err)
				}
				req.Password = pw
			}
			c, err := m.client(&ac)
			if err != nil {
				return err
			}
			a, err := c.AddAdmin(cmd.Context(), req)
			if err != nil {
				return err
			}
			if ac.json {
				return printJSON(cmd.OutOrStdout(), a)
			}
			how := "no password yet: set one with 'tally-server admins passwd " + a.Name + " --password-file FILE'"
			if a.HasPassword {
				how = "signs in to the console with the password given"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Added admin %s (%s); %s; API tokens: 'tally-server admins token issue %s'.\n", a.Name, a.Role, how, a.Name)
			return nil
		},
	}
	add.Flags().StringVar(&role, "role", "", "viewer, operator or admin")
	add.Flags().StringVar(&pwFile, "password-file", "", "read the console password from this file's first line ('-': standard input); 12 to 256 characters")
	_ = add.MarkFlagRequired("role")
	m.addConnFlags(add, &ac, true)

	var rc conn
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove an admin: its tokens stop working and its console sessions end at once",
		Args:  exactArgs(1, "admins remove NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := m.client(&rc)
			if err != nil {
				return err
			}
			if err := c.RemoveAdmin(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed admin %s; its tokens and console sessions no longer work.\n", args[0])
			return nil
		},
	}
	m.addConnFlags(remove, &rc, false)

	var pc conn
	var pwFile2 string
	passwd := &cobra.Command{
		Use:   "passwd NAME --password-file FILE",
		Short: "Set an admin's console password (its console sessions end)",
		Args:  exactArgs(1, "admins passwd NAME --password-file FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(pwFile2)
			if err != nil {
				return cliusage.Error(cmd, err)
			}
			c, err := m.client(&pc)
			if err != nil {
				return err
			}
			if err := c.SetPassword(cmd.Context(), args[0], pw); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Set the password of %s; its console sessions ended.\n", args[0])
			return nil
		},
	}
	passwd.Flags().StringVar(&pwFile2, "password-file", "", "read the password from this file's first line ('-': standard input); 12 to 256 characters")
	_ = passwd.MarkFlagRequired("password-file")
	m.addConnFlags(passwd, &pc, false)

	cmd.AddCommand(list, add, remove, passwd, m.tokenCommand())
	return cmd
}

func (m *Main) tokenCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Aliases: []string{"tokens"}, Short: "Issue and revoke admins' API tokens"}
	var ic conn
	var label string
	issue := &cobra.Command{
		Use:   "issue NAME",
		Short: "Issue an API token for an admin; it is shown once",
		Args:  exactArgs(1, "admins token issue NAME [--label TEXT]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := m.client(&ic)
			if err != nil {
				return err
			}
			t, err := c.IssueToken(cmd.Context(), args[0], label)
			if err != nil {
				return err
			}
			if ic.json {
				return printJSON(cmd.OutOrStdout(), t)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Issued token %s for %s (shown this once; the server keeps only its hash):\n%s\n", t.ID, t.Admin, t.Token)
			return nil
		},
	}
	issue.Flags().StringVar(&label, "label", "", "what the token is for (a script, a host)")
	m.addConnFlags(issue, &ic, true)

	var rc conn
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API token (by the ID 'admins list --tokens' shows)",
		Args:  exactArgs(1, "admins token revoke ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := m.client(&rc)
			if err != nil {
				return err
			}
			t, err := c.RevokeToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if rc.json {
				return printJSON(cmd.OutOrStdout(), t)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Revoked token %s of %s.\n", t.ID, t.Admin)
			return nil
		},
	}
	m.addConnFlags(revoke, &rc, true)
	cmd.AddCommand(issue, revoke)
	return cmd
}

// readPassword reads a password from the first line of a file ("-":
// standard input), so that it never appears in a command line or shell
// history.
func readPassword(file string) (string, error) {
	var r io.Reader
	if file == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return "", fmt.Errorf("--password-file: %w", err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	pw := strings.TrimSuffix(string(line), "\r")
	if err := admins.CheckPassword(pw); err != nil {
		return "", fmt.Errorf("--password-file %s: %w", file, err)
	}
	return pw, nil
}
