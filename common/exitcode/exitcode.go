// Package exitcode is the one table of exit codes of tally-agent and
// tally-server, so that scripts can tell a wrong command line from a server
// that is down from a license that is missing, whichever binary they call;
// the README's "Exit codes" table is checked against it.
package exitcode

import (
	"errors"
	"fmt"
)

// The codes. Both binaries use 0-2 and 4-5; the others belong to the
// binary whose meaning names them.
const (
	OK          = 0  // success
	Error       = 1  // any other error
	Usage       = 2  // wrong command line: unknown command or flag, wrong arguments, bad or missing flag value
	BadSecret   = 3  // tally-agent: the enrollment secret was refused
	Unreachable = 4  // the server could not be reached (the agent's posts stay in the spool)
	Refused     = 5  // the server refuses this agent, or the admin token; or the agent is not enrolled
	PinMismatch = 6  // tally-agent: the server's fingerprint is not the pinned one; nothing was sent
	NotFound    = 7  // tally-server: no such computer, license, Activation ID, secret, … on the server
	NoFreeSeat  = 10 // tally-agent: no free seat (an Activation ID's, or a concurrent license's)
	InactiveID  = 11 // tally-agent: the Activation ID was deactivated by an administrator
	ExpiredID   = 12 // tally-agent: the Activation ID (or its license) has expired
	UnknownID   = 13 // tally-agent: no such Activation ID (or product)
	NotActive   = 14 // tally-agent: this computer is not Active
	NotLicensed = 20 // tally-agent check: no record proves the product on this machine
)

// All lists every code above, in order: the README's table must list
// exactly these.
var All = []int{OK, Error, Usage, BadSecret, Unreachable, Refused, PinMismatch, NotFound,
	NoFreeSeat, InactiveID, ExpiredID, UnknownID, NotActive, NotLicensed}

// Err carries an exit code out of a command, with the error to print.
type Err struct {
	Code int
	Err  error
}

func (e *Err) Error() string { return e.Err.Error() }
func (e *Err) Unwrap() error { return e.Err }

// New returns err with code attached.
func New(code int, err error) error { return &Err{Code: code, Err: err} }

// Newf formats an error with code attached.
func Newf(code int, format string, args ...any) error {
	return &Err{Code: code, Err: fmt.Errorf(format, args...)}
}

// Of returns the code attached to err, and whether one was.
func Of(err error) (int, bool) {
	var e *Err
	if errors.As(err, &e) {
		return e.Code, true
	}
	return 0, false
}
