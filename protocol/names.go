package protocol

import "regexp"

// namePattern is the one spelling of a plug-in's or a product's name, so
// that the agent's registry, the server's catalog and the wire refuse the
// same names: lower-case letters, digits and dashes, 1 to 63 of them.
var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// datePattern is a plug-in's build date as the wire carries it.
var datePattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// ValidName reports whether s is a valid plug-in or product name: 1 to 63
// lower-case letters, digits and dashes, not starting with a dash.
func ValidName(s string) bool { return namePattern.MatchString(s) }

// ValidDate reports whether s has the form YYYY-MM-DD of a build date.
func ValidDate(s string) bool { return datePattern.MatchString(s) }
