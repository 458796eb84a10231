package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/agent/config"
	"github.com/tallyhq/tally/agent/runner"
	"github.com/tallyhq/tally/agent/spool"
	"github.com/tallyhq/tally/agent/state"
	"github.com/tallyhq/tally/common/buildinfo"
	"github.com/tallyhq/tally/common/exitcode"
	"github.com/tallyhq/tally/common/logging"
	"github.com/tallyhq/tally/protocol"
)

// Exit codes of the node-locked and concurrent license commands, documented
// in the README.
const (
	ExitNoFreeSeat  = exitcode.NoFreeSeat  // every seat of the Activation ID (or concurrent license) is taken
	ExitInactiveID  = exitcode.InactiveID  // the Activation ID was deactivated
	ExitExpiredID   = exitcode.ExpiredID   // the Activation ID or its license expired
	ExitUnknownID   = exitcode.UnknownID   // no such Activation ID or product
	ExitNotActive   = exitcode.NotActive   // this computer's status is not Active
	ExitNotLicensed = exitcode.NotLicensed // check: no record proves the product on this machine
)

// openAgent opens the enrolled agent for a one-shot command.
func (m *Main) openAgent(cmd *cobra.Command) (*runner.Agent, error) {
	cfg, err := m.settings(cmd)
	if err != nil {
		return nil, err
	}
	return m.openAgentWith(cfg)
}

// openAgentWith opens the enrolled agent of the settings cfg.
func (m *Main) openAgentWith(cfg config.Agent) (*runner.Agent, error) {
	log, err := logging.New(m.Stderr, cfg.LogFormat, "warn")
	if err != nil {
		return nil, &exitError{ExitUsage, err}
	}
	dir, err := state.Open(cfg.Data)
	if err != nil {
		return nil, err
	}
	return runner.Open(runner.Config{Dir: dir, Logger: log, Version: buildinfo.Version(), MachineID: cfg.MachineID,
		Spool: spool.Options{MaxBytes: cfg.SpoolMaxBytes, MaxAge: cfg.SpoolMaxAge}})
}

func activationExit(r protocol.ActivationResult, msg string) error {
	switch r {
	case protocol.ActivationNoSeat:
		return &exitError{ExitNoFreeSeat, errors.New(msg)}
	case protocol.ActivationInactive:
		return &exitError{ExitInactiveID, errors.New(msg)}
	case protocol.ActivationExpired:
		return &exitError{ExitExpiredID, errors.New(msg)}
	case protocol.ActivationUnknown:
		return &exitError{ExitUnknownID, errors.New(msg)}
	case protocol.ActivationRefused:
		return &exitError{ExitNotActive, errors.New(msg)}
	}
	return nil
}

// leaseExit is the error of a lease request the server did not grant: its
// result's exit code, or 10 (no free seat) from a server that gives none.
func leaseExit(resp protocol.LeaseResponse) error {
	if err := activationExit(resp.Result, resp.Message); err != nil {
		return err
	}
	return &exitError{ExitNoFreeSeat, errors.New(resp.Message)}
}

// knownID refuses, before anything is sent, a value that cannot be an
// Activation ID.
func knownID(id string) error {
	if protocol.ValidActivationID(id) {
		return nil
	}
	return &exitError{ExitUnknownID, fmt.Errorf("%q is not an Activation ID (they look like ACT-XXXX-…): check it, or ask the administrator for the output of 'tally-server activation list'", id)}
}

// knownProduct refuses, before anything is sent, a value that cannot be a
// product name.
func knownProduct(product string) error {
	if (&protocol.LeaseRequest{Product: product}).Validate() == nil {
		return nil
	}
	return &exitError{ExitUnknownID, fmt.Errorf("%q is not a product name: check it, or ask the administrator for the output of 'tally-server products list'", product)}
}

// agentCall opens the agent for a command that talks to the server, with
// a minute to do it; done releases both.
func (m *Main) agentCall(cmd *cobra.Command) (*runner.Agent, context.Context, func(), error) {
	cfg, err := m.settings(cmd)
	if err != nil {
		return nil, nil, nil, err
	}
	return m.agentCallWith(cmd, cfg)
}

