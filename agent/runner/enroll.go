package runner

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/tallyhq/tally/agent/client"
	"github.com/tallyhq/tally/agent/collect"
	"github.com/tallyhq/tally/agent/collect/logins"
	"github.com/tallyhq/tally/agent/state"
	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/common/identity"
	"github.com/tallyhq/tally/protocol"
)

// EnrollOptions are the arguments of 'tally-agent enroll'.
type EnrollOptions struct {
	// Servers are the server's addresses in order of preference (replicas
	// sharing one identity); Server, when Servers is empty, is one.
	Servers     []string
	Server      string
	Fingerprint string
	Secret      string
	MachineID   string
	Version     string
	Logger      *slog.Logger
	Clock       clock.Clock // stamps the enrollment; default: the system clock
	// Force enrolls with another server than the recorded one: the old key
	// is replaced by a new one.
	Force bool
}

// Enroll creates the node's identity if needed and enrolls it. Enrolling
// again with the same server is harmless: the server answers that the key
// is already enrolled (or, for a key it revoked, enrolls it again). With
// another server's fingerprint (Force), a new key enrolls with the new
// server and replaces the old key and enrollment only once that server
// accepted it: a refusal or an outage leaves the agent as it was.
func Enroll(ctx context.Context, dir state.Dir, o EnrollOptions) (state.Enrollment, protocol.EnrollResponse, error) {
	var resp protocol.EnrollResponse
	if len(o.Servers) == 0 && o.Server != "" {
		o.Servers = []string{o.Server}
	}
	pin, err := identity.ParseFingerprint(o.Fingerprint)
	if err != nil {
		return state.Enrollment{}, resp, err
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Secret == "" {
		return state.Enrollment{}, resp, errors.New("no enrollment secret: pass --secret (from 'tally-server enroll-info')")
	}
	prev, prevErr := dir.Enrollment()
	if prevErr != nil && !errors.Is(prevErr, state.ErrNotEnrolled) {
		return state.Enrollment{}, resp, prevErr
	}
	// The same fingerprint is the same server, wherever it now listens; only
	// another server's fingerprint needs --force (and a new key).
	switching := prevErr == nil && prev.Fingerprint != pin
	if switching && !o.Force {
		return state.Enrollment{}, resp, fmt.Errorf("this agent is already enrolled with %s (fingerprint %.16s…): pass --force to enroll with another server, which replaces its key", prev.AddressList(), prev.Fingerprint)
	}
	if prevErr == nil && o.MachineID == "" {
		o.MachineID = prev.MachineID
	}
	var key ed25519.PrivateKey
	if switching {
		key, err = dir.PendingKey()
	} else {
		key, _, err = dir.Key()
	}
	if err != nil {
		return state.Enrollment{}, resp, err
	}
	instance, err := dir.InstanceID()
	if err != nil {
		return state.Enrollment{}, resp, err
	}
	// Enrolling sends no users: they go with the first inventory post.
	basic, _ := collect.Basic(ctx, collect.Options{InstanceID: instance, MachineID: o.MachineID, AgentVersion: o.Version, Now: o.Clock.Now(), Users: logins.Fixed(nil)})
	c, err := client.New(client.Config{Servers: o.Servers, Fingerprint: pin, Key: key, Logger: o.Logger})
	if err != nil {
		return state.Enrollment{}, resp, err
	}
	defer c.Close()
	seq, err := dir.AllocateSeq()
	if err != nil {
		return state.Enrollment{}, resp, err
	}
	req := protocol.EnrollRequest{Secret: o.Secret, Hostname: basic.Hostname, Hints: basic.Hints, AgentVersion: o.Version, OS: basic.OS}
	if _, err := c.Call(ctx, protocol.KindEnroll, seq, &req, &resp); err != nil {
		// A blocked machine: the same sentence as its other requests get.
		return state.Enrollment{}, resp, refusal(err, EnrollLine(strings.Join(o.Servers, ","), pin, dir))
	}
	e := state.Enrollment{Fingerprint: pin, NodeID: resp.NodeID, ComputerID: resp.ComputerID,
		EnrolledAt: o.Clock.Now().UTC(), MachineID: o.MachineID}.WithAddresses(o.Servers)
	if switching {
		return e, resp, dir.SwitchEnrollment(e)
	}
	if err := dir.SaveEnrollment(e); err != nil {
		return e, resp, err
	}
	// A refusal recorded before this enrollment no longer holds.
	if st, err := dir.LoadStatus(); err == nil && st.Refused != "" {
		st.Refused, st.LastError = "", ""
		if err := dir.SaveStatus(st); err != nil {
			return e, resp, err
		}
	}
	return e, resp, nil
}
