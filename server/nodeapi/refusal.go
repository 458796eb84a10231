package nodeapi

import (
	"errors"
	"fmt"

	"github.com/tallyhq/tally/server/store"
)

// The refusals of a key say what happened, and what an administrator must
// do first if anything, as a clause: the agent prefixes it with "the server
// refuses this agent: " and follows it with the exact enroll line for its
// machine, which only it knows (its data folder, the address it dials), so
// no clause names 'tally-agent enroll' itself.

// unknownKey is the refusal of a key the server has no record of.
const unknownKey = "it has no record of this machine's key (the machine never enrolled with this server, or the server's database was replaced)"

// revoked is the refusal of a revoked key, err holding a *store.RevokedError
// (a bare store.ErrRevoked gets a sentence without the computer).
func revoked(err error) string {
	var re *store.RevokedError
	if !errors.As(err, &re) {
		return "an administrator revoked this machine's key"
	}
	id := re.ComputerID
	switch re.Reason {
	case store.RevokedDeleted:
		return fmt.Sprintf("an administrator deleted computer %d, which freed its seats and revoked this machine's key, so the machine comes back as a new computer", id)
	case store.RevokedBlocked:
		return fmt.Sprintf("an administrator deleted computer %d with --block, which freed its seats and keeps this machine out until an administrator runs 'tally-server computers unblock %d'", id, id)
	case store.RevokedUnblocked:
		return fmt.Sprintf("an administrator deleted computer %d with --block, which freed its seats and revoked this machine's key, then unblocked it, so the machine comes back as a new computer", id)
	case store.RevokedUninstall:
		return fmt.Sprintf("this machine's agent was uninstalled ('tally-agent uninstall'), which freed the seats of computer %d and retired its key", id)
	case store.RevokedSuperseded:
		return fmt.Sprintf("this machine enrolled again with a newer key, which replaced this one on computer %d", id)
	}
	return fmt.Sprintf("an administrator revoked this machine's key (computer %d)", id)
}
