// Package machineid cleans machine identity hints (DESIGN §2): SMBIOS
// product UUID and serial, machine-id, MAC addresses. Firmware and cloned
// images are full of placeholder values ("To be Filled By O.E.M.", all
// zeros, "Default string"); this package drops them so that two unrelated
// machines are never matched on a placeholder. Both the agent (before it
// sends) and the server (before it matches) apply it.
package machineid

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"sort"
	"strings"

	"github.com/tallyhq/tally/protocol"
)

// junk lists placeholder values seen in SMBIOS fields, compared after
// lower-casing and trimming.
var junk = map[string]bool{
	"":                                     true,
	"none":                                 true,
	"null":                                 true,
	"n/a":                                  true,
	"na":                                   true,
	"unknown":                              true,
	"not specified":                        true,
	"not applicable":                       true,
	"not available":                        true,
	"not settable":                         true,
	"default string":                       true,
	"to be filled by o.e.m.":               true,
	"to be filled by oem":                  true,
	"system serial number":                 true,
	"system product name":                  true,
	"chassis serial number":                true,
	"serial number":                        true,
	"0123456789":                           true,
	"123456789":                            true,
	"1234567890":                           true,
	"o.e.m.":                               true,
	"oem":                                  true,
	"invalid":                              true,
	"undefined":                            true,
	"empty":                                true,
	"03000200-0400-0500-0006-000700080009": true, // a well-known bogus board UUID
}

// IsJunk reports whether v is a placeholder rather than an identifier:
// a known filler string, or a value made of one repeated character
// (all zeros, all F's) once dashes, colons and spaces are removed.
func IsJunk(v string) bool {
	t := strings.ToLower(strings.TrimSpace(v))
	if junk[t] {
		return true
	}
	t = stripSeparators(t)
	if len(t) < 4 {
		return true
	}
	for i := 1; i < len(t); i++ {
		if t[i] != t[0] {
			return false
		}
	}
	return true
}

// Clean returns h with junk values removed, identifiers normalised to lower
// case, and MACs filtered to real, globally administered unicast addresses,
// sorted and de-duplicated.
func Clean(h protocol.Hints) protocol.Hints {
	out := protocol.Hints{InstanceID: strings.TrimSpace(h.InstanceID)}
	if !IsJunk(h.ProductUUID) {
		out.ProductUUID = strings.ToLower(strings.TrimSpace(h.ProductUUID))
	}
	if !IsJunk(h.Serial) {
		out.Serial = strings.TrimSpace(h.Serial)
	}
	if !IsJunk(h.MachineID) {
		out.MachineID = strings.ToLower(strings.TrimSpace(h.MachineID))
	}
	seen := map[string]bool{}
	for _, m := range h.MACs {
		if n, ok := PrimaryMAC(m); ok && !seen[n] {
			seen[n] = true
			out.MACs = append(out.MACs, n)
		}
	}
	sort.Strings(out.MACs)
	return out
}

// PrimaryMAC normalises a MAC address and reports whether it can identify a
// machine: not empty or all-zero, not multicast, and not locally
// administered (bit 0x02 of the first octet, which virtual and randomised
// interfaces use).
func PrimaryMAC(s string) (string, bool) {
	hw, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil || len(hw) != 6 {
		return "", false
	}
	if hw[0]&0x01 != 0 || hw[0]&0x02 != 0 {
		return "", false
	}
	zero := true
	for _, b := range hw {
		if b != 0 {
			zero = false
		}
	}
	if zero {
		return "", false
	}
	return hw.String(), true
}

// Fingerprint is the machine fingerprint activation records are bound to:
// the hex SHA-256 of the machine's cleaned hardware hints (product UUID,
// serial, machine-id, primary MACs). A machine without any hardware hint
// falls back to its agent's instance ID.
func Fingerprint(h protocol.Hints) string {
	c := Clean(h)
	parts := []string{"uuid=" + c.ProductUUID, "serial=" + c.Serial, "machine-id=" + c.MachineID}
	for _, m := range c.MACs {
		parts = append(parts, "mac="+m)
	}
	if c.ProductUUID == "" && c.Serial == "" && c.MachineID == "" && len(c.MACs) == 0 {
		parts = []string{"instance=" + c.InstanceID}
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, "\n")))
	return hex.EncodeToString(sum[:])
}

// stripSeparators drops the dashes, colons, spaces and dots of an
// identifier (without building a strings.Replacer per call: the server
// cleans the hints of every post).
func stripSeparators(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '-', ':', ' ', '.':
			return -1
		}
		return r
	}, s)
}