// agentCallWith is agentCall with the settings given.
func (m *Main) agentCallWith(cmd *cobra.Command, cfg config.Agent) (*runner.Agent, context.Context, func(), error) {
	a, err := m.openAgentWith(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
	return a, ctx, func() { cancel(); a.Close() }, nil
}

func (m *Main) activationCmds() []*cobra.Command {
	activate := &cobra.Command{
		Use:   "activate ID",
		Short: "Bind a seat of a node-locked Activation ID to this machine; the signed record goes to trusted storage",
		Long: `Ask the server for a seat of the Activation ID and keep the server-signed record in the
agent's trusted storage (DATA/activations, readable only by the agent's user), bound to
this machine's fingerprint. Activating an ID this machine already holds changes nothing.

Exit codes: 10 no free seat, 11 the ID is inactive, 12 the ID has expired, 13 no such ID,
14 this computer is not Active; 4 the server could not be reached.`,
		Args: exactArgs(1, "activate ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := knownID(args[0]); err != nil {
				return err
			}
			a, ctx, done, err := m.agentCall(cmd)
			if err != nil {
				return err
			}
			defer done()
			resp, err := a.Activate(ctx, args[0])
			if err != nil {
				return err
			}
			if err := activationExit(resp.Result, resp.Message); err != nil {
				return err
			}
			if resp.Result == protocol.ActivationAlready {
				fmt.Fprintf(cmd.OutOrStdout(), "Already activated: %s. Nothing changed.\n", resp.Message)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "Activated %s: %s.\n", args[0], resp.Message)
			}
			return nil
		},
	}
	deactivate := &cobra.Command{
		Use:   "deactivate ID",
		Short: "Remove this machine's record of an Activation ID and return the seat (queued if the server is unreachable)",
		Args:  exactArgs(1, "deactivate ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := knownID(args[0]); err != nil {
				return err
			}
			a, ctx, done, err := m.agentCall(cmd)
			if err != nil {
				return err
			}
			defer done()
			res, err := a.Deactivate(ctx, args[0])
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			switch {
			case res.Queued:
				fmt.Fprintf(w, "Removed the record of %s from this machine. The server could not be reached: the seat's return is queued and sent when it can be (the seat is freed once).\n", args[0])
			case res.Answer.Result == protocol.ActivationNotHeld:
				fmt.Fprintf(w, "Removed the record of %s (if any). %s\n", args[0], res.Answer.Message)
			default:
				fmt.Fprintf(w, "Deactivated %s: the record is removed and the seat returned; the ID can be activated again here or elsewhere.\n", args[0])
			}
			return nil
		},
	}
	var asJSON, sync bool
	list := &cobra.Command{
		Use:   "activations",
		Short: "List the activation records in trusted storage and whether each verifies on this machine",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := m.openAgent(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			if sync {
				ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
				defer cancel()
				removed, err := a.SyncActivations(ctx)
				for _, r := range removed {
					fmt.Fprintf(cmd.ErrOrStderr(), "removed the record of %s: %s\n", r.ActivationID, r.Reason)
				}
				if err != nil {
					return err
				}
			}
			las, err := a.Activations(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), las)
			}
			if len(las) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "No activation records on this machine.")
				return nil
			}
			for _, la := range las {
				state := "verifies on this machine"
				if !la.Verified {
					state = "DOES NOT VERIFY: " + la.Problem
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s  %-20s %s\n", la.ID, la.Product, state)
			}
			return nil
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	list.Flags().BoolVar(&sync, "sync", false, "first ask the server which records are still valid, and remove the others")
	check := &cobra.Command{
		Use:   "check PRODUCT",
		Short: "Exit 0 if this machine holds a node-locked seat of PRODUCT (verified offline); 20 if not",
		Long: `Verify offline, against the server's public key and this machine's fingerprint, that a
record in trusted storage grants PRODUCT here. Licensed software can run it: exit 0 when
licensed, 20 when not, with the reason on stderr. No network is used.`,
		Args: exactArgs(1, "check PRODUCT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := m.openAgent(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			la, err := a.Check(cmd.Context(), args[0])
			if err != nil {
				if errors.Is(err, runner.ErrNotLicensed) {
					return &exitError{ExitNotLicensed, err}
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is licensed on this machine (Activation ID %s)\n", args[0], la.ID)
			return nil
		},
	}
	for _, c := range []*cobra.Command{activate, deactivate, list, check} {
		dataFlag(c)
	}
	return []*cobra.Command{activate, deactivate, list, check, m.leaseCmd()}
}

func (m *Main) leaseCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "lease", Short: "Concurrent licenses: check a seat out, check it in, list what is held"}
	var ttl time.Duration
	checkout := &cobra.Command{
		Use:   "checkout PRODUCT [--ttl D]",
		Short: "Check out a concurrent seat; a running 'tally-agent run' keeps it alive with heartbeats",
		Long: `Check out a concurrent seat of PRODUCT for --ttl. While 'tally-agent run' runs it sends
heartbeats; a lease that misses them runs out after its TTL and its seat returns to the
pool by itself.

Exit codes: 10 no free seat (with the time one is expected back), 12 every concurrent
license of PRODUCT has expired, 13 no such product, 14 this computer is not Active;
4 the server could not be reached.`,
		Args: exactArgs(1, "lease checkout PRODUCT [--ttl D]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := knownProduct(args[0]); err != nil {
				return err
			}
			if _, err := protocol.LeaseTTLSeconds(ttl); err != nil {
				return &exitError{ExitUsage, fmt.Errorf("--ttl: %w; give one such as 10m, or leave --ttl out for the server's default (5m)", err)}
			}
			a, ctx, done, err := m.agentCall(cmd)
			if err != nil {
				return err
			}
			defer done()
			resp, err := a.LeaseCheckout(ctx, args[0], ttl)
			if err != nil {
				return err
			}
			if !resp.Granted {
				return leaseExit(resp)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Checked out %s until %s (%s without a heartbeat)%s\n", args[0],
				time.Unix(resp.Expires, 0).Local().Format(time.DateTime), time.Duration(resp.TTL)*time.Second, suffixMsg(resp.Message))
			return nil
		},
	}
	checkout.Flags().DurationVar(&ttl, "ttl", 0, "time to live without a heartbeat, whole seconds from 1s to 168h (default: the server's, 5m)")
	checkin := &cobra.Command{
		Use:   "checkin PRODUCT",
		Short: "Return a concurrent seat",
		Long: `Return a concurrent seat of PRODUCT. When the server cannot be reached the check-in is
queued (and the lease runs out by itself meanwhile). Exit code 13 for no such product.`,
		Args: exactArgs(1, "lease checkin PRODUCT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := knownProduct(args[0]); err != nil {
				return err
			}
			a, ctx, done, err := m.agentCall(cmd)
			if err != nil {
				return err
			}
			defer done()
			resp, queued, err := a.LeaseCheckin(ctx, args[0])
			if err != nil {
				return err
			}
			if queued {
				fmt.Fprintf(cmd.OutOrStdout(), "The server could not be reached: the check-in of %s is queued (the lease also runs out by itself).\n", args[0])
				return nil
			}
			if resp.Result == protocol.ActivationUnknown {
				return &exitError{ExitUnknownID, errors.New(resp.Message)}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", args[0], resp.Message)
			return nil
		},
	}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the leases this agent holds",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, dir, err := m.openDir(cmd)
			if err != nil {
				return err
			}
			ls, err := dir.Leases()
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), ls)
			}
			if len(ls) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "No leases held.")
			}
			for p, l := range ls {
				fmt.Fprintf(cmd.OutOrStdout(), "%-20s expires %s (ttl %s, last heartbeat %s)\n", p, l.Expires.Local().Format(time.DateTime), l.TTL,
					l.LastBeat.Local().Format(time.DateTime))
			}
			return nil
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	for _, c := range []*cobra.Command{checkout, checkin, list} {
		dataFlag(c)
	}
	cmd.AddCommand(checkout, checkin, list)
	return cmd
}

func suffixMsg(s string) string {
	if s == "" {
		return ""
	}
	return "; " + s
}

func exactArgs(n int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return &exitError{ExitUsage, fmt.Errorf("usage: tally-agent %s", usage)}
		}
		return nil
	}
}
