package runner

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/tallyhq/tally/agent/state"
	"github.com/tallyhq/tally/protocol"
)

// RefusedError is the pinned server's definitive refusal of this agent's
// key (revoked: computer deleted, blocked, agent uninstalled; or unknown).
// It reads as one sentence: the server's clause says what happened, and
// the agent adds the enroll line for this machine, which only it knows.
// errors.Is(err, ErrRefused) holds for it.
type RefusedError struct {
	// Server is the server's answer.
	Server *protocol.Error
	// Enroll is the command that enrolls this machine again, with SECRET
	// standing for the enrollment secret.
	Enroll string
}

func (e *RefusedError) Error() string {
	what := strings.TrimSpace(e.Server.Message)
	if what == "" {
		what = "its key is " + e.Server.Status.String()
	}
	return fmt.Sprintf("the server refuses this agent: %s; to enroll this machine, run: %s (SECRET: the secret 'tally-server enroll-info' prints)", what, e.Enroll)
}

// Unwrap gives the server's answer, so errors.As finds its status.
func (e *RefusedError) Unwrap() error { return e.Server }

// Is makes errors.Is(err, ErrRefused) hold.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// refusal returns err as a *RefusedError when it is the server's definitive
// refusal of the key (see refusedForGood), and err unchanged otherwise.
func (a *Agent) refusal(err error) error {
	return refusal(err, EnrollLine(a.enr.AddressList(), a.enr.Fingerprint, a.dir))
}

func refusal(err error, enroll string) error {
	var re *RefusedError
	if !refusedForGood(err) || errors.As(err, &re) {
		return err
	}
	var pe *protocol.Error
	errors.As(err, &pe)
	return &RefusedError{Server: pe, Enroll: enroll}
}

// EnrollLine is the command that enrolls the agent of data folder dir with
// the server at addr whose fingerprint is fp, SECRET standing for the
// secret.
func EnrollLine(addr, fp string, dir state.Dir) string {
	return "tally-agent enroll --server " + shellQuote(addr) + " --fingerprint " + shellQuote(fp) + " --secret SECRET --data " + shellQuote(dir.Path)
}

// shellQuote quotes s for the system's shell when it needs it, so that a
// printed command runs as shown.
func shellQuote(s string) string {
	if runtime.GOOS == "windows" {
		if s == "" || strings.ContainsAny(s, " \t&|<>^()") {
			return `"` + s + `"`
		}
		return s
	}
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@%+=,[]", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
